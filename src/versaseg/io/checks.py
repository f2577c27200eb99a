"""The one set of checks every command applies to what it reads (after :mod:`versaseg.io.header` has checked the
file's header): finite images, integer non-negative labels, allowed label values, and matching geometry.

``train``, ``predict``, ``evaluate``, ``complete``, ``explain``, ``synth``, ``cascade`` and ``data degrade`` all call
these, so the same bad input gets the same one-line :class:`~versaseg.errors.InputError` (naming the file) from each.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from versaseg.errors import InputError
from versaseg.io.image import Volume

GEOMETRY_TOLERANCE_MM = 1e-3
MAX_LABEL = int(np.iinfo(np.int16).max)  # labels are held as int16 (X, Y, Z)


def image_values(volume: Volume) -> np.ndarray:
    """The image array (I, J, K) as float32; InputError if it holds NaN or Inf."""
    data = np.asarray(volume.array, dtype=np.float32)
    if not np.isfinite(data).all():
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise InputError(f"image contains NaN or Inf values ({bad} voxels)", volume.path)
    return data


def label_values(volume: Volume, what: str = "label") -> np.ndarray:
    """The label array (I, J, K) as int16 class values; InputError (naming the file) for a voxel type that is not
    integer (floats must hold whole numbers), NaN/Inf, negative values, or values above 32767."""
    array = np.asarray(volume.array)
    if array.dtype == np.bool_:
        return array.astype(np.int16)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"{what} has voxel type {array.dtype}; expected integer class labels", volume.path)
        if not np.isfinite(array).all():
            raise InputError(f"{what} contains NaN or Inf values; expected integer class labels", volume.path)
        fractional = array != np.round(array)
        if fractional.any():
            raise InputError(f"{what} contains non-integer values (e.g. {float(array[fractional][0])}); expected "
                             "integer class labels", volume.path)
    if array.size:
        low, high = array.min(), array.max()
        if low < 0:
            raise InputError(f"{what} contains negative values (min {low}); expected class labels >= 0", volume.path)
        if high > MAX_LABEL:
            raise InputError(f"{what} values must lie in 0..{MAX_LABEL}, got up to {high}", volume.path)
    return array.astype(np.int16)


def check_label_set(array: np.ndarray, allowed: Iterable[int], volume: Volume, source: str = "dataset.json labels",
                    what: str = "label") -> None:
    """InputError naming ``volume``'s file if ``array`` holds a value outside ``allowed`` (named by ``source``)."""
    allowed = {int(v) for v in allowed}
    unknown = sorted({int(v) for v in np.unique(array)} - allowed)
    if unknown:
        raise InputError(f"{what} values {unknown} are not in {source} {sorted(allowed)}", volume.path)


def check_same_geometry(volume: Volume, reference: Volume, what: str) -> None:
    """InputError naming ``volume``'s file unless it has ``reference``'s shape and affine (1 µm tolerance)."""
    ref_name = reference.path.name if reference.path is not None else "the reference"
    if volume.shape != reference.shape:
        raise InputError(f"{what} shape {volume.shape} differs from {ref_name} shape {reference.shape}", volume.path)
    if not np.allclose(volume.affine, reference.affine, atol=GEOMETRY_TOLERANCE_MM, rtol=0):
        raise InputError(f"{what} geometry (spacing/origin/direction) differs from {ref_name}", volume.path)
