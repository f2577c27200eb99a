"""A fast procedural two-channel (T1, T2) brain phantom: the built-in demo data and the unit-test workhorse.

The anatomy is a handful of implicit shapes defined in a normalised head frame (each axis of the field of view maps to
[-1, 1]; canonical RAS+ axis order: X left->right, Y posterior->anterior, Z inferior->superior):

* cerebrum (label 1): a gyrated ellipsoid split by a CSF-filled midline fissure, with cortex, white matter, deep grey
  nuclei and lateral ventricles (the ventricles are CSF and labelled background);
* cerebellum (label 2): two hemispheres and a vermis below/behind the cerebrum, with an arbor-vitae white-matter core;
* brainstem (label 3): a tube with a pontine bulge running down from the cerebrum through the foramen magnum;
* vessels (label 4): tubes of radius 1-2 voxels (circle of Willis, basilar, middle/anterior/posterior cerebral
  arteries, superior sagittal sinus) - bright in T1 (contrast/TOF-like), dark flow voids in T2.

Around the brain: a CSF shell, the skull (with marrow) and the scalp. Per seed, the generator draws position/size
jitter for every structure, a global similarity transform, a smooth low-frequency displacement field, per-tissue
intensities per channel, a multiplicative bias field per channel and Rician noise; a slight blur models the scanner's
point spread.
Everything is evaluated analytically at warped coordinates (the vessel field is resampled with
``scipy.ndimage.map_coordinates``), so a case at the default shape takes well under a second.

For realistic anatomy from real atlases use the atlas-based generator; this one is deliberately small and fast.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from versaseg.errors import InputError
from versaseg.io.atomic import atomic_folder
from versaseg.io.dataset import DatasetSpec
from versaseg.io.image import Volume, write_volume

DEFAULT_SHAPE = (64, 72, 56)
DEFAULT_SPACING = (2.0, 2.0, 2.0)
CHANNELS = ("T1", "T2")
LABELS = {"background": 0, "cerebrum": 1, "cerebellum": 2, "brainstem": 3, "vessels": 4}
MIN_SIZE = 16

# Tissue classes (intensity model) - distinct from the labels: one label covers several tissues.
AIR, SCALP, SKULL, MARROW, CSF, GM, WM, DEEP_GM, CB_GM, CB_WM, STEM, VESSEL = range(12)
# Mean intensity per tissue, columns (T1, T2), before the per-seed draws and channel gains.
_TISSUE_MEANS = np.array(
    [
        [0.00, 0.00],  # air
        [0.85, 0.60],  # scalp (skin + fat)
        [0.10, 0.07],  # cortical bone
        [0.55, 0.35],  # skull marrow (diploe)
        [0.14, 1.00],  # CSF
        [0.50, 0.66],  # cortical grey matter
        [0.80, 0.42],  # white matter
        [0.60, 0.56],  # deep grey nuclei
        [0.54, 0.62],  # cerebellar grey matter
        [0.76, 0.44],  # cerebellar white matter
        [0.70, 0.50],  # brainstem
        [0.98, 0.06],  # vessels: enhanced in T1, flow void in T2
    ],
    dtype=np.float32,
)
# Normalised thicknesses (fraction of the mean half field of view) of the shells around the brain.
_CSF_MARGIN = 0.05
_SKULL_THICKNESS = 0.07
_SCALP_THICKNESS = 0.06


def make_phantom(
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    spacing: tuple[float, float, float] = DEFAULT_SPACING,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Generate one phantom case.

    Args:
        shape: (X, Y, Z) voxels, each at least 16; the head fills the field of view whatever the shape.
        spacing: voxel size in mm along X, Y, Z; shells and vessel radii are isotropic in mm.
        seed: the same seed gives bit-identical arrays.

    Returns:
        ``(channels, label)``: channels ``{"T1": (X, Y, Z) float32, "T2": (X, Y, Z) float32}`` (non-negative,
        arbitrary scanner units) and label (X, Y, Z) uint8 with values of :data:`LABELS`.
    """
    shape, spacing = _check_geometry(shape, spacing)
    rng = np.random.default_rng(seed)
    anatomy = _draw_anatomy(rng)
    coords = _warped_coordinates(shape, rng)
    label, tissue = _rasterise(coords, anatomy, shape, spacing, rng)
    channels = _intensities(tissue, shape, spacing, rng)
    return channels, label


def write_phantom_dataset(
    out: str | Path,
    cases: int = 6,
    test_cases: int = 2,
    seed: int = 0,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    spacing: tuple[float, float, float] = DEFAULT_SPACING,
    overwrite: bool = False,
) -> Path:
    """Write a phantom dataset in the nnU-Net v2 layout and return its folder.

    ```
    out/dataset.json                 channel_names {"0": "T1", "1": "T2"}, labels, numTraining, file_ending
    out/imagesTr/phantom_000_0000.nii.gz, phantom_000_0001.nii.gz, ...
    out/labelsTr/phantom_000.nii.gz, ...
    out/imagesTs/phantom_006_0000.nii.gz, ...   (test cases continue the numbering)
    out/labelsTs/phantom_006.nii.gz, ...        (for evaluating predictions of the test cases)
    ```

    Volumes are float32 images and uint8 labels with an RAS+ affine of the given spacing and a non-zero origin.
    Case ``i`` uses a seed derived from ``(seed, i)``, so a dataset is reproducible and its cases differ. The dataset is
    written into a temporary sibling folder and renamed into place at the end: a kill leaves no half-written dataset.
    Raises :class:`InputError` if ``out`` is a non-empty folder (unless ``overwrite``) or a file.
    """
    out = Path(out)
    if int(cases) != cases or cases < 1:
        raise InputError(f"cases must be a positive integer, got {cases!r}")
    if int(test_cases) != test_cases or test_cases < 0:
        raise InputError(f"test_cases must be a non-negative integer, got {test_cases!r}")
    shape, spacing = _check_geometry(shape, spacing)
    if out.exists():
        if not out.is_dir():
            raise InputError("output exists and is not a folder", out)
        if any(out.iterdir()) and not overwrite:
            raise InputError("output folder is not empty; pass --overwrite to replace it", out)
    with atomic_folder(out, overwrite=True) as tmp:
        _write_dataset_into(tmp, int(cases), int(test_cases), seed, shape, spacing)
    return out


def phantom_affine(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """The RAS+ affine (4, 4) of written phantoms: the given spacing, the head centre near (1, -2, 3) mm."""
    affine = np.diag([*map(float, spacing), 1.0])
    affine[:3, 3] = -(np.asarray(shape, float) - 1) / 2 * np.asarray(spacing, float) + np.array([1.0, -2.0, 3.0])
    return affine


def case_seed(seed: int, index: int) -> int:
    """The seed of case ``index`` of a dataset generated with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


# ----------------------------------------------------------------------------------------------------------------------
# dataset writing


def _write_dataset_into(root: Path, cases: int, test_cases: int, seed: int, shape, spacing) -> None:
    affine = phantom_affine(shape, spacing)
    for index in range(cases + test_cases):
        training = index < cases
        images = root / ("imagesTr" if training else "imagesTs")
        labels = root / ("labelsTr" if training else "labelsTs")
        case_id = f"phantom_{index:03d}"
        channels, label = make_phantom(shape, spacing, case_seed(seed, index))
        like = Volume(label, affine)
        for number, name in enumerate(CHANNELS):
            write_volume(images / f"{case_id}_{number:04d}.nii.gz", channels[name], like)
        write_volume(labels / f"{case_id}.nii.gz", label, like)
    description = (
        "Procedural two-channel (T1, T2) brain phantom from versaseg.data.synthetic.phantom: cerebrum with midline "
        "fissure, cerebellum, brainstem and thin vessels inside a CSF shell, skull and scalp; per-case smooth "
        "deformation, intensity draws, bias field, Rician noise and blur. labelsTs holds the test cases' ground truth."
    )
    extra = {
        "name": "Phantom",
        "description": description,
        "numTest": test_cases,
        "spacing": [float(s) for s in spacing],
        "shape": [int(s) for s in shape],
        "seed": int(seed),
    }
    spec = DatasetSpec(root, dict(enumerate(CHANNELS)), dict(LABELS), ".nii.gz", cases, extra)
    spec.save()


def _check_geometry(shape, spacing) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    try:
        shape_t = tuple(int(s) for s in shape)
        spacing_t = tuple(float(s) for s in spacing)
    except (TypeError, ValueError):
        raise InputError(f"shape and spacing must be three numbers each, got {shape!r} and {spacing!r}") from None
    if len(shape_t) != 3 or min(shape_t) < MIN_SIZE:
        raise InputError(f"phantom shape must be three sizes of at least {MIN_SIZE} voxels, got {shape!r}")
    if len(spacing_t) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing_t):
        raise InputError(f"phantom spacing must be three positive numbers, got {spacing!r}")
    return shape_t, spacing_t


# ----------------------------------------------------------------------------------------------------------------------
# geometry


def _axis(n: int) -> np.ndarray:
    """Normalised coordinates (n,) of voxel centres: the field of view spans [-1, 1]."""
    return ((np.arange(n, dtype=np.float32) + 0.5) * (2.0 / n) - 1.0).astype(np.float32)


def _smooth_field(shape, rng: np.random.Generator, controls: int = 4, count: int = 1) -> np.ndarray:
    """``count`` smooth random fields (count, X, Y, Z), unit-ish amplitude, from Gaussian bumps on a coarse grid."""
    centres = np.linspace(-1.0, 1.0, controls)
    width = 2.0 / (controls - 1)
    bases = [np.exp(-0.5 * ((_axis(n)[:, None] - centres[None, :]) / width) ** 2).astype(np.float32) for n in shape]
    weights = rng.normal(0.0, 1.0, (count, controls, controls, controls)).astype(np.float32)
    return np.einsum("xa,yb,zc,nabc->nxyz", *bases, weights, optimize=True).astype(np.float32)


def _rotation(angles) -> np.ndarray:
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _warped_coordinates(shape, rng: np.random.Generator) -> np.ndarray:
    """Template coordinates (3, X, Y, Z) float32 of every output voxel.

    Output voxel ``u`` (normalised) shows template point ``p = R^T (u - t) / s + d(u)``: a random similarity transform
    (scale ``s``, rotation ``R``, translation ``t``) plus a smooth low-frequency displacement ``d``.
    """
    scale = rng.uniform(0.93, 1.05, 3)
    rotation = _rotation(np.deg2rad(rng.uniform(-6.0, 6.0, 3)) * np.array([1.0, 0.5, 1.0]))
    shift = rng.normal(0.0, 0.025, 3)
    axes = [_axis(n) for n in shape]
    centred = [
        (axes[0] - shift[0])[:, None, None],
        (axes[1] - shift[1])[None, :, None],
        (axes[2] - shift[2])[None, None, :],
    ]
    displacement = _smooth_field(shape, rng, controls=4, count=3) * np.float32(rng.uniform(0.02, 0.035))
    coords = np.empty((3, *shape), np.float32)
    for i in range(3):
        coords[i] = (sum(rotation[j, i] * centred[j] for j in range(3)) / scale[i]) + displacement[i]
    return coords


def _ellipsoid(coords, centre, radii) -> np.ndarray:
    """Normalised radius (X, Y, Z): < 1 inside the axis-aligned ellipsoid."""
    x, y, z = coords
    return np.sqrt(((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
                   + ((z - centre[2]) / radii[2]) ** 2)


def _pattern(coords, frequencies, phases) -> np.ndarray:
    """A gyral-looking pattern in [-1, 1]: a product of sines of the template coordinates."""
    x, y, z = coords
    return (np.sin(frequencies[0] * x + phases[0]) * np.sin(frequencies[1] * y + phases[1])
            * np.sin(frequencies[2] * z + phases[2]))


def _draw_anatomy(rng: np.random.Generator) -> dict:
    """Per-seed structure parameters in the normalised template frame."""
    jitter = lambda scale, size=3: rng.normal(0.0, scale, size)  # noqa: E731
    cerebrum_c = np.array([0.0, 0.03, 0.14]) + jitter(0.015)
    cerebrum_r = np.array([0.68, 0.78, 0.56]) * (1 + jitter(0.03))
    bs_top = cerebrum_c[2] - 0.42 * cerebrum_r[2] + rng.normal(0, 0.02)
    anatomy = {
        "cerebrum_c": cerebrum_c,
        "cerebrum_r": cerebrum_r,
        "gyri_f": rng.uniform(9.0, 13.0, 3),
        "gyri_p": rng.uniform(0, 2 * np.pi, 3),
        "surface_f": rng.uniform(6.0, 9.0, 3),
        "surface_p": rng.uniform(0, 2 * np.pi, 3),
        "wm_level": rng.uniform(0.80, 0.85),
        "fissure_p": rng.uniform(0, 2 * np.pi),
        "ventricle_c": np.array([0.09, cerebrum_c[1] - 0.02, cerebrum_c[2] + 0.04]) + jitter(0.01),
        "ventricle_r": np.array([0.055, 0.30, 0.07]) * (1 + jitter(0.08)),
        "deep_c": np.array([0.13, cerebrum_c[1] - 0.10, cerebrum_c[2] - 0.10]) + jitter(0.01),
        "deep_r": np.array([0.10, 0.14, 0.09]) * (1 + jitter(0.05)),
        "cb_c": np.array([0.0, -0.50, -0.47]) + jitter(0.02),
        "cb_r": np.array([0.30, 0.29, 0.25]) * (1 + jitter(0.04)),
        "cb_sep": rng.uniform(0.2, 0.24),
        "cb_branches": rng.uniform(7.0, 10.0),
        "bs_c": np.array([0.0, cerebrum_c[1] - 0.16]) + jitter(0.015, 2),
        "bs_r": np.array([0.12, 0.11]) * (1 + jitter(0.05, 2)),
        "bs_top": bs_top,
        "bs_tilt": rng.uniform(0.05, 0.2),
        "pons_z": bs_top - rng.uniform(0.22, 0.28),
        "pons_bulge": rng.uniform(0.25, 0.4),
    }
    return {key: np.asarray(value, np.float32) for key, value in anatomy.items()}  # keep the maths in float32


def _brainstem_radius(anatomy: dict, coords) -> tuple[np.ndarray, np.ndarray]:
    """Brainstem normalised radius (X, Y, Z) (< 1 inside the tube, at any height) and the tube's front Y (X, Y, Z)."""
    x, y, z = coords
    dz = z - anatomy["bs_top"]
    cy = anatomy["bs_c"][1] + anatomy["bs_tilt"] * dz
    bulge = 1.0 + anatomy["pons_bulge"] * np.exp(-(((z - anatomy["pons_z"]) / 0.12) ** 2))
    rx, ry = anatomy["bs_r"][0] * bulge, anatomy["bs_r"][1] * bulge
    return np.sqrt(((x - anatomy["bs_c"][0]) / rx) ** 2 + ((y - cy) / ry) ** 2), cy + ry


def _rasterise(coords, anatomy, shape, spacing, rng) -> tuple[np.ndarray, np.ndarray]:
    """Label (X, Y, Z) uint8 and tissue classes (X, Y, Z) uint8 at the warped template coordinates (3, X, Y, Z)."""
    x, y, z = coords
    c, r = anatomy["cerebrum_c"], anatomy["cerebrum_r"]
    f_cerebrum_raw = _ellipsoid(coords, c, r)
    f_cerebrum = f_cerebrum_raw + 0.025 * _pattern(coords, anatomy["surface_f"], anatomy["surface_p"])
    midline = c[0] + 0.015 * np.sin(3.0 * y + anatomy["fissure_p"])
    fissure_half_width = 1.1 * 2.0 / shape[0]
    # the fissure reaches down to the corpus callosum in the middle and splits the frontal and occipital poles fully
    fissure_floor = c[2] + r[2] * (0.3 - 4.0 * np.maximum(np.abs(y - c[1]) / r[1] - 0.45, 0.0))
    fissure = (np.abs(x - midline) < fissure_half_width) & (z > fissure_floor)
    vc, vr = anatomy["ventricle_c"], anatomy["ventricle_r"]
    ventricles = (_ellipsoid(coords, vc * [1, 1, 1], vr) < 1) | (_ellipsoid(coords, vc * [-1, 1, 1], vr) < 1)
    f_bs, _ = _brainstem_radius(anatomy, coords)
    brainstem = (f_bs < 1) & (z < anatomy["bs_top"])
    cerebrum = (f_cerebrum < 1) & ~fissure & ~ventricles & ~brainstem

    cb_c, cb_r, sep = anatomy["cb_c"], anatomy["cb_r"], anatomy["cb_sep"]
    f_cb = np.minimum.reduce([
        _ellipsoid(coords, cb_c + [-sep, 0, 0], cb_r),
        _ellipsoid(coords, cb_c + [sep, 0, 0], cb_r),
        _ellipsoid(coords, cb_c + [0, -0.02, 0.01], cb_r * [0.55, 0.95, 0.95]),
    ])
    cerebellum = (f_cb < 1) & (f_cerebrum_raw > 1.06) & (f_bs > 1.3)

    # intracranial space: brain structures inflated by the CSF margin; skull and scalp are shells around it
    intracranial = (f_cerebrum_raw < 1 + _CSF_MARGIN / r.mean()) | (f_cb < 1 + 1.6 * _CSF_MARGIN / cb_r.mean())
    intracranial |= (f_bs < 1.45) & (z < anatomy["bs_top"] + 0.1)
    intracranial |= cerebrum | cerebellum | brainstem
    sampling = np.asarray(spacing) / (np.asarray(shape) * np.asarray(spacing) / 2).mean()
    outside = ndimage.distance_transform_edt(~intracranial, sampling=sampling)

    tissue = np.full(shape, AIR, np.uint8)
    tissue[(outside > 0) & (outside <= _SKULL_THICKNESS + _SCALP_THICKNESS)] = SCALP
    tissue[(outside > 0) & (outside <= _SKULL_THICKNESS)] = SKULL
    tissue[(outside > _SKULL_THICKNESS / 3) & (outside <= 2 * _SKULL_THICKNESS / 3)] = MARROW
    tissue[intracranial] = CSF
    tissue[cerebrum] = GM
    gyri = _pattern(coords, anatomy["gyri_f"], anatomy["gyri_p"])
    tissue[cerebrum & (f_cerebrum < anatomy["wm_level"] + 0.06 * gyri)] = WM
    dc, dr = anatomy["deep_c"], anatomy["deep_r"]
    deep = (_ellipsoid(coords, dc, dr) < 1) | (_ellipsoid(coords, dc * [-1, 1, 1], dr) < 1)
    tissue[cerebrum & deep] = DEEP_GM
    tissue[cerebellum] = CB_GM
    ys, zs = y[cerebellum] - cb_c[1], z[cerebellum] - cb_c[2]
    branches = np.sin(anatomy["cb_branches"] * np.arctan2(zs, ys)) > 0.3
    f_cb_in = f_cb[cerebellum]
    cb_white = (f_cb_in < 0.45) | (branches & (f_cb_in < 0.8))
    tissue[tuple(idx[cb_white] for idx in np.nonzero(cerebellum))] = CB_WM
    tissue[brainstem] = STEM

    label = np.zeros(shape, np.uint8)
    label[cerebrum] = LABELS["cerebrum"]
    label[cerebellum] = LABELS["cerebellum"]
    label[brainstem] = LABELS["brainstem"]
    vessels = _vessels(coords, intracranial, anatomy, shape, spacing, rng)
    label[vessels] = LABELS["vessels"]
    tissue[vessels] = VESSEL
    return label, tissue


# ----------------------------------------------------------------------------------------------------------------------
# vessels


def _catmull_rom(points: np.ndarray, step: float) -> np.ndarray:
    """Dense points (N, 3) along a Catmull-Rom spline through control points (K, 3), about ``step`` apart."""
    padded = np.vstack([points[:1], points, points[-1:]])
    dense = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        count = max(2, int(np.ceil(np.linalg.norm(p2 - p1) / step)))
        t = np.linspace(0.0, 1.0, count, endpoint=False)[:, None]
        dense.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                            + (3 * p1 - p0 - 3 * p2 + p3) * t**3))
    dense.append(points[-1:])
    return np.vstack(dense)


def _vessel_tree(anatomy: dict, rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    """Vessel centrelines as (control points (K, 3) in the normalised template frame, radius in voxels)."""
    c, r = anatomy["cerebrum_c"], anatomy["cerebrum_r"]
    zw = c[2] - 0.5 * r[2]
    wy = anatomy["bs_c"][1] + anatomy["bs_r"][1] + 0.1
    jit = lambda k: rng.normal(0.0, 0.02, (k, 3))  # noqa: E731
    ring = np.array([(0.12 * np.cos(a), wy + 0.09 * np.sin(a), zw) for a in np.linspace(0, 2 * np.pi, 9)])
    ring[:-1] += 0.5 * jit(8)
    ring[-1] = ring[0]  # closed loop (circle of Willis)
    tree = [(ring, rng.uniform(1.0, 1.2))]
    basilar = []
    for zz in np.linspace(-1.05, zw - 0.08, 4):
        front = _brainstem_radius(anatomy, np.array([[0.0], [0.0], [zz]]))[1][0]
        basilar.append((anatomy["bs_c"][0], float(front) + 0.035, zz))
    basilar.append((0.0, wy - 0.09, zw))
    tree.append((np.array(basilar) + jit(5) * 0.5, rng.uniform(1.2, 1.5)))
    for side in (-1.0, 1.0):
        mca = [(side * 0.12, wy, zw), (side * 0.33, wy + 0.04, zw + 0.06), (side * 0.52, wy - 0.04, zw + 0.22),
               (side * 0.58, wy - 0.2, zw + 0.42)]
        tree.append((np.array(mca) + jit(4), rng.uniform(1.0, 1.3)))
        pca = [(side * 0.06, wy - 0.08, zw), (side * 0.2, c[1] - 0.3, zw + 0.03), (side * 0.22, c[1] - 0.55 * r[1],
               c[2] - 0.15), (side * 0.15, c[1] - 0.8 * r[1], c[2] - 0.05)]
        tree.append((np.array(pca) + jit(4), rng.uniform(0.9, 1.15)))
    aca = [(0.0, wy + 0.09, zw), (0.0, c[1] + 0.5 * r[1], c[2] - 0.05), (0.0, c[1] + 0.4 * r[1], c[2] + 0.45 * r[2]),
           (0.0, c[1] - 0.05, c[2] + 0.6 * r[2])]
    tree.append((np.array(aca) + jit(4) * [0.2, 1, 1], rng.uniform(0.9, 1.15)))
    angles = np.deg2rad(np.linspace(15, 200, 7))
    sinus = [(0.0, c[1] + 1.03 * r[1] * np.cos(a), c[2] + 1.04 * r[2] * np.sin(a)) for a in angles]
    tree.append((np.array(sinus) + jit(7) * [0.1, 0.5, 0.5], rng.uniform(1.5, 1.9)))
    return tree


def _vessels(coords, intracranial, anatomy, shape, spacing, rng) -> np.ndarray:
    """Vessel mask (X, Y, Z) bool: tubes around the centrelines, warped like the rest of the anatomy."""
    shape_a = np.asarray(shape, float)
    rel = np.asarray(spacing, float) / min(spacing)  # distances in units of the finest voxel
    points, radii = [], []
    for controls, radius in _vessel_tree(anatomy, rng):
        voxels = (np.asarray(controls) + 1.0) * shape_a / 2.0 - 0.5
        dense = _catmull_rom(voxels, step=0.5 / rel.max())
        points.append(dense)
        radii.append(np.full(len(dense), radius))
    points, radii = np.vstack(points), np.concatenate(radii)

    # stamp distance/radius into a template-grid field around every centreline point
    reach = int(np.ceil(radii.max())) + 3
    offsets = np.stack(np.meshgrid(*[np.arange(-reach, reach + 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
    offsets = offsets[np.linalg.norm(offsets, axis=1) <= reach]
    centres = np.rint(points).astype(np.int64)
    voxels = centres[:, None, :] + offsets[None, :, :]  # (N, M, 3)
    distance = np.linalg.norm((voxels - points[:, None, :]) * rel, axis=-1) / radii[:, None]
    inside = np.all((voxels >= 0) & (voxels < np.asarray(shape)), axis=-1)
    flat = np.ravel_multi_index(tuple(voxels[inside].T), shape)
    field = np.full(int(np.prod(shape)), 1e3, np.float32)
    np.minimum.at(field, flat, distance[inside].astype(np.float32))
    field = field.reshape(shape)

    # sample the field at the warped template coordinates of intracranial voxels
    where = np.nonzero(intracranial)
    sample = np.stack([(coords[i][where] + 1.0) * shape[i] / 2.0 - 0.5 for i in range(3)])
    values = ndimage.map_coordinates(field, sample, order=1, mode="constant", cval=1e3, prefilter=False)
    vessels = np.zeros(shape, bool)
    vessels[where] = values <= 1.0
    return vessels


# ----------------------------------------------------------------------------------------------------------------------
# intensities


def _intensities(tissue, shape, spacing, rng) -> dict[str, np.ndarray]:
    """T1 and T2 images (X, Y, Z) float32 from tissue classes: draws, texture, blur, bias field, Rician noise."""
    means = _TISSUE_MEANS * (1.0 + rng.normal(0.0, 0.05, _TISSUE_MEANS.shape)).astype(np.float32)
    means = np.clip(means, 0.0, None)
    means[AIR] = 0.0
    gains = np.array([rng.uniform(800, 1200), rng.uniform(1000, 1600)], np.float32)
    noise_level = rng.uniform(0.015, 0.03)
    texture = ndimage.gaussian_filter(rng.standard_normal(shape, np.float32), 1.0)
    texture *= np.float32(0.025 / max(float(texture.std()), 1e-6))
    bias = _smooth_field(shape, rng, controls=3, count=3)
    sigma = 0.6 * min(spacing) / np.asarray(spacing, float)
    channels = {}
    for number, name in enumerate(CHANNELS):
        image = means[:, number][tissue] * (1.0 + texture)
        image = ndimage.gaussian_filter(image, sigma)
        field = np.exp(np.float32(0.1) * (bias[0] + bias[number + 1]) / np.sqrt(2))
        image = image * field * gains[number]
        noise_std = np.float32(noise_level * gains[number])
        real = image + noise_std * rng.standard_normal(shape, np.float32)
        imag = noise_std * rng.standard_normal(shape, np.float32)
        channels[name] = np.sqrt(real * real + imag * imag).astype(np.float32)
    return channels
