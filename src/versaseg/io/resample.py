"""Resampling of (I, J, K) arrays with a RAS+ affine through SimpleITK: to a coarser spacing, or onto another grid;
and the geometry of regions on such grids (bounding boxes, crops, boxes mapped from one grid onto another).

Images use linear interpolation (after a Gaussian anti-aliasing blur when the spacing grows); labels are resampled as
nnU-Net does, by linear interpolation of each class's one-hot mask and arg-max, so small structures are not lost as
easily as with nearest-neighbour (``label_mode="nearest"`` gives plain nearest neighbour).

A box is a tuple of three slices (I, J, K) of voxel indices on a grid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from versaseg.io.image import affine_to_itk_geometry, itk_geometry_to_affine


def to_sitk(array: np.ndarray, affine: np.ndarray):
    """A SimpleITK image of ``array`` (I, J, K) with the geometry of ``affine`` (RAS+ voxel -> mm)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0)))
    spacing, origin, direction = affine_to_itk_geometry(affine)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def from_sitk(image) -> tuple[np.ndarray, np.ndarray]:
    """``(array (I, J, K), affine)`` of a SimpleITK image."""
    import SimpleITK as sitk

    array = np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0))
    return array, itk_geometry_to_affine(image.GetSpacing(), image.GetOrigin(), image.GetDirection())


def coarse_grid(shape: Sequence[int], affine: np.ndarray, spacing: Sequence[float], multiple: int = 1
                ) -> tuple[tuple[int, int, int], np.ndarray]:
    """The grid covering the same field of view as ``(shape, affine)`` with voxel size ``spacing`` (mm per axis).

    Returns ``(shape, affine)`` of the new grid; its first and last voxels' outer faces lie at (or, when the extent is
    not a multiple of the new spacing or the size is rounded up to a ``multiple`` of voxels, beyond) the old grid's
    outer faces, and the grid is centred on it.
    """
    affine = np.asarray(affine, dtype=float)
    old = np.linalg.norm(affine[:3, :3], axis=0)
    new = np.asarray(spacing, dtype=float)
    extent = np.asarray(shape, dtype=float) * old
    new_shape = tuple(-(-max(1, math.ceil(e / s - 1e-6)) // multiple) * multiple
                      for e, s in zip(extent, new, strict=True))
    scale = new / old  # new voxel size in old voxels
    # centre of the new grid's first voxel, in old voxel coordinates, so both grids share their centre
    first = (np.asarray(shape) - 1) / 2.0 - (np.asarray(new_shape) - 1) / 2.0 * scale
    new_affine = np.eye(4)
    new_affine[:3, :3] = affine[:3, :3] * scale[None, :]
    new_affine[:3, 3] = affine[:3, :3] @ first + affine[:3, 3]
    return new_shape, new_affine


def _reference(shape: Sequence[int], affine: np.ndarray):
    import SimpleITK as sitk

    reference = sitk.Image([int(s) for s in shape], sitk.sitkUInt8)
    spacing, origin, direction = affine_to_itk_geometry(affine)
    reference.SetSpacing(spacing)
    reference.SetOrigin(origin)
    reference.SetDirection(direction)
    return reference


def resample_image(array: np.ndarray, affine: np.ndarray, shape: Sequence[int], target_affine: np.ndarray,
                   antialias: bool = True) -> np.ndarray:
    """Linear resampling of an image (I, J, K) onto the grid ``(shape, target_affine)``; float32 (I', J', K').

    With ``antialias``, axes whose voxel size grows are first blurred with a Gaussian whose FWHM makes up the
    difference (sigma = sqrt(new^2 - old^2) / 2.355). Outside the input the value is the nearest edge voxel's.
    """
    import SimpleITK as sitk

    image = to_sitk(np.asarray(array, dtype=np.float32), affine)
    if antialias:
        old = np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)
        new = np.linalg.norm(np.asarray(target_affine)[:3, :3], axis=0)
        variance = [float(max(n * n - o * o, 0.0)) / 2.3548**2 for o, n in zip(old, new, strict=True)]
        if max(variance) > 0:
            image = sitk.DiscreteGaussian(image, variance=variance, maximumKernelWidth=64, useImageSpacing=True)
    resampler = sitk.ResampleImageFilter()
    resampler.SetReferenceImage(_reference(shape, target_affine))
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    resampler.SetUseNearestNeighborExtrapolator(True)
    return from_sitk(resampler.Execute(image))[0].astype(np.float32)


def resample_label(label: np.ndarray, affine: np.ndarray, shape: Sequence[int], target_affine: np.ndarray,
                   label_mode: str = "onehot") -> np.ndarray:
    """Resample a label map (I, J, K) int onto ``(shape, target_affine)``; int16 (I', J', K').

    ``label_mode="onehot"``: linear interpolation of every value's mask, then the value with the largest weight;
    ``"nearest"``: nearest neighbour. Outside the input the label is 0.
    """
    import SimpleITK as sitk

    label = np.asarray(label)
    reference = _reference(shape, target_affine)
    resampler = sitk.ResampleImageFilter()
    resampler.SetReferenceImage(reference)
    if label_mode == "nearest":
        resampler.SetInterpolator(sitk.sitkNearestNeighbor)
        return from_sitk(resampler.Execute(to_sitk(label.astype(np.int16), affine)))[0].astype(np.int16)
    if label_mode != "onehot":
        raise ValueError(f"label_mode must be 'onehot' or 'nearest', got {label_mode!r}")
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    best = np.full(tuple(int(s) for s in shape), -1.0, np.float32)
    out = np.zeros(tuple(int(s) for s in shape), np.int16)
    for value in sorted({0, *(int(v) for v in np.unique(label))}):
        resampler.SetDefaultPixelValue(1.0 if value == 0 else 0.0)  # outside the input: background
        weight = from_sitk(resampler.Execute(to_sitk((label == value).astype(np.float32), affine)))[0]
        better = weight > best
        out[better] = value
        best[better] = weight[better]
    return out


def resample_to_spacing(image: np.ndarray, affine: np.ndarray, spacing: Sequence[float],
                        label: np.ndarray | None = None, multiple: int = 1
                        ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Resample ``image (C, I, J, K)`` (linear, per channel) and ``label (I, J, K)`` (one-hot linear) to ``spacing``.

    Returns ``(image (C, I', J', K') float32, label (I', J', K') int16 or None, affine)`` of the grid
    :func:`coarse_grid` gives (same field of view, its size rounded up to a ``multiple`` of voxels).
    """
    shape, target = coarse_grid(image.shape[1:], affine, spacing, multiple)
    resampled = np.stack([resample_image(channel, affine, shape, target) for channel in image])
    return resampled, None if label is None else resample_label(label, affine, shape, target), target


def crop_box(mask: np.ndarray, spacing: Sequence[float], margin_mm: float | Sequence[float] | np.ndarray = 0.0
             ) -> tuple[slice, ...] | None:
    """The bounding box of ``mask`` (I, J, K) grown by ``margin_mm`` and clipped to the volume; None if it is empty.

    ``spacing``: voxel size in mm per axis; ``margin_mm``: one number, three (per axis) or an array (2, 3) of
    (low faces, high faces).
    """
    if not mask.any():
        return None
    coords = np.argwhere(mask)
    margins = np.broadcast_to(np.asarray(margin_mm, dtype=float), (2, 3))
    voxels = np.ceil(margins / np.asarray(spacing, dtype=float)[None, :] - 1e-6).astype(int)
    low = np.maximum(coords.min(0) - voxels[0], 0)
    high = np.minimum(coords.max(0) + 1 + voxels[1], mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))


def round_box(box: tuple[slice, ...], shape: Sequence[int], multiple: int) -> tuple[slice, ...]:
    """Grow ``box`` about its centre to a ``multiple`` of voxels per axis, shifted to stay inside ``shape`` (an axis
    shorter than that is taken whole)."""
    out = []
    for b, n in zip(box, shape, strict=True):
        length = b.stop - b.start
        target = min(-(-length // multiple) * multiple, int(n))
        start = min(max(b.start - (target - length) // 2, 0), int(n) - target)
        out.append(slice(int(start), int(start + target)))
    return tuple(out)


def box_mask(box: tuple[slice, ...], shape: Sequence[int]) -> np.ndarray:
    """A bool volume of ``shape`` that is True inside ``box``."""
    mask = np.zeros(tuple(shape), bool)
    mask[box] = True
    return mask


def box_affine(affine: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
    """The affine of the crop ``box`` of the grid ``affine``: same axes, origin at the box's first voxel."""
    start = np.array([b.start for b in box], dtype=float)
    out = np.array(affine, dtype=float)
    out[:3, 3] = out[:3, :3] @ start + out[:3, 3]
    return out


def box_to_grid(box: tuple[slice, ...], affine: np.ndarray, shape: Sequence[int], target_affine: np.ndarray
                ) -> tuple[slice, ...]:
    """Map a voxel box of the grid ``affine`` onto the grid ``(shape, target_affine)``: every target voxel whose centre
    lies inside the box's physical extent (outer voxel faces), at least one voxel per axis, clipped."""
    corners = np.array([[b.start - 0.5 if c == 0 else b.stop - 0.5 for b, c in zip(box, bits, strict=True)]
                        for bits in np.ndindex(2, 2, 2)], dtype=float)
    world = corners @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    target = (world - np.asarray(target_affine)[:3, 3]) @ np.linalg.inv(np.asarray(target_affine)[:3, :3]).T
    low = np.clip(np.ceil(target.min(0) - 1e-6), 0, np.asarray(shape) - 1).astype(int)
    high = np.clip(np.floor(target.max(0) + 1e-6) + 1, low + 1, np.asarray(shape)).astype(int)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))
