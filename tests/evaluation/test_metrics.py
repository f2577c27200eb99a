"""Metrics: agreement with MONAI on random shapes, hand-computed cases, empty-mask conventions, ignore label."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import ndimage

from versaseg.evaluation import metrics as m

SPACING = (0.7, 1.3, 2.5)


def blob(seed: int, shape=(40, 40, 40), sigma=3.0, fraction=0.15) -> np.ndarray:
    """Smoothed random noise thresholded to keep ``fraction`` of the voxels: irregular, often multi-part shapes."""
    noise = np.random.default_rng(seed).standard_normal(shape)
    smooth = ndimage.gaussian_filter(noise, sigma)
    return smooth > np.quantile(smooth, 1 - fraction)


def perturbed(mask: np.ndarray, seed: int) -> np.ndarray:
    """A prediction-like mask: ``mask`` dilated, with random voxels flipped and a shifted copy of part of it."""
    rng = np.random.default_rng(seed)
    out = ndimage.binary_dilation(mask, iterations=1)
    out ^= rng.random(mask.shape) < 0.01
    return out | np.roll(mask, 3, axis=int(rng.integers(3)))


def monai_values(pred: np.ndarray, gt: np.ndarray, spacing) -> dict[str, float]:
    import torch
    from monai.metrics import DiceMetric, HausdorffDistanceMetric, SurfaceDistanceMetric

    p = torch.from_numpy(pred[None, None].astype(np.float32))
    g = torch.from_numpy(gt[None, None].astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "dice": DiceMetric(include_background=True)(p, g).item(),
            "hd95": HausdorffDistanceMetric(include_background=True, percentile=95)(p, g, spacing=spacing).item(),
            "assd": SurfaceDistanceMetric(include_background=True, symmetric=True)(p, g, spacing=spacing).item(),
        }


PAIRS = [
    pytest.param(lambda: (blob(1), blob(2)), SPACING, id="independent-blobs"),
    pytest.param(lambda: (blob(3, sigma=2.0), blob(4, sigma=4.0, fraction=0.25)), SPACING, id="different-scales"),
    pytest.param(lambda: (perturbed(blob(5), 6), blob(5)), SPACING, id="perturbed-prediction"),
    pytest.param(lambda: (perturbed(blob(5), 6), blob(5)), (2.0, 0.5, 1.0), id="perturbed-other-spacing"),
    pytest.param(lambda: (blob(7, fraction=0.03), perturbed(blob(7, fraction=0.03), 8)), SPACING, id="small-structure"),
]


@pytest.mark.parametrize(("make", "spacing"), PAIRS)
def test_agrees_with_monai_on_random_shapes(make, spacing):
    pred, gt = make()
    assert pred.any() and gt.any() and not np.array_equal(pred, gt)
    expected = monai_values(pred, gt, spacing)
    got = m.binary_metrics(pred, gt, spacing)
    for name in ("dice", "hd95", "assd"):
        assert got[name] == pytest.approx(expected[name], abs=1e-3), name
    assert m.hd95(pred, gt, spacing) == got["hd95"]
    assert m.assd(pred, gt, spacing) == got["assd"]
    assert got["hd95"] > 1.0 and got["assd"] > 0.1  # the shapes differ by more than a voxel


def test_case_metrics_agree_with_monai_per_class():
    """A three-class label map: each class agrees with MONAI run on the one-hot encoding (background left out)."""
    import torch
    from monai.metrics import HausdorffDistanceMetric, SurfaceDistanceMetric

    gt = blob(11).astype(np.int16) + 2 * (blob(12) & ~blob(11))
    pred = np.roll(gt, 2, axis=1)
    pred[blob(13, fraction=0.05)] = 3
    result = m.case_metrics(pred, gt, SPACING, {"a": 1, "b": 2, "c": 3})
    one_hot = [torch.from_numpy(np.stack([x == v for v in range(4)])[None].astype(np.float32)) for x in (pred, gt)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hd = HausdorffDistanceMetric(percentile=95)(*one_hot, spacing=SPACING)[0].numpy()
        sd = SurfaceDistanceMetric(symmetric=True)(*one_hot, spacing=SPACING)[0].numpy()
    for index, name in enumerate(("a", "b")):
        assert result[name]["hd95"] == pytest.approx(hd[index], abs=1e-3)
        assert result[name]["assd"] == pytest.approx(sd[index], abs=1e-3)
        assert result[name]["dice"] == pytest.approx(m.dice(pred == index + 1, gt == index + 1))
    # class c is in the prediction only: HD95 is undefined for MONAI and here (NaN); Dice is 0 by convention
    assert math.isnan(hd[2]) and math.isnan(result["c"]["hd95"]) and result["c"]["dice"] == 0.0


def test_two_offset_cubes_volume_metrics_are_exact():
    gt = np.zeros((30, 30, 30), bool)
    gt[10:20, 10:20, 10:20] = True
    pred = np.roll(gt, 2, axis=0)  # 8 of 10 slices overlap
    got = m.binary_metrics(pred, gt, SPACING)
    assert got["dice"] == pytest.approx(0.8)
    assert got["iou"] == pytest.approx(800 / 1200)
    assert got["sensitivity"] == pytest.approx(0.8)
    assert got["precision"] == pytest.approx(0.8)
    assert got["rvd"] == 0.0
    grown = np.zeros_like(gt)
    grown[10:20, 10:20, 10:25] = True  # 1500 voxels vs 1000
    assert m.relative_volume_difference(grown, gt) == pytest.approx(0.5)
    assert m.relative_volume_difference(gt, grown) == pytest.approx(-1 / 3)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_parallel_planes_distance_is_offset_times_spacing(axis):
    """Two one-voxel-thick planes spanning the array, ``k`` voxels apart: every surface distance is k * spacing."""
    shape, k = (12, 14, 16), 3
    gt = np.zeros(shape, bool)
    pred = np.zeros(shape, bool)
    index = [slice(None)] * 3
    index[axis] = 4
    gt[tuple(index)] = True
    index[axis] = 4 + k
    pred[tuple(index)] = True
    got = m.binary_metrics(pred, gt, SPACING)
    assert got["hd95"] == pytest.approx(k * SPACING[axis])
    assert got["assd"] == pytest.approx(k * SPACING[axis])
    assert got["dice"] == 0.0


def test_hd95_ignores_a_single_outlier_and_assd_averages_over_all_surface_voxels():
    """Plane of N voxels predicted exactly plus one stray voxel at distance D: HD95 = 0, ASSD = D / (2N + 1)."""
    shape = (10, 12, 20)
    gt = np.zeros(shape, bool)
    gt[:, :, 2] = True
    pred = gt.copy()
    pred[5, 6, 12] = True  # 10 voxels above the plane along axis 2
    n, distance = 10 * 12, 10 * SPACING[2]
    assert m.hd95(pred, gt, SPACING) == 0.0
    assert m.assd(pred, gt, SPACING) == pytest.approx(distance / (2 * n + 1))
    to_gt, to_pred = m.surface_distances(pred, gt, SPACING)
    assert to_gt.max() == pytest.approx(distance) and to_pred.max() == 0.0
    assert monai_values(pred, gt, SPACING)["assd"] == pytest.approx(distance / (2 * n + 1), abs=1e-6)


def test_surface_is_mask_minus_its_6_connected_erosion():
    mask = np.zeros((7, 7, 7), bool)
    mask[1:6, 1:6, 1:6] = True
    surf = m.surface(mask)
    assert surf.sum() == 125 - 27
    assert not surf[2:5, 2:5, 2:5].any()
    touching = np.ones((4, 4, 4), bool)  # outside the array is background, so the border is surface
    assert m.surface(touching).sum() == 64 - 8


def test_joint_bounding_box_has_a_margin_and_is_clipped():
    a = np.zeros((10, 10, 10), bool)
    b = np.zeros_like(a)
    a[0, 4, 5] = True
    b[3, 6, 9] = True
    assert m.joint_bounding_box(a, b) == (slice(0, 5), slice(3, 8), slice(4, 10))
    assert m.joint_bounding_box(np.zeros_like(a)) is None


def test_empty_mask_conventions():
    empty = np.zeros((8, 8, 8), bool)
    cube = empty.copy()
    cube[2:5, 2:5, 2:5] = True

    both = m.binary_metrics(empty, empty, SPACING)
    assert (both["dice"], both["iou"], both["hd95"], both["assd"], both["rvd"]) == (1.0, 1.0, 0.0, 0.0, 0.0)
    assert math.isnan(both["sensitivity"]) and math.isnan(both["precision"])
    assert both == pytest.approx(m.empty_metrics(), nan_ok=True)

    only_pred = m.binary_metrics(cube, empty, SPACING)  # ground truth empty
    assert (only_pred["dice"], only_pred["iou"], only_pred["precision"]) == (0.0, 0.0, 0.0)
    assert all(math.isnan(only_pred[k]) for k in ("sensitivity", "rvd", "hd95", "assd"))

    only_gt = m.binary_metrics(empty, cube, SPACING)  # prediction empty
    assert (only_gt["dice"], only_gt["iou"], only_gt["sensitivity"], only_gt["rvd"]) == (0.0, 0.0, 0.0, -1.0)
    assert all(math.isnan(only_gt[k]) for k in ("precision", "hd95", "assd"))
    assert m.surface_distances(empty, cube, SPACING) is None


def test_ignore_label_voxels_are_excluded():
    gt = np.zeros((20, 20, 20), np.uint8)
    gt[5:10, 5:10, 5:10] = 1
    gt[12:16, :, :] = 3  # ignore
    pred = (gt == 1).astype(np.uint8)
    pred[12:14, 2:6, 2:6] = 1  # false positives, but inside the ignored region
    pred[5:10, 5:10, 5] = 3  # an ignore value in the prediction is not a class
    with_ignore = m.case_metrics(pred, gt, SPACING, {"organ": 1}, ignore_label=3)["organ"]
    without = m.case_metrics(pred, gt, SPACING, {"organ": 1}, ignore_label=None)["organ"]
    assert with_ignore["precision"] == pytest.approx(100 / 100)
    assert with_ignore["dice"] == pytest.approx(2 * 100 / (100 + 125))  # pred lost the slice set to 3
    assert without["precision"] == pytest.approx(100 / (100 + 32))
    assert without["dice"] == pytest.approx(2 * 100 / (132 + 125))
    assert without["hd95"] > with_ignore["hd95"]
    # ignoring a region where prediction and truth disagree about the class makes them agree exactly
    truth = np.zeros((10, 10, 10), np.uint8)
    truth[2:6, 2:6, 2:6] = 1
    guess = truth.copy()
    guess[6:8, 2:6, 2:6] = 1
    truth[6:8, 2:6, 2:6] = 2
    exact = m.case_metrics(guess, truth, SPACING, {"organ": 1}, ignore_label=2)["organ"]
    assert (exact["dice"], exact["hd95"], exact["assd"]) == (1.0, 0.0, 0.0)


def test_bad_shapes_and_spacing_raise():
    with pytest.raises(ValueError, match="shape"):
        m.dice(np.zeros((3, 3, 3), bool), np.zeros((3, 3, 4), bool))
    with pytest.raises(ValueError, match="spacing"):
        m.hd95(np.ones((3, 3, 3), bool), np.ones((3, 3, 3), bool), (1.0, 1.0))
    with pytest.raises(ValueError, match="shape"):
        m.case_metrics(np.zeros((3, 3, 3)), np.zeros((3, 3)), SPACING, {"a": 1})
