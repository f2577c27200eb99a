"""Segmentation metrics on boolean masks, in millimetres where they measure distance.

Every function takes two masks of the same shape ``(I, J, K)`` (any number of dimensions works) and, where it measures
distance, ``spacing``: the voxel size in mm along each axis, in the arrays' axis order. The distance metrics follow
MONAI 1.6 exactly (a test checks agreement with ``HausdorffDistanceMetric(percentile=95)`` and
``SurfaceDistanceMetric(symmetric=True)``):

- the surface of a mask is ``mask XOR binary_erosion(mask)`` (6-connected erosion, outside the array counts as
  background), as in ``monai.metrics.utils.get_mask_edges``;
- a surface distance is the Euclidean distance in mm from a surface voxel's centre to the nearest surface voxel of
  the other mask (``scipy.ndimage.distance_transform_edt`` with ``sampling=spacing``);
- **HD95** is the larger of the two directed 95th percentiles (linear interpolation, as ``torch.quantile``);
- **ASSD** is the mean over the union of both directed distance sets (not the mean of the two directed means).

Volume metrics: Dice ``2|P∩G| / (|P|+|G|)``, IoU ``|P∩G| / |P∪G|``, sensitivity ``|P∩G| / |G|``, precision
``|P∩G| / |P|``, relative volume difference (signed) ``(|P| - |G|) / |G|``.

Conventions for empty masks (P = prediction, G = ground truth); NaN means "undefined": aggregates skip it (nanmean)
and count it separately as ``n_nan``:

==================  ==========  ===========  ===========  ====  ===========
case                Dice / IoU  sensitivity  precision    RVD   HD95 / ASSD
==================  ==========  ===========  ===========  ====  ===========
both empty          1           NaN (0/0)    NaN (0/0)    0     0
G empty, P not      0           NaN (0/0)    0            NaN   NaN
P empty, G not      0           0            NaN (0/0)    -1    NaN
==================  ==========  ===========  ===========  ====  ===========

MONAI differs only for empty masks (its Dice is NaN for an empty G, its HD95/ASSD are NaN or inf).

Ignored voxels: :func:`case_metrics` sets every voxel whose ground truth equals the ignore label to background in
both the prediction and the ground truth before computing anything, so ignored voxels count neither as hits nor as
errors and contribute no surface. (Surfaces that end at the border of an ignored region still count as surface, as
they would at the border of the image.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import ndimage

METRICS = ("dice", "iou", "sensitivity", "precision", "rvd", "hd95", "assd")
"""Metric names in report order; HD95 and ASSD are in mm, the others are fractions."""

NAN = float("nan")


def _check(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    if spacing is not None and len(spacing) != pred.ndim:
        raise ValueError(f"spacing {tuple(spacing)} must have one value per axis of shape {pred.shape}")
    return pred, gt


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else NAN


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice coefficient of two boolean masks of the same shape; 1 if both are empty."""
    pred, gt = _check(pred, gt)
    total = int(pred.sum()) + int(gt.sum())
    return 2.0 * int(np.count_nonzero(pred & gt)) / total if total else 1.0


def iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Intersection over union (Jaccard) of two boolean masks of the same shape; 1 if both are empty."""
    pred, gt = _check(pred, gt)
    union = int(np.count_nonzero(pred | gt))
    return int(np.count_nonzero(pred & gt)) / union if union else 1.0


def sensitivity(pred: np.ndarray, gt: np.ndarray) -> float:
    """Sensitivity (recall) ``|P∩G| / |G|``; NaN if the ground truth is empty."""
    pred, gt = _check(pred, gt)
    return _ratio(np.count_nonzero(pred & gt), np.count_nonzero(gt))


def precision(pred: np.ndarray, gt: np.ndarray) -> float:
    """Precision (positive predictive value) ``|P∩G| / |P|``; NaN if the prediction is empty."""
    pred, gt = _check(pred, gt)
    return _ratio(np.count_nonzero(pred & gt), np.count_nonzero(pred))


def relative_volume_difference(pred: np.ndarray, gt: np.ndarray) -> float:
    """Signed relative volume difference ``(|P| - |G|) / |G|``; 0 if both are empty, NaN if only G is empty.

    Positive values mean over-segmentation. Voxel counts suffice: both masks share one spacing.
    """
    pred, gt = _check(pred, gt)
    n_pred, n_gt = int(np.count_nonzero(pred)), int(np.count_nonzero(gt))
    if n_gt == 0:
        return 0.0 if n_pred == 0 else NAN
    return (n_pred - n_gt) / n_gt


def joint_bounding_box(*masks: np.ndarray, margin: int = 1) -> tuple[slice, ...] | None:
    """Slices of the bounding box of the union of ``masks`` (same shape), grown by ``margin`` voxels and clipped to
    the array; None if all masks are empty."""
    union = np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])
    if not union.any():
        return None
    box = []
    for axis in range(union.ndim):
        others = tuple(a for a in range(union.ndim) if a != axis)
        hits = np.flatnonzero(union.any(axis=others))
        box.append(slice(max(int(hits[0]) - margin, 0), min(int(hits[-1]) + 1 + margin, union.shape[axis])))
    return tuple(box)


def surface(mask: np.ndarray) -> np.ndarray:
    """The surface voxels of a boolean mask: ``mask XOR binary_erosion(mask)`` (as MONAI's ``get_mask_edges``).

    Erosion uses the 6-connected (face-neighbour) structuring element; voxels outside the array are background, so
    a mask touching the array border has surface there.
    """
    mask = np.asarray(mask, dtype=bool)
    return mask ^ ndimage.binary_erosion(mask)


def surface_distances(
    pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Directed surface distances in mm: ``(pred surface -> gt surface, gt surface -> pred surface)``.

    ``pred``, ``gt``: boolean masks of shape ``S`` (e.g. (I, J, K)); ``spacing``: voxel size per axis of ``S``.
    Returns two 1-D float64 arrays (one distance per surface voxel of ``pred``, resp. ``gt``), or None if either mask
    is empty (distances are then undefined). The masks are cropped to their joint bounding box (+1 voxel) first.
    """
    pred, gt = _check(pred, gt, spacing)
    if not pred.any() or not gt.any():
        return None
    box = joint_bounding_box(pred, gt, margin=1)
    pred_surface, gt_surface = surface(pred[box]), surface(gt[box])
    sampling = tuple(float(s) for s in spacing)
    to_gt = ndimage.distance_transform_edt(~gt_surface, sampling=sampling)
    to_pred = ndimage.distance_transform_edt(~pred_surface, sampling=sampling)
    return to_gt[pred_surface], to_pred[gt_surface]


def _hd95(distances: tuple[np.ndarray, np.ndarray] | None, both_empty: bool) -> float:
    if distances is None:
        return 0.0 if both_empty else NAN
    return float(max(np.percentile(distances[0], 95), np.percentile(distances[1], 95)))


def _assd(distances: tuple[np.ndarray, np.ndarray] | None, both_empty: bool) -> float:
    if distances is None:
        return 0.0 if both_empty else NAN
    return float(np.concatenate(distances).mean())


def hd95(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> float:
    """Symmetric 95th-percentile Hausdorff distance in mm (MONAI ``HausdorffDistanceMetric(percentile=95)``).

    ``pred``, ``gt``: boolean masks of shape ``S``; ``spacing``: voxel size in mm per axis of ``S``.
    0 if both masks are empty, NaN if exactly one is.
    """
    pred, gt = _check(pred, gt, spacing)
    return _hd95(surface_distances(pred, gt, spacing), not pred.any() and not gt.any())


def assd(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> float:
    """Average symmetric surface distance in mm (MONAI ``SurfaceDistanceMetric(symmetric=True)``).

    ``pred``, ``gt``: boolean masks of shape ``S``; ``spacing``: voxel size in mm per axis of ``S``.
    0 if both masks are empty, NaN if exactly one is.
    """
    pred, gt = _check(pred, gt, spacing)
    return _assd(surface_distances(pred, gt, spacing), not pred.any() and not gt.any())


def binary_metrics(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """All :data:`METRICS` for one pair of boolean masks of shape ``S``, surface distances computed once."""
    pred, gt = _check(pred, gt, spacing)
    both_empty = not pred.any() and not gt.any()
    distances = surface_distances(pred, gt, spacing)
    return {
        "dice": dice(pred, gt),
        "iou": iou(pred, gt),
        "sensitivity": sensitivity(pred, gt),
        "precision": precision(pred, gt),
        "rvd": relative_volume_difference(pred, gt),
        "hd95": _hd95(distances, both_empty),
        "assd": _assd(distances, both_empty),
    }


def empty_metrics() -> dict[str, float]:
    """The metrics of a class absent from both prediction and ground truth (see the conventions above)."""
    empty = np.zeros((1, 1, 1), dtype=bool)
    return binary_metrics(empty, empty, (1.0, 1.0, 1.0))


def case_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    spacing: Sequence[float],
    class_values: Mapping[str, int],
    ignore_label: int | None = None,
) -> dict[str, dict[str, float]]:
    """Per-class metrics of one case.

    ``pred``, ``gt``: integer label maps of shape ``S`` (e.g. (I, J, K)); ``spacing``: voxel size in mm per axis;
    ``class_values``: class name -> label value (background is normally left out); ``ignore_label``: voxels where
    ``gt == ignore_label`` are set to background in both ``pred`` and ``gt`` before computing.
    Returns ``{class name: {metric: value}}`` with the metrics of :data:`METRICS`.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    valid = None if ignore_label is None else gt != ignore_label
    result = {}
    for name, value in class_values.items():
        pred_mask, gt_mask = pred == value, gt == value
        if valid is not None:
            pred_mask &= valid
            gt_mask &= valid
        result[name] = binary_metrics(pred_mask, gt_mask, spacing)
    return result
