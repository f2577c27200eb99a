"""Sparse slice annotations: which voxels are annotated, along which axis, and the region worth completing.

A sparse label volume ``(X, Y, Z)`` marks its unannotated voxels with an ignore label, or (3D Slicer's convention,
no ignore label) leaves them 0, so that the slices holding any non-zero label are the annotated ones.
"""

from __future__ import annotations

import numpy as np

from versaseg.errors import InputError


def annotation_mask(label: np.ndarray, ignore_label: int | None, axis: int | str) -> tuple[np.ndarray, int]:
    """Annotated voxels (X, Y, Z) bool and the annotation axis.

    With ``ignore_label``: voxels != ignore_label; ``axis='auto'`` picks the axis along which the annotated voxels
    form whole slices. Without: slices holding any non-zero label along the chosen (or detected) axis.
    """
    if ignore_label is not None:
        annotated = label != ignore_label
        if not annotated.any():
            raise InputError("every voxel has the ignore label: nothing is annotated")
        if annotated.all():
            raise InputError(f"no voxel has the ignore label {ignore_label}: nothing to complete")
        if axis == "auto":
            whole = [a for a in range(3) if whole_slices(annotated, a)]
            if not whole:  # slices on several planes: the plane with the most slices is the primary one
                try:
                    planes = whole_slice_planes(annotated)
                except ValueError:
                    raise InputError("annotated voxels do not form whole slices along any axis or set of "
                                     "planes; pass --axis") from None
                return annotated, max(planes, key=lambda a: len(planes[a]))
            axis = min(whole, key=lambda a: slice_fraction(annotated, a))
        return annotated, int(axis)
    nonzero = label != 0
    if not nonzero.any():
        raise InputError("the label holds no non-zero voxel: nothing is annotated")
    if axis == "auto":
        axis = min(range(3), key=lambda a: slice_fraction(nonzero, a))
    axis = int(axis)
    has_label = nonzero.any(axis=tuple(d for d in range(3) if d != axis))
    if has_label.all():
        raise InputError(f"every slice along axis {axis} holds labels: nothing to complete (dense label?)")
    annotated = np.zeros(label.shape, bool)
    index = [slice(None)] * 3
    index[axis] = np.flatnonzero(has_label)
    annotated[tuple(index)] = True
    return annotated, axis


def whole_slices(mask: np.ndarray, axis: int) -> bool:
    """Whether ``mask (X, Y, Z)`` holds only whole slices along ``axis`` (a slice is all True or all False)."""
    other = tuple(d for d in range(3) if d != axis)
    return bool(np.all(mask.all(axis=other) == mask.any(axis=other)))


def slice_fraction(mask: np.ndarray, axis: int) -> float:
    """Fraction of slices (within the extent of the mask along ``axis``) that hold any True voxel."""
    has = mask.any(axis=tuple(d for d in range(3) if d != axis))
    idx = np.flatnonzero(has)
    return float(has.sum() / (idx[-1] - idx[0] + 1)) if len(idx) else 1.0


def whole_slice_planes(annotated: np.ndarray) -> dict[int, np.ndarray]:
    """Axes along which some slices are annotated entirely, with those slice indices: ``{axis: (N,) indices}``.

    Raises ValueError when the whole slices do not account for every annotated voxel (a partial slice).
    """
    planes = {}
    covered = np.zeros(annotated.shape, bool)
    for axis in range(3):
        other = tuple(d for d in range(3) if d != axis)
        full = np.flatnonzero(annotated.all(axis=other))
        if 0 < len(full) < annotated.shape[axis]:
            planes[axis] = full
            index = [slice(None)] * 3
            index[axis] = full
            covered[tuple(index)] = True
    if not planes or np.any(annotated & ~covered):
        raise ValueError("annotated voxels do not form whole slices")
    return planes


def class_indices(sparse: np.ndarray, annotated: np.ndarray,
                  ignore_label: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The label values of the annotation, background first, and the volume in class indices.

    sparse: (X, Y, Z) label values; annotated: (X, Y, Z) bool. Returns ``values (K,)`` (0 and every value found on
    the annotated voxels but ``ignore_label``) and ``classes (X, Y, Z)`` int16: the index into ``values`` on
    annotated voxels, ``K`` (the ignore index) elsewhere.
    """
    values = np.unique(sparse[annotated])
    values = values[values != ignore_label] if ignore_label is not None else values
    values = np.union1d([0], values).astype(int)
    index_of = {int(v): i for i, v in enumerate(values)}
    classes = np.full(sparse.shape, len(values), np.int16)
    classes[annotated] = np.vectorize(index_of.get)(sparse[annotated])
    return values, classes


def working_box(classes: np.ndarray, slice_ids: np.ndarray, ignore: int, spacing: tuple, margin_mm: float) -> tuple:
    """Slices of the slice-first volume (S, H, W) worth predicting: the annotated foreground's in-plane bounding box
    plus ``margin_mm``, and along S one gap beyond the first and last annotated slice."""
    annotated = classes[slice_ids]
    foreground = (annotated > 0) & (annotated != ignore)
    gap = int(np.max(np.diff(slice_ids))) if len(slice_ids) > 1 else 1
    box = [slice(max(0, int(slice_ids[0]) - gap), min(classes.shape[0], int(slice_ids[-1]) + gap + 1))]
    for d in (1, 2):
        other = tuple(a for a in (0, 1, 2) if a != d)
        hits = np.flatnonzero(foreground.any(axis=other))
        margin = int(np.ceil(margin_mm / spacing[d]))
        box.append(slice(max(0, int(hits[0]) - margin), min(classes.shape[d], int(hits[-1]) + margin + 1)))
    return tuple(box)


def planes_box(foreground: np.ndarray, planes: dict[int, np.ndarray], spacing: tuple, margin_mm: float) -> tuple:
    """Slices of ``(X, Y, Z)`` worth predicting when slices are annotated on several ``planes`` (axis -> slice
    indices): the annotated ``foreground``'s bounding box plus ``margin_mm`` and, along each plane's axis, at least
    one annotation gap."""
    box = []
    for d in range(3):
        hits = np.flatnonzero(foreground.any(axis=tuple(a for a in range(3) if a != d)))
        reach = int(np.ceil(margin_mm / spacing[d]))
        if d in planes and len(planes[d]) > 1:
            reach = max(reach, int(np.max(np.diff(planes[d]))))
        box.append(slice(max(0, int(hits[0]) - reach), min(foreground.shape[d], int(hits[-1]) + reach + 1)))
    return tuple(box)
