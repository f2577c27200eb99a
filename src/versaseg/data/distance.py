"""Per-class signed distance maps of a label volume, in mm: what the distance-based losses (``*_dtm``, ``*_dpt``,
``dice_boundary``) read. Computed once per training volume (see ``TrainingVolume.ensure_distance``), never per batch.

For class k and voxel x, with distances between voxel centres in mm (``scipy.ndimage.distance_transform_edt`` with the
voxel spacing):

    d_k(x) = -(distance to the nearest annotated voxel that is not k)   where x is annotated as k
    d_k(x) = +(distance to the nearest annotated voxel of class k)      everywhere else

so d_k < 0 inside class k, d_k > 0 outside, and |d_k| is the distance to the true boundary (one voxel size for the
voxels on either side of it). Only annotated voxels define the classes: an unannotated (ignore) voxel is neither
inside nor outside anything, so a sparse annotation does not create a false boundary next to every annotated slice.
Ignore voxels get the "outside" value; the training mask leaves them out of every loss anyway.

When a class has no annotated voxel (or every annotated voxel is of that class), the missing distance is the
diagonal of the volume (or slice) in mm: finite, and larger than any real distance.

``plane_axis`` given (2D training): distances are computed within each slice perpendicular to that axis, since the
network only sees the slice; slices without annotated voxels are filled with the diagonal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import distance_transform_edt


def signed_distance_maps(label: np.ndarray, num_classes: int, spacing: Sequence[float],
                         ignore_label: int | None = None, plane_axis: int | None = None) -> np.ndarray:
    """label: (X, Y, Z) int (or any N-D array); spacing: mm per axis. Returns (K, *label.shape) float32 maps d_k."""
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != label.ndim:
        raise ValueError(f"spacing {spacing} does not match a {label.ndim}-D label")
    annotated = np.ones(label.shape, bool) if ignore_label is None else label != ignore_label
    if plane_axis is None:
        return _maps(label, annotated, num_classes, spacing)
    out = np.empty((num_classes, *label.shape), np.float32)
    in_plane = spacing[:plane_axis] + spacing[plane_axis + 1:]
    for index in range(label.shape[plane_axis]):
        where = (slice(None),) * plane_axis + (index,)
        out[(slice(None), *where)] = _maps(label[where], annotated[where], num_classes, in_plane)
    return out


def _maps(label: np.ndarray, annotated: np.ndarray, num_classes: int, spacing: tuple[float, ...]) -> np.ndarray:
    far = float(np.sqrt(sum((n * s) ** 2 for n, s in zip(label.shape, spacing, strict=True))))
    out = np.full((num_classes, *label.shape), far, np.float32)
    if not annotated.any():
        return out
    for k in range(num_classes):
        inside = annotated & (label == k)
        outside = annotated & ~inside
        to_inside = _distance_to(inside, spacing, far)
        to_outside = _distance_to(outside, spacing, far)
        out[k] = np.where(inside, -to_outside, to_inside)
    return out


def _distance_to(region: np.ndarray, spacing: tuple[float, ...], far: float) -> np.ndarray | float:
    """Distance (mm) from every voxel to the nearest voxel of ``region``; ``far`` when the region is empty."""
    if not region.any():
        return far
    return distance_transform_edt(~region, sampling=spacing).astype(np.float32)
