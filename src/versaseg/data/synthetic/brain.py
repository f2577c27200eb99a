"""Synthetic multi-modal brain MR from real atlases: T1-weighted, heavy T2 (MR cisternography) and TOF angiography.

Two steps, in the spirit of SynthSeg (Billot et al., 2023):

1. **Reference anatomy** (:func:`build_reference`, once per process and grid spacing). The Neuromorphometrics
   maximum-probability labels give the structures (cerebral cortex and white matter, caudate, putamen, pallidum,
   thalamus, hippocampus, amygdala, accumbens, ventral diencephalon, cerebellar cortex and white matter, brainstem,
   ventricles); the ICBM 2009c T1 template splits them into tissues: CSF below the midpoint between the ventricle and
   cortex medians (sulci, fissures, cisterns), white matter above the midpoint between the cortex and white-matter
   medians, grey matter in between (cerebellum likewise). The brainstem is extended down as the spinal cord, a 2 mm dura
   layer (tentorium) separates cerebrum from cerebellum, the falx splits the interhemispheric fissure, and the distance
   from the brain (mm) is kept to build the shells of CSF, dura, skull (with marrow) and scalp per case.
2. **A case** (:func:`generate_case`). A random affine (rotation, anisotropic scale, shear, shift) and a smooth
   nonlinear displacement map every output voxel into the reference; the tissue map is sampled (nearest neighbour),
   shells of random thickness are laid around the brain, an arterial tree is grown and drawn
   (:mod:`versaseg.data.synthetic.vessels`). Each tissue gets per-modality intensities drawn around MR priors, with a
   minimum contrast enforced between tissues of different labels; the template adds real within-tissue texture;
   then partial-volume blur with a random slice thickness, a bias field and Rician noise.

Channels: ``T1`` (MPRAGE-like: white matter bright, CSF dark, vessels grey), ``T2`` (heavy T2 / cisternography:
CSF very bright, brain grey, vessels dark flow voids) and ``TOF`` (background suppressed, fat bright-ish, arteries
bright, thicker ones brighter). Labels come from the same tissue map, so every label boundary is a tissue boundary.
All arrays are in canonical RAS+ axis order (X, Y, Z).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from versaseg.data.synthetic import atlas as atlas_mod
from versaseg.data.synthetic import vessels as vessel_mod
from versaseg.data.synthetic.phantom import _rotation, _smooth_field
from versaseg.errors import InputError

CHANNELS = ("T1", "T2", "TOF")
TISSUES = (
    "air", "scalp", "muscle", "skull", "marrow", "dura", "csf", "ventricle", "cortex", "white_matter", "caudate",
    "putamen", "pallidum", "thalamus", "hippocampus", "amygdala", "accumbens", "ventral_dc", "cerebellum_cortex",
    "cerebellum_wm", "brainstem", "vessel",
)
T = {name: index for index, name in enumerate(TISSUES)}
# Mean intensity per tissue and channel (T1, T2, TOF) before the per-case draws; 1 is about the brightest tissue.
PRIORS = {
    "air": (0.0, 0.0, 0.0),
    "scalp": (0.85, 0.45, 0.20),  # skin + fat: bright in T1, bright-ish in heavy T2 and TOF
    "muscle": (0.38, 0.12, 0.08),
    "skull": (0.05, 0.03, 0.02),
    "marrow": (0.62, 0.25, 0.15),
    "dura": (0.16, 0.08, 0.05),
    "csf": (0.10, 1.00, 0.04),
    "ventricle": (0.10, 1.00, 0.04),
    "cortex": (0.48, 0.30, 0.10),
    "white_matter": (0.80, 0.18, 0.13),
    "caudate": (0.54, 0.29, 0.11),
    "putamen": (0.58, 0.25, 0.11),
    "pallidum": (0.70, 0.15, 0.12),
    "thalamus": (0.63, 0.23, 0.12),
    "hippocampus": (0.47, 0.33, 0.10),
    "amygdala": (0.49, 0.31, 0.10),
    "accumbens": (0.54, 0.29, 0.11),
    "ventral_dc": (0.66, 0.20, 0.12),
    "cerebellum_cortex": (0.50, 0.32, 0.10),
    "cerebellum_wm": (0.76, 0.19, 0.12),
    "brainstem": (0.74, 0.27, 0.12),
    "vessel": (0.30, 0.03, 1.00),  # flowing blood: flow void in T2, inflow-bright in TOF
}
PARENCHYMA = (
    "cortex", "white_matter", "caudate", "putamen", "pallidum", "thalamus", "hippocampus", "amygdala", "accumbens",
    "ventral_dc", "cerebellum_cortex", "cerebellum_wm", "brainstem",
)
CEREBRUM = ("cortex", "white_matter", "caudate", "putamen", "pallidum", "thalamus", "hippocampus", "amygdala",
            "accumbens", "ventral_dc")
BASAL_GANGLIA = ("caudate", "putamen", "pallidum")
INTRACRANIAL = ("dura", "csf", *PARENCHYMA)  # where a vessel may be drawn
# label set -> {label name: tissues}; label values follow the order, background (0) is everything else.
LABEL_SETS = {
    "brain": {
        "cerebrum": CEREBRUM,
        "cerebellum": ("cerebellum_cortex", "cerebellum_wm"),
        "brainstem": ("brainstem",),
        "vessels": ("vessel",),
    },
    "basal-ganglia": {"caudate": ("caudate",), "putamen": ("putamen",), "pallidum": ("pallidum",)},
    # the label-completion benchmark's structures; vessels are left out of every class (background)
    "structures": {
        "cerebrum": tuple(t for t in CEREBRUM if t not in BASAL_GANGLIA),
        "cerebellum": ("cerebellum_cortex", "cerebellum_wm"),
        "brainstem": ("brainstem",),
        "basal_ganglia": BASAL_GANGLIA,
    },
    # the binary task of the loss study: vessels against everything else
    "vessels": {"vessels": ("vessel",)},
}
# MNI152 brains are larger than individual adult brains (~1.7 L of parenchyma here): cases are drawn at 0.9 times
# the template size on average (~1.25 L), in a typical head field of view.
BRAIN_SCALE = 0.9
FOV_MM = (176.0, 208.0, 176.0)
MIN_CONTRAST = 0.08  # least |mean difference| (prior units) between tissues of different labels, in some channel
CSF_SHELL_MM = (1.5, 3.5)
DURA_MM = 1.0
SKULL_MM = (5.0, 8.0)
SCALP_MM = (4.0, 7.0)
NECK_TOP_MM = -40.0  # below this MNI z, an elliptic neck (muscle under skin) fills the space left around the canal
NECK_RADII_MM = (46.0, 50.0)  # at the bottom of the head box; widening by NECK_FLARE up to NECK_TOP_MM
NECK_FLARE = 0.6
NECK_FLARE_FROM_MM = -90.0
NECK_CENTRE_Y_MM = -30.0
VESSEL_FLOOR = 0.6  # vessels thinner than this many voxels are drawn this thick (a one-voxel line)
VESSEL_CUTOFF = 0.25  # vessels thinner than this many voxels (radius) are not drawn at all


def labels_of(label_set: str) -> dict[str, int]:
    """``{name: value}`` of a label set, background 0 first; InputError listing the valid sets for a bad name."""
    if label_set not in LABEL_SETS:
        raise InputError(f"unknown label set '{label_set}'; valid: {', '.join(LABEL_SETS)}")
    return {"background": 0, **{name: value for value, name in enumerate(LABEL_SETS[label_set], start=1)}}


def tissue_to_label(label_set: str) -> np.ndarray:
    """Lookup table (len(TISSUES),) uint8: tissue index -> label value of ``label_set``."""
    labels_of(label_set)
    lut = np.zeros(len(TISSUES), np.uint8)
    for value, tissues in enumerate(LABEL_SETS[label_set].values(), start=1):
        for tissue in tissues:
            lut[T[tissue]] = value
    return lut


# ----------------------------------------------------------------------------------------------------------------------
# reference anatomy


@dataclass
class Reference:
    """The reference anatomy on an axis-aligned MNI grid (X, Y, Z) at isotropic ``spacing`` mm.

    tissue: (X, Y, Z) uint8 tissue index (:data:`TISSUES`), ``air`` outside the brain and its inner CSF.
    template: (X, Y, Z) float32 ICBM 2009c T1 intensity divided by its white-matter median (0 outside the brain).
    outside_mm: (X, Y, Z) float32 distance (mm) to the nearest non-air voxel (0 inside).
    template_level: (len(TISSUES),) float32 median normalised template intensity per tissue (0 for non-parenchyma).
    adjacency: (len(TISSUES), len(TISSUES)) bool, tissues that touch or lie within two voxels of each other.
    guide: where vessels may run (:class:`versaseg.data.synthetic.vessels.GuideField`).
    affine: (4, 4) voxel -> MNI mm.
    """

    tissue: np.ndarray
    template: np.ndarray
    outside_mm: np.ndarray
    template_level: np.ndarray
    adjacency: np.ndarray
    guide: vessel_mod.GuideField
    affine: np.ndarray

    @property
    def spacing(self) -> float:
        return float(self.affine[0, 0])


def reference_spacing(spacing: tuple[float, float, float]) -> float:
    """The reference grid spacing for an output spacing: 1 mm, coarser for coarse outputs (2/3 of the finest axis)."""
    return float(max(1.0, round(min(spacing) / 1.5, 2)))


@functools.lru_cache(maxsize=2)
def build_reference(spacing: float) -> Reference:
    """Build (and cache per process) the reference anatomy at isotropic ``spacing`` mm; about 4 s at 1 mm."""
    grid = atlas_mod.load_atlas(spacing)
    structure, template = grid.structure, grid.template
    sid = atlas_mod.structure_id

    def median(*names: str) -> float:
        mask = np.isin(structure, [sid(n) for n in names]) & (template > 0)
        return float(np.median(template[mask]))

    csf_level, gm_level, wm_level = median("ventricle"), median("cortex"), median("cerebral_wm")
    cb_gm_level, cb_wm_level = median("cerebellum_cortex"), median("cerebellum_wm")
    csf_cut, wm_cut, cb_cut = (csf_level + gm_level) / 2, (gm_level + wm_level) / 2, (cb_gm_level + cb_wm_level) / 2

    structure = _fill_rim(structure, template > 0, iterations=int(np.ceil(3.0 / spacing)))
    cord = _spinal_cord(structure == sid("brainstem"), spacing)
    tissue = np.zeros(structure.shape, np.uint8)
    cerebral = np.isin(structure, [sid("cortex"), sid("cerebral_wm")])
    tissue[cerebral] = np.where(template[cerebral] >= wm_cut, T["white_matter"], T["cortex"])
    for name in ("caudate", "putamen", "pallidum", "thalamus", "hippocampus", "amygdala", "accumbens", "ventral_dc"):
        tissue[structure == sid(name)] = T[name]
    cerebellum = np.isin(structure, [sid("cerebellum_cortex"), sid("cerebellum_wm")])
    tissue[cerebellum] = np.where(template[cerebellum] >= cb_cut, T["cerebellum_wm"], T["cerebellum_cortex"])
    tissue[structure == sid("brainstem")] = T["brainstem"]
    tissue[cord] = T["brainstem"]
    tissue[structure == sid("ventricle")] = T["ventricle"]
    tissue[structure == sid("csf")] = T["csf"]
    dark = (template > 0) & (template < csf_cut) & (tissue != T["ventricle"])
    tissue[dark | ((template > 0) & (tissue == T["air"]))] = T["csf"]

    _add_dura(tissue, grid.affine)
    outside_mm = ndimage.distance_transform_edt(tissue == T["air"]).astype(np.float32) * np.float32(spacing)
    normalised = (template / np.float32(wm_level)).astype(np.float32)
    level = np.zeros(len(TISSUES), np.float32)
    for name in PARENCHYMA:
        values = normalised[(tissue == T[name]) & (normalised > 0)]
        level[T[name]] = float(np.median(values)) if values.size else 0.0
    guide = _guide_field(tissue, outside_mm, grid.affine)
    return Reference(tissue, normalised, outside_mm, level, _adjacency(tissue), guide, grid.affine)


def _fill_rim(structure: np.ndarray, mask: np.ndarray, iterations: int) -> np.ndarray:
    """Give ``mask`` voxels outside the atlas (X, Y, Z) the structure of a neighbour, growing up to ``iterations``."""
    structure = structure.copy()
    footprint = ndimage.generate_binary_structure(3, 1)
    for _ in range(iterations):
        missing = mask & (structure == 0)
        if not missing.any():
            break
        grown = ndimage.grey_dilation(structure, footprint=footprint)
        structure[missing] = grown[missing]
    return structure


def _spinal_cord(brainstem: np.ndarray, spacing: float) -> np.ndarray:
    """The brainstem's lowest cross-section (X, Y) extruded down to the grid bottom, tapering to a cord (X, Y, Z)."""
    cord = np.zeros(brainstem.shape, bool)
    present = np.flatnonzero(brainstem.any(axis=(0, 1)))
    if present.size < 2:
        return cord
    section = brainstem[:, :, present[0] + 1]
    for k in range(present[0] - 1, -1, -1):
        depth_mm = (present[0] - k) * spacing
        if depth_mm % 6.0 < spacing and section.sum() > 40 / spacing**2:
            section = ndimage.binary_erosion(section)
        cord[:, :, k] = section
    return cord


def _add_dura(tissue: np.ndarray, affine: np.ndarray) -> None:
    """In place: the tentorium (2 mm of cerebrum next to the cerebellum), the falx (midline CSF above z = -10 mm)."""
    spacing = float(affine[0, 0])
    cerebellum = np.isin(tissue, [T["cerebellum_cortex"], T["cerebellum_wm"]])
    near = ndimage.binary_dilation(cerebellum, iterations=max(1, int(round(2.0 / spacing))))
    tissue[near & np.isin(tissue, [T[name] for name in CEREBRUM])] = T["dura"]
    x_mm = affine[0, 3] + spacing * np.arange(tissue.shape[0])
    z_mm = affine[2, 3] + spacing * np.arange(tissue.shape[2])
    plane = int(np.argmin(np.abs(x_mm)))
    falx = (tissue[plane] == T["csf"]) & (z_mm[None, :] > -10.0)
    tissue[plane][falx] = T["dura"]


def _adjacency(tissue: np.ndarray) -> np.ndarray:
    """Pairs of tissues (T, T) bool that touch or lie within two voxels of each other along an axis."""
    n = len(TISSUES)
    touching = np.zeros(n * n, bool)
    for axis in range(3):
        for shift in (1, 2):
            a = np.take(tissue, np.arange(shift, tissue.shape[axis]), axis=axis).astype(np.int64)
            b = np.take(tissue, np.arange(0, tissue.shape[axis] - shift), axis=axis).astype(np.int64)
            differ = a != b
            touching[np.unique(a[differ] * n + b[differ])] = True
    matrix = touching.reshape(n, n)
    return matrix | matrix.T


def _guide_field(tissue: np.ndarray, outside_mm: np.ndarray, affine: np.ndarray) -> vessel_mod.GuideField:
    """CSF preference (sulci, fissures, cisterns, the inner 2 mm around the brain) and the allowed space for vessels."""
    spacing = float(affine[0, 0])
    csf_like = (tissue == T["csf"]) | ((outside_mm > 0) & (outside_mm <= 2.0))
    csf = ndimage.gaussian_filter(csf_like.astype(np.float32), sigma=1.0 / spacing)
    allowed = (outside_mm <= 1.5) & (tissue != T["ventricle"])
    shell = np.argwhere((outside_mm > 0) & (outside_mm <= 1.5))[:: max(1, int(round(2 / spacing**2)))]
    surface = (shell * spacing + affine[:3, 3]).astype(np.float32)
    return vessel_mod.GuideField(csf.astype(np.float32), allowed, affine, surface)


# ----------------------------------------------------------------------------------------------------------------------
# one case


@dataclass
class SyntheticCase:
    """One generated case.

    channels: ``{"T1": (X, Y, Z), "T2": ..., "TOF": ...}`` int16, non-negative scanner units (brightest tissue
        about 700-1300, as a scanner stores magnitude images).
    label: (X, Y, Z) uint8, values of :func:`labels_of` for the case's label set.
    affine: (4, 4) voxel -> RAS+ mm; the head centre lies near the MNI origin.
    info: the case's random draws worth recording (slice thickness per channel, vessel length, ...).
    """

    channels: dict[str, np.ndarray]
    label: np.ndarray
    affine: np.ndarray
    info: dict = field(default_factory=dict)


def head_shape(spacing: tuple[float, float, float]) -> tuple[int, int, int]:
    """The default output shape (X, Y, Z): the field of view :data:`FOV_MM` at ``spacing``."""
    return tuple(int(n) for n in np.ceil(np.asarray(FOV_MM) / np.asarray(spacing, float)))


def case_affine(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """The RAS+ affine (4, 4) of an output case: ``spacing`` on the diagonal, centred on the head box centre."""
    affine = np.diag([*map(float, spacing), 1.0])
    affine[:3, 3] = _head_centre() - (np.asarray(shape, float) - 1) / 2 * np.asarray(spacing, float)
    return affine


def generate_case(shape: tuple[int, int, int], spacing: tuple[float, float, float], seed: int,
                  label_set: str = "brain", reference: Reference | None = None) -> SyntheticCase:
    """Generate one case (a deterministic function of its arguments).

    Args:
        shape: output (X, Y, Z) voxels; :func:`head_shape` covers the whole head.
        spacing: output voxel size (mm) along X, Y, Z.
        seed: the case's seed.
        label_set: a key of :data:`LABEL_SETS`.
        reference: the reference anatomy; default :func:`build_reference` at :func:`reference_spacing`.
    """
    lut = tissue_to_label(label_set)
    if reference is None:
        reference = build_reference(reference_spacing(spacing))
    rng = np.random.default_rng(seed)
    coords = _case_coordinates(reference, shape, spacing, rng)  # (3, X, Y, Z) reference voxel coordinates
    tissue = ndimage.map_coordinates(reference.tissue, coords, order=0, mode="constant", cval=T["air"],
                                     output=np.uint8)
    outside = ndimage.map_coordinates(reference.outside_mm, coords, order=1, mode="nearest", prefilter=False)
    template = ndimage.map_coordinates(reference.template, coords, order=1, mode="constant", cval=0.0,
                                       prefilter=False)
    z_mm = reference.affine[2, 3] + reference.spacing * coords[2]
    y_mm = reference.affine[1, 3] + reference.spacing * coords[1]
    x_mm = reference.affine[0, 3] + reference.spacing * coords[0]
    _add_shells(tissue, outside + _outside_correction(outside, reference, coords), (x_mm, y_mm, z_mm), shape, rng)
    del outside, x_mm, y_mm, z_mm

    finest = float(min(spacing))
    tree = vessel_mod.grow_arterial_tree(reference.guide, rng, min_radius=max(vessel_mod.MIN_RADIUS_MM,
                                                                                VESSEL_CUTOFF * finest))
    distance, radius_box, corner = vessel_mod.rasterise_tree(tree, reference.tissue.shape, reference.affine,
                                                             radius_floor_mm=VESSEL_FLOOR * finest,
                                                             min_radius_mm=VESSEL_CUTOFF * finest)
    local = coords - np.asarray(corner, np.float32)[:, None, None, None]
    near = np.all((local >= 0) & (local <= np.asarray(distance.shape, np.float32)[:, None, None, None] - 1), axis=0)
    sample = local[:, near]
    vessel = np.zeros(shape, bool)
    vessel[near] = ndimage.map_coordinates(distance, sample, order=1, prefilter=False) <= 0.0
    vessel &= np.isin(tissue, [T[name] for name in INTRACRANIAL])
    vessel_radius = np.zeros(shape, np.float32)
    vessel_radius[near] = ndimage.map_coordinates(radius_box, sample, order=0, prefilter=False)
    vessel_radius[~vessel] = 0.0
    tissue[vessel] = T["vessel"]
    del coords, local, sample, near

    channels, info = _render(tissue, template, vessel_radius, spacing, reference, label_set, rng)
    label = lut[tissue]
    brain = int(np.count_nonzero(np.isin(tissue, [T[n] for n in PARENCHYMA + ("vessel",)])))
    info.update({
        "vessel_length_mm": round(tree.length_mm(), 1),
        "vessel_fraction_of_brain": round(int(vessel.sum()) / max(brain, 1), 5),
    })
    return SyntheticCase(channels, label, case_affine(shape, spacing), info)


def _head_centre() -> np.ndarray:
    return np.array([(low + high) / 2 for low, high in atlas_mod.HEAD_BOX_MM])


def _case_coordinates(reference: Reference, shape, spacing, rng: np.random.Generator) -> np.ndarray:
    """Reference voxel coordinates (3, X, Y, Z) float32 of every output voxel.

    Output voxel at ``u`` mm from the grid centre shows MNI point ``c + t + A u + d(u)``: the head centre ``c``, a
    random shift ``t`` (4 mm SD), an affine ``A`` (rotation up to 10 degrees; scale :data:`BRAIN_SCALE` times a
    random per-axis factor of about 0.9-1.1; shear up to 0.04) and a smooth displacement ``d`` (1.5-3 mm SD,
    5 control points per axis).
    """
    angles = np.deg2rad(rng.uniform(-1.0, 1.0, 3) * np.array([10.0, 6.0, 10.0]))
    scale = BRAIN_SCALE * np.exp(rng.normal(0.0, 0.035, 3) + rng.normal(0.0, 0.03))
    shear = np.eye(3)
    shear[np.triu_indices(3, 1)] = rng.uniform(-0.04, 0.04, 3)
    matrix = _rotation(angles) @ shear @ np.diag(1.0 / scale)
    shift = rng.normal(0.0, 4.0, 3)
    field = _smooth_field(shape, rng, controls=5, count=3)
    field *= np.float32(rng.uniform(1.5, 3.0) / max(float(field.std()), 1e-6))  # mm
    origin, step = reference.affine[:3, 3], reference.spacing
    axes = [((np.arange(n) - (n - 1) / 2) * s).astype(np.float32) for n, s in zip(shape, spacing, strict=True)]
    centre = _head_centre() + shift
    coords = np.empty((3, *shape), np.float32)
    for i in range(3):
        mm = (matrix[i, 0] * axes[0][:, None, None] + matrix[i, 1] * axes[1][None, :, None]
              + matrix[i, 2] * axes[2][None, None, :]) + np.float32(centre[i]) + field[i]
        coords[i] = (mm - np.float32(origin[i])) / np.float32(step)
    return coords


def _outside_correction(outside: np.ndarray, reference: Reference, coords: np.ndarray) -> np.ndarray:
    """Extra distance (X, Y, Z) for voxels beyond the reference grid, where ``outside_mm`` was clamped at the edge."""
    upper = np.asarray(reference.tissue.shape, np.float32)[:, None, None, None] - 1
    beyond = np.maximum(coords - upper, 0) + np.maximum(-coords, 0)
    return np.sqrt((beyond**2).sum(axis=0)) * np.float32(reference.spacing)


def _add_shells(tissue: np.ndarray, outside: np.ndarray, mm: tuple, shape, rng: np.random.Generator) -> None:
    """In place: CSF, dura, skull (with marrow) and scalp around the brain; the neck below it.

    ``outside`` (X, Y, Z) is the distance (mm) to the brain; ``mm`` the MNI coordinates (x, y, z), each (X, Y, Z).
    Shell thicknesses vary smoothly over the head (broad and finer undulations), the diploe (marrow) takes an
    irregular 20-60 % middle part of the skull, and the neck widens towards the skull base.
    """
    broad = _smooth_field(shape, rng, controls=3, count=3)
    fine = _smooth_field(shape, rng, controls=7, count=4)
    broad /= np.float32(max(float(broad.std()), 1e-6))
    fine /= np.float32(max(float(fine.std()), 1e-6))
    csf = np.maximum(np.float32(rng.uniform(*CSF_SHELL_MM)) + 0.6 * broad[0] + 0.4 * fine[0], np.float32(1.0))
    skull = np.maximum(np.float32(rng.uniform(*SKULL_MM)) + 1.2 * broad[1] + 0.8 * fine[1], np.float32(2.5))
    scalp = np.maximum(np.float32(rng.uniform(*SCALP_MM)) + 1.2 * broad[2] + 0.6 * fine[2], np.float32(2.5))
    diploe = np.clip(np.float32(0.4) + np.float32(0.12) * fine[3], 0.2, 0.6)
    inner_table = (1.0 - diploe) / 2
    air = tissue == T["air"]
    edges = [csf, csf + np.float32(DURA_MM)]
    edges += [edges[-1] + skull * inner_table, edges[-1] + skull * (inner_table + diploe), edges[-1] + skull]
    edges.append(edges[-1] + scalp)
    names = ("csf", "dura", "skull", "marrow", "skull", "scalp")
    assigned = np.zeros(shape, bool)
    for name, edge in zip(names, edges, strict=True):
        mask = air & ~assigned & (outside <= edge)
        tissue[mask] = T[name]
        assigned |= mask
    x, y, z = mm
    below = air & ~assigned & (z < NECK_TOP_MM)
    flare = 1.0 + NECK_FLARE * np.clip((z - NECK_FLARE_FROM_MM) / (NECK_TOP_MM - NECK_FLARE_FROM_MM), 0.0, 1.0) ** 2
    radius = np.sqrt((x / NECK_RADII_MM[0]) ** 2 + ((y - NECK_CENTRE_Y_MM) / NECK_RADII_MM[1]) ** 2) / flare
    tissue[below & (radius < 1.0)] = T["muscle"]
    skin = 1.0 + np.float32(rng.uniform(*SCALP_MM)) / np.float32(min(NECK_RADII_MM))
    tissue[below & (radius >= 1.0) & (radius < skin)] = T["scalp"]


def _draw_means(reference: Reference, label_set: str, rng: np.random.Generator) -> np.ndarray:
    """Per-case mean intensity (len(TISSUES), 3) float32: priors with ~6 % random spread, minimum contrast enforced.

    Two tissues that lie next to each other in the reference (or a vessel and any intracranial tissue) and carry
    different labels differ by at least :data:`MIN_CONTRAST` in at least one channel, so every label boundary is
    visible somewhere.
    """
    priors = np.array([PRIORS[name] for name in TISSUES], np.float32)
    means = priors * np.exp(rng.normal(0.0, 0.06, priors.shape)).astype(np.float32)
    means[T["ventricle"]] = means[T["csf"]]
    means[T["air"]] = 0.0
    lut = tissue_to_label(label_set)
    adjacency = reference.adjacency.copy()
    for name in INTRACRANIAL:
        adjacency[T["vessel"], T[name]] = adjacency[T[name], T["vessel"]] = True
    pairs = [(a, b) for a, b in zip(*np.nonzero(np.triu(adjacency, 1)), strict=True) if lut[a] != lut[b]]
    for _ in range(5):
        changed = False
        for a, b in pairs:
            difference = means[a] - means[b]
            if np.abs(difference).max() >= MIN_CONTRAST - 1e-6:
                continue
            channel = int(np.argmax(np.abs(priors[a] - priors[b])))
            sign = 1.0 if priors[a, channel] >= priors[b, channel] else -1.0
            middle = (means[a, channel] + means[b, channel]) / 2
            means[a, channel] = middle + sign * MIN_CONTRAST / 2
            means[b, channel] = middle - sign * MIN_CONTRAST / 2
            changed = True
        if not changed:
            break
    return np.clip(means, 0.0, None)


def _render(tissue: np.ndarray, template: np.ndarray, vessel_radius: np.ndarray, spacing, reference: Reference,
            label_set: str, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict]:
    """The three channels (X, Y, Z) int16 from the tissue map, and the draws to record."""
    shape = tissue.shape
    means = _draw_means(reference, label_set, rng)
    parenchyma = np.isin(tissue, [T[name] for name in PARENCHYMA]) & (template > 0)
    template_offset = np.where(parenchyma, template - reference.template_level[tissue], 0.0).astype(np.float32)
    gm_wm = reference.template_level[T["white_matter"]] - reference.template_level[T["cortex"]]
    texture_strength = rng.uniform(0.4, 0.7)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape, np.float32), 0.8)
    texture *= np.float32(0.015 / max(float(texture.std()), 1e-6))
    bias = _smooth_field(shape, rng, controls=3, count=len(CHANNELS))
    bias /= np.float32(max(float(bias.std()), 1e-6))
    large = np.clip(vessel_radius / 1.5, 0.0, 1.0)
    channels, info = {}, {"slice_axis": {}, "slice_thickness_mm": {}}
    for c, name in enumerate(CHANNELS):
        slope = (means[T["white_matter"], c] - means[T["cortex"], c]) / max(gm_wm, 1e-3)
        image = means[tissue, c] + np.float32(texture_strength * slope) * template_offset
        if name == "TOF":  # inflow: thick, fast arteries brighter than thin distal branches
            vessel = tissue == T["vessel"]
            image[vessel] *= (0.7 + 0.3 * large[vessel]).astype(np.float32)
        image *= 1.0 + texture
        axis = int(rng.choice(3, p=(0.2, 0.2, 0.6)))
        thickness = float(spacing[axis]) * rng.uniform(1.0, 2.0)
        sigma = np.full(3, rng.uniform(0.35, 0.55))  # partial-volume point spread, voxels
        sigma[axis] = np.hypot(sigma[axis], thickness / 2.355 / spacing[axis])
        image = ndimage.gaussian_filter(image, sigma, mode="nearest", truncate=3.0)
        image *= np.exp(np.float32(rng.uniform(0.05, 0.18)) * bias[c])
        gain = np.float32(rng.uniform(700.0, 1300.0))
        noise = np.float32(rng.uniform(0.01, 0.025)) * gain
        image *= gain
        real = image + noise * rng.standard_normal(shape, np.float32)
        imaginary = noise * rng.standard_normal(shape, np.float32)
        magnitude = np.sqrt(real * real + imaginary * imaginary)
        channels[name] = np.clip(np.rint(magnitude), 0, np.iinfo(np.int16).max).astype(np.int16)  # as scanners store
        info["slice_axis"][name] = "xyz"[axis]
        info["slice_thickness_mm"][name] = round(thickness, 3)
    return channels, info
