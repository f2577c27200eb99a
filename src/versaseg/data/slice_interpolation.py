"""Shape priors between annotated slices: signed-distance interpolation and nearest-slice copy.

Arrays here are *slice-first*: a label volume is ``(S, H, W)`` with the annotation axis first, annotated slices are
given by their indices ``slice_ids`` (sorted, unique) along S, and ``spacing`` is ``(slice, row, column)`` in mm.

The signed distance of class c on a slice is negative inside, positive outside (mm, in-plane). Between two annotated
slices a < z < b it is interpolated linearly, ``(1 - w) d_a + w d_b`` with ``w = (z - a) / (b - a)``: shapes morph
into each other, and a class present on one side only shrinks towards the other (this is what shape-based
interpolation does; ITK's morphological contour interpolator behaves alike). Beyond the first and last annotated
slice the end slice's distance grows by the distance travelled along the axis, so shapes taper off at 45 degrees
(a cone) instead of being copied for ever; a class present on only one of two neighbouring annotated slices tapers off
the same way towards the other.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

EMPTY_DISTANCE_MM = 200.0  # signed distance assigned to a class absent from a slice (farther than any head)


def slice_signed_distances(slices: np.ndarray, classes: Sequence[int], spacing_2d: Sequence[float]) -> np.ndarray:
    """Signed distance maps of each class on each slice.

    Args:
        slices: (N, H, W) integer labels of N annotated slices.
        classes: label values to map (usually the foreground classes).
        spacing_2d: (row, column) pixel size in mm.

    Returns:
        (N, len(classes), H, W) float32, mm: negative inside the class, positive outside, 0 between the boundary
        pixels; ``EMPTY_DISTANCE_MM`` everywhere for a class absent from the slice (``-EMPTY_DISTANCE_MM`` where it
        fills the slice).
    """
    out = np.empty((slices.shape[0], len(classes), *slices.shape[1:]), np.float32)
    for n, labels in enumerate(slices):
        for k, value in enumerate(classes):
            inside = labels == value
            if not inside.any():
                out[n, k] = EMPTY_DISTANCE_MM
            elif inside.all():
                out[n, k] = -EMPTY_DISTANCE_MM
            else:
                outside_d = ndimage.distance_transform_edt(~inside, sampling=spacing_2d)
                inside_d = ndimage.distance_transform_edt(inside, sampling=spacing_2d)
                out[n, k] = np.where(inside, -(inside_d - 0.5 * min(spacing_2d)), outside_d - 0.5 * min(spacing_2d))
    return out


def interpolate_distances(distances: np.ndarray, slice_ids: Sequence[int], targets: Sequence[int],
                          slice_spacing: float) -> np.ndarray:
    """Signed distances at the ``targets`` slices from those of the annotated ``slice_ids``.

    Args:
        distances: (N, K, H, W) signed distances of the N annotated slices (see :func:`slice_signed_distances`).
        slice_ids: (N,) sorted indices of those slices along S.
        targets: (T,) slice indices to compute.
        slice_spacing: distance between neighbouring slices in mm (for the taper beyond the ends).

    Returns:
        (T, K, H, W) float32. A target equal to an annotated index returns that slice's distances.
    """
    ids = np.asarray(slice_ids, dtype=float)
    if len(ids) == 0:
        raise ValueError("no annotated slice to interpolate from")
    if np.any(np.diff(ids) <= 0):
        raise ValueError("slice_ids must be sorted and unique")
    absent = distances.min(axis=(2, 3)) >= EMPTY_DISTANCE_MM  # (N, K): class missing from the slice
    out = np.empty((len(targets), *distances.shape[1:]), np.float32)
    for t, z in enumerate(np.asarray(targets, dtype=float)):
        if z <= ids[0]:
            out[t] = distances[0] + (ids[0] - z) * slice_spacing
        elif z >= ids[-1]:
            out[t] = distances[-1] + (z - ids[-1]) * slice_spacing
        else:
            b = int(np.searchsorted(ids, z))
            if ids[b] == z:
                out[t] = distances[b]
                continue
            a = b - 1
            w = (z - ids[a]) / (ids[b] - ids[a])
            gap_mm = (ids[b] - ids[a]) * slice_spacing
            d_a, d_b = distances[a].copy(), distances[b].copy()
            # a class missing on one side tapers off from the other side (the cone used beyond the ends)
            d_a[absent[a]] = d_b[absent[a]] + gap_mm
            d_b[absent[b]] = d_a[absent[b]] + gap_mm
            out[t] = (1.0 - w) * d_a + w * d_b
    return out


def leave_one_out_distances(distances: np.ndarray, slice_ids: Sequence[int], slice_spacing: float) -> np.ndarray:
    """For each annotated slice, the distances interpolated from the *other* annotated slices. (N, K, H, W).

    This is what a network sees at an annotated slice during training, so that it learns to correct an
    interpolation (from neighbours twice as far away as at prediction time) with the image, rather than to copy
    its input. Needs at least two annotated slices.
    """
    ids = list(slice_ids)
    if len(ids) < 2:
        raise ValueError("leave-one-out interpolation needs at least two annotated slices")
    out = np.empty_like(distances)
    for n in range(len(ids)):
        keep = [i for i in range(len(ids)) if i != n]
        out[n] = interpolate_distances(distances[keep], [ids[i] for i in keep], [ids[n]], slice_spacing)[0]
    return out


def distances_to_labels(distances: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Hard labels from signed distances: the class with the most negative distance where any is negative, else 0.

    distances: (T, K, H, W) -> (T, H, W) int16 with values from ``classes`` (or 0).
    """
    best = distances.argmin(axis=1)
    inside = distances.min(axis=1) < 0
    values = np.asarray(classes, dtype=np.int16)
    return np.where(inside, values[best], 0).astype(np.int16)


def shape_interpolation(slices: np.ndarray, slice_ids: Sequence[int], num_slices: int, classes: Sequence[int],
                        spacing: Sequence[float]) -> np.ndarray:
    """Dense labels (num_slices, H, W) by signed-distance interpolation between the annotated slices (N, H, W)."""
    distances = slice_signed_distances(slices, classes, spacing[1:])
    out = np.zeros((num_slices, *slices.shape[1:]), np.int16)
    for start in range(0, num_slices, 16):  # bounded memory for large volumes
        targets = list(range(start, min(start + 16, num_slices)))
        out[targets] = distances_to_labels(interpolate_distances(distances, slice_ids, targets, spacing[0]), classes)
    return out


def nearest_slice_copy(slices: np.ndarray, slice_ids: Sequence[int], num_slices: int) -> np.ndarray:
    """Dense labels (num_slices, H, W): each slice copies the nearest annotated slice (ties: the lower one).

    Beyond the first/last annotated slice the copy reaches half the mean gap between annotated slices (where the
    next annotated slice would have been), and background after that.
    """
    ids = np.asarray(slice_ids)
    out = np.zeros((num_slices, *slices.shape[1:]), slices.dtype)
    reach = np.diff(ids).mean() / 2 if len(ids) > 1 else 0.0
    for z in range(num_slices):
        nearest = int(np.argmin(np.abs(ids - z)))
        if ids[0] - reach <= z <= ids[-1] + reach:
            out[z] = slices[nearest]
    return out
