"""A procedurally grown arterial tree per case, and its rasterisation.

All geometry is in MNI millimetres (RAS+), the frame of the reference anatomy, so the tree is warped together with the
anatomy by the case's deformation. The tree has two parts:

* **Named trunks** (:data:`TRUNKS`): the internal carotid, vertebral and basilar arteries, the circle of Willis
  (anterior and posterior communicating arteries), the anterior, middle and posterior cerebral arteries (pericallosal,
  callosomarginal, insular M2 trunks, P2-P4) and the superior, anterior-inferior and posterior-inferior cerebellar
  arteries. They follow anatomical waypoints (jittered per case by a few mm), each snapped to the most
  cerebrospinal-fluid-like (CSF) point within 4 mm, so they run in the cisterns and fissures of the real atlas.
* **Cortical branches** grown from points along the distal trunks towards random points of the brain surface in the
  trunk's territory (:data:`TERRITORIES`): a guided walk that, step by step, picks among random directions in a cone
  the one that stays in CSF (sulci, fissures, the subarachnoid space), goes straight on and leans towards its target;
  every 8-20 mm the stem continues slightly thinner and a thinner side branch leaves, until the radius falls below
  the smallest drawn radius.

Radii taper from about 2.5 mm (carotid) to 0.5 mm (cortical branches). :func:`rasterise_tree` stamps the tube's
signed distance ``|x - c| - r`` into a grid, so a case can sample it at its warped voxel positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from versaseg.data.synthetic.phantom import _catmull_rom

MIN_RADIUS_MM = 0.5
STEP_MM = 1.0
SNAP_MM = 4.0
MAX_OFF_COURSE_STEPS = 4
MAX_TRANSIT_MM = 35.0
WANDER = 0.12  # random heading change per step: arteries on the cortex meander
CONES_DEG = (50.0, 100.0)

# (name, waypoints in MNI mm with x for the right side (mirrored for bilateral trunks), start radius mm, end radius mm,
#  bilateral, number of cortical branches grown from its distal two thirds). Trunks that continue one another share
#  their junction waypoint (e.g. the basilar tip is where both P1 segments start).
TRUNKS = (
    ("ica", [(16, 4, -36), (15, 2, -27), (14, 0, -18)], 2.5, 2.0, True, 0),
    ("vertebral", [(9, -38, -76), (8, -36, -64), (4, -30, -52), (0, -26, -47)], 1.5, 1.4, True, 0),
    ("basilar", [(0, -26, -47), (0, -19, -40), (0, -12, -30), (0, -14, -21)], 1.7, 1.5, False, 0),
    ("p1", [(0, -14, -21), (7, -16, -20), (10, -16, -19)], 1.1, 1.0, True, 0),
    ("pcom", [(10, -16, -19), (13, -8, -19), (14, 0, -18)], 0.65, 0.6, True, 0),
    ("pca", [(10, -16, -19), (18, -24, -14), (22, -36, -8), (20, -52, -2), (14, -66, 2), (10, -80, 6), (8, -92, 8)],
     1.0, 0.75, True, 8),
    ("a1", [(14, 0, -18), (9, 5, -16), (4, 8, -14), (0, 9, -13)], 1.0, 0.9, True, 0),
    ("pericallosal", [(2, 9, -13), (2, 22, -4), (3, 36, 6), (3, 34, 22), (3, 15, 28), (3, -10, 32), (3, -30, 30),
                      (3, -42, 20)], 0.95, 0.7, True, 6),
    ("callosomarginal", [(3, 36, 12), (4, 42, 30), (5, 28, 44), (5, 5, 52), (5, -20, 55)], 0.8, 0.7, True, 6),
    ("m1", [(14, 0, -18), (24, 2, -16), (32, 4, -12), (36, 6, -8)], 1.5, 1.3, True, 0),
    ("m2_superior", [(36, 6, -8), (38, 10, 6), (42, 2, 16), (48, -10, 24)], 1.05, 0.85, True, 10),
    ("m2_inferior", [(36, 6, -8), (40, -8, -2), (45, -20, 6), (50, -34, 14)], 1.05, 0.85, True, 10),
    ("sca", [(0, -13, -24), (8, -20, -24), (16, -32, -22), (20, -48, -20), (24, -62, -18)], 0.8, 0.7, True, 4),
    ("aica", [(0, -17, -38), (12, -26, -40), (22, -40, -42), (32, -52, -40)], 0.65, 0.6, True, 3),
    ("pica", [(6, -34, -58), (10, -44, -60), (12, -54, -55), (10, -62, -45)], 0.75, 0.65, True, 3),
)
# The surface each trunk's cortical branches supply, as an MNI box ((x), (y), (z) ranges in mm, right side; mirrored
# for the left): branches head for random points of the brain surface inside it.
TERRITORIES = {
    "pca": ((0, 60), (-110, -55), (-25, 40)),
    "pericallosal": ((0, 14), (-65, 50), (0, 60)),
    "callosomarginal": ((0, 35), (-45, 70), (25, 90)),
    "m2_superior": ((28, 80), (-45, 65), (5, 75)),
    "m2_inferior": ((35, 80), (-85, 25), (-45, 25)),
    "sca": ((0, 55), (-95, -40), (-35, 0)),
    "aica": ((15, 60), (-80, -35), (-55, -25)),
    "pica": ((0, 45), (-100, -40), (-75, -35)),
}


@dataclass
class GuideField:
    """Where vessels may run, on an axis-aligned reference grid.

    csf: (X, Y, Z) float32 in [0, 1], smoothed CSF indicator: high in sulci, fissures, cisterns and the subarachnoid
        space, 0 deep in the parenchyma and outside the head.
    allowed: (X, Y, Z) bool, intracranial and not a ventricle: a branch stops when it would leave this.
    affine: (4, 4) voxel -> MNI mm, diagonal.
    surface: (M, 3) float32 points (MNI mm) of the subarachnoid space around the brain, targets of cortical branches.
    """

    csf: np.ndarray
    allowed: np.ndarray
    affine: np.ndarray
    surface: np.ndarray

    def index(self, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest voxel indices (3, N) int and an in-grid mask (N,) for points (N, 3) in mm."""
        spacing, origin = np.diag(self.affine)[:3], self.affine[:3, 3]
        ijk = np.rint((np.atleast_2d(points_mm) - origin) / spacing).astype(np.int64).T
        inside = np.all((ijk >= 0) & (ijk < np.asarray(self.csf.shape)[:, None]), axis=0)
        return np.where(inside, ijk, 0), inside

    def lookup(self, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(csf value (N,), allowed (N,))`` at points (N, 3) mm; points off the grid are not allowed."""
        ijk, inside = self.index(points_mm)
        return self.csf[tuple(ijk)] * inside, self.allowed[tuple(ijk)] & inside


@dataclass
class VesselTree:
    """Centrelines (each (K, 3) MNI mm) with their radii (each (K,) mm), named after the trunk they belong to."""

    branches: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def add(self, name: str, points: np.ndarray, radii: np.ndarray) -> None:
        if len(points) >= 2:
            self.branches.append((np.asarray(points, float), np.asarray(radii, float)))
            self.names.append(name)

    def length_mm(self) -> float:
        """Total centreline length."""
        return float(sum(np.linalg.norm(np.diff(p, axis=0), axis=1).sum() for p, _ in self.branches))

    def dense(self, step_mm: float) -> tuple[np.ndarray, np.ndarray]:
        """Points (N, 3) mm at most ``step_mm`` apart along every branch and their radii (N,) (linear in between)."""
        points, radii = [], []
        for p, r in self.branches:
            seg = np.linalg.norm(np.diff(p, axis=0), axis=1)
            arc = np.concatenate([[0.0], np.cumsum(seg)])
            t = np.linspace(0.0, arc[-1], max(2, int(np.ceil(arc[-1] / step_mm)) + 1))
            points.append(np.stack([np.interp(t, arc, p[:, i]) for i in range(3)], axis=1))
            radii.append(np.interp(t, arc, r))
        if not points:
            return np.zeros((0, 3)), np.zeros(0)
        return np.vstack(points), np.concatenate(radii)


def grow_arterial_tree(guide: GuideField, rng: np.random.Generator, min_radius: float = MIN_RADIUS_MM,
                       jitter_mm: float = 2.5, cortical_length_mm: float = 12000.0) -> VesselTree:
    """Grow one arterial tree: jittered named trunks, then guided cortical branches.

    Args:
        guide: where vessels may run (CSF preference and the intracranial mask).
        rng: the case's random generator (the tree is a deterministic function of its state).
        min_radius: branches thinner than this are not grown (e.g. those a coarse grid cannot show).
        jitter_mm: standard deviation of the per-case waypoint displacement.
        cortical_length_mm: total centreline length budget of the grown cortical branches.
    """
    tree = VesselTree()
    seeds = []  # (point, direction, radius, name, territory points (K, 3))
    placed: dict[tuple[float, float, float], np.ndarray] = {}  # a waypoint shared by two trunks moves once

    def place(waypoint: tuple[float, float, float]) -> np.ndarray:
        if waypoint not in placed:
            moved = np.asarray(waypoint, float) + rng.normal(0.0, jitter_mm, 3) * np.array([0.6, 1.0, 1.0])
            placed[waypoint] = _snap(guide, moved)
        return placed[waypoint]

    for name, waypoints, r0, r1, bilateral, n_seeds in TRUNKS:
        for side in (1.0, -1.0) if bilateral else (1.0,):
            controls = np.array([place((side * x + 0.0, float(y), float(z))) for x, y, z in waypoints])
            dense = _catmull_rom(controls, step=STEP_MM / 2)
            radii = np.linspace(r0, r1, len(dense)) * rng.uniform(0.9, 1.1)
            keep = guide.lookup(dense)[1]  # trunks enter from below the skull base: keep the intracranial part
            tree.add(name, dense[keep], radii[keep])
            if n_seeds and keep.sum() > 4:
                kept, kept_r = dense[keep], radii[keep]
                territory = _territory_points(guide, TERRITORIES[name], side)
                positions = rng.uniform(0.35, 1.0, n_seeds) * (len(kept) - 1)
                for position in np.sort(positions).astype(int):
                    tangent = kept[min(position + 2, len(kept) - 1)] - kept[max(position - 2, 0)]
                    seeds.append((kept[position], tangent, kept_r[position], name, territory))
    budget = cortical_length_mm * rng.uniform(0.85, 1.15)
    per_seed = budget / max(len(seeds), 1)
    for point, tangent, radius, name, territory in seeds:
        _grow(tree, guide, point, _unit(tangent), radius * rng.uniform(0.85, 1.0), per_seed, min_radius, rng, name,
              territory)
    return tree


def rasterise_tree(tree: VesselTree, shape: tuple[int, int, int], affine: np.ndarray, radius_floor_mm: float = 0.0,
                   min_radius_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int]]:
    """Stamp the tree's tubes into the axis-aligned grid (``shape``, ``affine``) over the tree's bounding box.

    Each centreline point ``c`` with radius ``r`` contributes the signed distance ``|x - c| - max(r, radius_floor_mm)``
    (mm) to the voxels within reach; the tube is where the minimum over points is <= 0. ``radius_floor_mm`` keeps
    sub-voxel vessels connected (a vessel thinner than a voxel still shows as a one-voxel line); points with a radius
    below ``min_radius_mm`` are skipped.

    Returns:
        ``(signed_distance, radius, corner)``: signed distance (x, y, z) float32 (large where no vessel is near),
        the radius (x, y, z) float32 of the thickest tube covering each voxel (0 elsewhere), both over the box
        ``corner .. corner + (x, y, z)`` of the grid.
    """
    spacing, origin = np.diag(affine)[:3], affine[:3, 3]
    points, radii = tree.dense(step_mm=0.5 * float(spacing.min()))
    keep = radii >= min_radius_mm
    points, radii = points[keep], radii[keep]
    far = np.float32(1e3)
    if len(points) == 0:
        return np.full((1, 1, 1), far, np.float32), np.zeros((1, 1, 1), np.float32), (0, 0, 0)
    effective = np.maximum(radii, radius_floor_mm)
    voxels = (points - origin) / spacing
    reach = int(np.ceil(effective.max() / spacing.min())) + 1
    low = np.maximum(np.floor(voxels.min(0)).astype(int) - reach, 0)
    high = np.minimum(np.ceil(voxels.max(0)).astype(int) + reach + 1, np.asarray(shape))
    box = tuple(int(n) for n in np.maximum(high - low, 1))
    distance = np.full(int(np.prod(box)), far, np.float32)
    covering = np.zeros(int(np.prod(box)), np.float32)
    local = voxels - low
    # stamp points in groups of similar reach, so thin vessels do not pay for the carotid's neighbourhood
    reaches = np.ceil(effective / spacing.min()).astype(int) + 1
    for group_reach in np.unique(reaches):
        members = reaches == group_reach
        grid = np.arange(-group_reach, group_reach + 1)
        offsets = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 3)
        offsets = offsets[np.linalg.norm(offsets * spacing, axis=1) <= group_reach * spacing.max()]
        centres = np.rint(local[members]).astype(np.int64)
        for chunk in range(0, len(centres), 4096):
            c = centres[chunk:chunk + 4096]
            cells = c[:, None, :] + offsets[None, :, :]  # (n, m, 3)
            d = np.linalg.norm((cells - local[members][chunk:chunk + 4096, None, :]) * spacing, axis=-1)
            d = d - effective[members][chunk:chunk + 4096, None]
            valid = np.all((cells >= 0) & (cells < np.asarray(box)), axis=-1)
            flat = np.ravel_multi_index(tuple(cells[valid].T), box)
            values = d[valid].astype(np.float32)
            np.minimum.at(distance, flat, values)
            inside = values <= 0
            np.maximum.at(covering, flat[inside],
                          np.broadcast_to(radii[members][chunk:chunk + 4096, None], d.shape)[valid][inside])
    return distance.reshape(box), covering.reshape(box).astype(np.float32), tuple(int(v) for v in low)


# ----------------------------------------------------------------------------------------------------------------------
# growth


def _grow(tree: VesselTree, guide: GuideField, start: np.ndarray, direction: np.ndarray, radius: float,
          budget_mm: float, min_radius: float, rng: np.random.Generator, name: str, territory: np.ndarray) -> float:
    """Grow a cortical branch from ``start`` towards its territory; returns the centreline length used.

    The branch first runs towards a target point of ``territory`` (K, 3) mm until it reaches CSF on the way (the
    opercular part of a fissure that the template does not resolve), then walks in segments of 8-20 mm that prefer
    CSF, go straight on and still lean towards the target. At the end of each segment the stem continues nearly as
    thick and a thinner side branch leaves for a new target nearby, until the radius drops below ``min_radius`` or
    ``budget_mm`` is used.
    """
    used = 0.0
    if len(territory) == 0:
        return used
    target = _nearby(territory, np.asarray(start, float), rng)
    stack = [(np.asarray(start, float), _unit(direction), float(radius), target, True)]
    while stack and used < budget_mm:
        point, heading, r, target, transit = stack.pop()
        if r < min_radius:
            continue
        steps = int((MAX_TRANSIT_MM if transit else rng.uniform(8.0, 20.0)) / STEP_MM)
        points = [point]
        off_course = 0  # consecutive steps outside CSF (a branch may cross a gyral crown, not dive into white matter)
        for _ in range(steps):
            to_target = target - point
            for cone in CONES_DEG:  # turn harder only when every direction in the narrow cone leaves the head
                candidates = _random_cone(heading, np.deg2rad(cone), rng, count=12)
                positions = point + STEP_MM * candidates
                csf, allowed = guide.lookup(positions)
                if allowed.any():
                    break
            score = csf + 0.25 * (candidates @ heading) + 0.1 * rng.random(len(candidates))
            if float(to_target @ to_target) > 36.0:
                score += (0.9 if transit else 0.3) * (candidates @ _unit(to_target))
            score[~allowed] = -np.inf
            best = int(np.argmax(score))
            if not np.isfinite(score[best]):
                break
            off_course = off_course + 1 if csf[best] < 0.1 else 0
            if not transit and off_course > MAX_OFF_COURSE_STEPS:
                break
            heading = _unit(0.5 * heading + 0.5 * candidates[best] + rng.normal(0.0, WANDER, 3))
            point = positions[best]
            points.append(point)
            if transit and csf[best] >= 0.3:
                transit = False
                break
        if len(points) < 3 or transit:  # too short, or never reached CSF: no branch here
            continue
        points = _smooth_path(np.asarray(points))
        radii = np.linspace(r, r * 0.98, len(points))
        tree.add(name, points, radii)
        used += STEP_MM * (len(points) - 1)
        end_r, end = radii[-1], points[-1]
        if np.linalg.norm(target - end) < 6.0:
            target = _nearby(territory, end, rng)
        # the stem goes on nearly as thick, slightly turned; a thinner side branch leaves at a wider angle
        side = (end_r * rng.uniform(0.6, 0.8), np.deg2rad(rng.uniform(35.0, 70.0)), _nearby(territory, end, rng))
        stem = (end_r * rng.uniform(0.93, 0.99), np.deg2rad(rng.uniform(5.0, 20.0)), target)
        for child_r, angle, child_target in (side, stem):  # the stem is popped (grown) first
            stack.append((end, _rotate_away(heading, angle, rng), child_r, child_target, False))
    return used


def _smooth_path(points: np.ndarray) -> np.ndarray:
    """Points (N, 3) with a 5-point moving average applied twice (the end points stay): no kinks at 1 mm steps."""
    if len(points) < 5:
        return points
    smooth = points.copy()
    kernel = np.ones(5) / 5
    for _ in range(2):
        inner = np.stack([np.convolve(smooth[:, i], kernel, mode="valid") for i in range(3)], axis=1)
        smooth = np.vstack([points[:2], inner, points[-2:]])
    return smooth


def _territory_points(guide: GuideField, box, side: float) -> np.ndarray:
    """Surface points (K, 3) mm inside a territory box given for the right side (``side`` -1 mirrors it)."""
    (x0, x1), (y0, y1), (z0, z1) = box
    low_x, high_x = (x0, x1) if side > 0 else (-x1, -x0)
    p = guide.surface
    inside = (p[:, 0] >= low_x) & (p[:, 0] <= high_x) & (p[:, 1] >= y0) & (p[:, 1] <= y1)
    inside &= (p[:, 2] >= z0) & (p[:, 2] <= z1)
    return p[inside]


def _nearby(territory: np.ndarray, point: np.ndarray, rng: np.random.Generator, radius_mm: float = 45.0):
    """A random territory point (3,) within ``radius_mm`` of ``point`` (any territory point if none is that close)."""
    close = territory[np.linalg.norm(territory - point, axis=1) < radius_mm]
    pool = close if len(close) else territory
    return pool[rng.integers(len(pool))]


def _snap(guide: GuideField, point: np.ndarray) -> np.ndarray:
    """Move ``point`` (3,) mm to the most CSF-like allowed grid point within :data:`SNAP_MM` (closest on ties)."""
    spacing = float(np.diag(guide.affine)[:3].min())
    reach = np.arange(-SNAP_MM, SNAP_MM + 1e-6, max(spacing, 1.0))
    offsets = np.stack(np.meshgrid(reach, reach, reach, indexing="ij"), -1).reshape(-1, 3)
    offsets = offsets[np.linalg.norm(offsets, axis=1) <= SNAP_MM]
    candidates = point + offsets
    csf, allowed = guide.lookup(candidates)
    score = np.where(allowed, csf, -1.0) - 0.02 * np.linalg.norm(offsets, axis=1)
    return candidates[int(np.argmax(score))]


def _unit(v: np.ndarray) -> np.ndarray:
    """``v`` (3,) scaled to unit length."""
    v = np.asarray(v, float)
    return v / max(float(np.sqrt(v @ v)), 1e-12)


def _basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors (3,) perpendicular to unit ``axis`` (3,) and to each other."""
    x, y, z = (float(c) for c in axis)
    u = np.array([0.0, z, -y]) if abs(x) < 0.9 else np.array([-z, 0.0, x])  # axis x (1,0,0) or axis x (0,1,0)
    u /= max(float(np.sqrt(u @ u)), 1e-12)
    w = np.array([y * u[2] - z * u[1], z * u[0] - x * u[2], x * u[1] - y * u[0]])
    return u, w


def _random_cone(axis: np.ndarray, half_angle: float, rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` random unit vectors (count, 3) within ``half_angle`` (radians) of unit ``axis`` (3,)."""
    cos_theta = rng.uniform(np.cos(half_angle), 1.0, count)
    phi = rng.uniform(0.0, 2 * np.pi, count)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    u, w = _basis(axis)
    return (cos_theta[:, None] * axis + (sin_theta * np.cos(phi))[:, None] * u
            + (sin_theta * np.sin(phi))[:, None] * w)


def _rotate_away(axis: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector (3,) at exactly ``angle`` (radians) from unit ``axis`` (3,), in a random direction around it."""
    u, w = _basis(axis)
    phi = rng.uniform(0.0, 2 * np.pi)
    return _unit(np.cos(angle) * axis + np.sin(angle) * (np.cos(phi) * u + np.sin(phi) * w))
