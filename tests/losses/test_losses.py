"""Named losses: hand-computed values per weighting, equality with MONAI where the definitions coincide, masking,
2D/3D, binary/multi-class, absent classes, option checking.

Conventions matched against MONAI (all with softmax, to_onehot_y, batch=True):
- dice == DiceLoss (smooth_nr = smooth_dr = our smooth, 1e-5).
- dice_inverse == GeneralizedDiceLoss with smooth 0 on both sides: we normalise the class weights to sum 1, so a
  non-zero smoothing term has a different relative size (MONAI's raw 1/N^2 weights make 1e-5 far from negligible).
- ce_focal == number of classes x FocalLoss(reduction="mean"): MONAI averages over classes too, we over voxels only.
- tversky == TverskyLoss (alpha weighs false positives, beta false negatives in both).
"""

from __future__ import annotations

import math

import pytest
import torch
from monai.losses import DiceLoss, FocalLoss, GeneralizedDiceLoss, TverskyLoss

from versaseg.errors import InputError
from versaseg.losses.functional import soft_dice
from versaseg.losses.registry import LOSSES, build_loss, loss_options
from versaseg.losses.weighting import inverse_frequency_weights, median_frequency_weights

LN2, LN4, LN43 = math.log(2), math.log(4), math.log(4 / 3)


def _random(seed: int, batch: int, classes: int, spatial: tuple[int, ...]):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn((batch, classes, *spatial), generator=g)
    target = torch.randint(0, classes, (batch, 1, *spatial), generator=g)
    distance = torch.randn((batch, classes, *spatial), generator=g) * 8
    return logits, target, distance


def _ones(target):
    return torch.ones_like(target, dtype=torch.float32)


# --- hand-computed values: one 2D row of four voxels, two classes ----------------------------------------------------
# p(class 1) = [1/2, 3/4, 1/2, 3/4]; true classes [0, 0, 0, 1]; per-voxel CE = [ln 2, ln 4, ln 2, ln 4/3].
LOGITS = torch.tensor([[[[0.0, 0.0, 0.0, 0.0]], [[0.0, math.log(3), 0.0, math.log(3)]]]])
TARGET = torch.tensor([[[[0, 0, 0, 1]]]])
MASK = torch.ones(1, 1, 1, 4)
D1 = torch.tensor([3.0, 1.0, -1.0, -1.0]).view(1, 1, 4)
DISTANCE = torch.stack([-D1, D1], 1)  # (1, 2, 1, 4): class 0's map is the negative of class 1's
CE_VOXELS = [LN2, LN4, LN2, LN43]


def _loss(name, **options):
    return build_loss(name, 2, options)(LOGITS, TARGET, MASK, DISTANCE).item()


def test_cross_entropy_weightings_by_hand():
    assert _loss("ce") == pytest.approx(sum(CE_VOXELS) / 4)
    # inverse: weights 1/3 and 1 -> the mean of the per-class mean CEs
    assert _loss("ce_inverse") == pytest.approx(((LN2 + LN4 + LN2) / 3 + LN43) / 2)
    # one sample: Eigen-Fergus frequencies 3/4 and 1/4, median 1/2, weights 2/3 and 2: the same weight ratio 1:3
    assert _loss("ce_median") == pytest.approx(_loss("ce_inverse"))
    # focal: -(1 - p_t)^2 log p_t with p_t = [1/2, 1/4, 1/2, 3/4]
    focal = [0.25 * LN2, 0.5625 * LN4, 0.25 * LN2, 0.0625 * LN43]
    assert _loss("ce_focal") == pytest.approx(sum(focal) / 4)
    assert _loss("ce_focal", gamma=0) == pytest.approx(_loss("ce"))
    # distance scale 2 mm: n = min(|d| / 2, 1) = [1, 1/2, 1/2, 1/2]; dtm 1 + n, dpt 2 - n
    dtm, dpt = [2, 1.5, 1.5, 1.5], [1, 1.5, 1.5, 1.5]
    expected_dtm = sum(w * c for w, c in zip(dtm, CE_VOXELS, strict=True)) / sum(dtm)
    expected_dpt = sum(w * c for w, c in zip(dpt, CE_VOXELS, strict=True)) / sum(dpt)
    assert _loss("ce_dtm", distance_scale_mm=2) == pytest.approx(expected_dtm)
    assert _loss("ce_dpt", distance_scale_mm=2) == pytest.approx(expected_dpt)


def test_median_frequency_uses_the_samples_where_a_class_occurs():
    target = torch.tensor([[[[0, 0, 0, 1]]], [[[0, 0, 0, 0]]]])
    mask = torch.ones(2, 1, 1, 4)
    onehot = torch.nn.functional.one_hot(target[:, 0], 2).movedim(-1, 1).float()
    # f0 = 7/8 (both samples), f1 = 1/4 (first sample only); median 9/16
    assert median_frequency_weights(onehot, mask).tolist() == pytest.approx([9 / 14, 9 / 4])
    assert inverse_frequency_weights(onehot, 1.0).tolist() == pytest.approx([1 / 8, 7 / 8])  # (1/7, 1) / (8/7)
    logits = torch.zeros(2, 2, 1, 4)
    logits[:, 1, 0, 1] = math.log(3)
    ce = torch.nn.functional.cross_entropy(logits, target[:, 0], reduction="none").flatten()
    weights = torch.tensor([9 / 14, 9 / 4])[target.flatten()]
    expected = (weights * ce).sum() / weights.sum()
    assert build_loss("ce_median", 2)(logits, target, mask).item() == pytest.approx(expected.item())


def test_dice_weightings_by_hand():
    # class 1: I = 3/4, sum p + sum g = 5/2 + 1; class 0: I = 5/4, sum p + sum g = 3/2 + 3
    dice1, dice0 = 1.5 / 3.5, 2.5 / 4.5
    assert _loss("dice", smooth=0) == pytest.approx(1 - (dice0 + dice1) / 2)
    assert _loss("dice", smooth=0, include_background=False) == pytest.approx(1 - dice1)
    # generalized: weights 1/3^2 and 1/1^2
    assert _loss("dice_inverse", smooth=0) == pytest.approx(1 - 2 * (1.25 / 9 + 0.75) / (4.5 / 9 + 3.5))
    # median: weights in ratio 1:3 (see above)
    assert _loss("dice_median", smooth=0) == pytest.approx(1 - 2 * (1.25 + 3 * 0.75) / (4.5 + 3 * 3.5))
    # focal, gamma 1: weights |g - p| = [1/2, 3/4, 1/2, 1/4] for both classes
    assert _loss("dice_focal", smooth=0, gamma=1) == pytest.approx(1 - (0.375 / 1.5 + 1.375 / 2.5) / 2)
    # dtm weights [2, 1.5, 1.5, 1.5]: class 1 I = 1.5 * 3/4, U = 2/2 + 1.5 * (3/4 + 1/2 + 3/4) + 1.5
    i1, u1 = 1.125, 1 + 3 + 1.5
    i0, u0 = 2 * 0.5 + 1.5 * 0.25 + 1.5 * 0.5, (2 * 0.5 + 1.5 * (0.25 + 0.5 + 0.25)) + (2 + 1.5 + 1.5)
    assert _loss("dice_dtm", smooth=0, distance_scale_mm=2) == pytest.approx(1 - (2 * i1 / u1 + 2 * i0 / u0) / 2)
    # dpt weights [1, 1.5, 1.5, 1.5]
    i0, u0 = 0.5 + 1.5 * 0.25 + 1.5 * 0.5, (0.5 + 1.5 * (0.25 + 0.5 + 0.25)) + (1 + 1.5 + 1.5)
    u1 = 0.5 + 3 + 1.5
    assert _loss("dice_dpt", smooth=0, distance_scale_mm=2) == pytest.approx(1 - (2 * i1 / u1 + 2 * i0 / u0) / 2)


def test_tversky_and_boundary_by_hand():
    ti1 = 0.75 / (0.75 + 0.3 * 1.75 + 0.7 * 0.25)
    ti0 = 1.25 / (1.25 + 0.3 * 0.25 + 0.7 * 1.75)
    assert _loss("tversky", smooth=0) == pytest.approx(1 - (ti0 + ti1) / 2)
    # boundary term: mean of d1 * p1 = (3/2 + 3/4 - 1/2 - 3/4) / 4 = 1/4
    dice = _loss("dice", smooth=0)
    assert _loss("dice_boundary", smooth=0, boundary_weight=1) == pytest.approx(dice + 0.25)
    assert _loss("dice_boundary", smooth=0, boundary_weight=0) == pytest.approx(dice)


# --- equality with MONAI --------------------------------------------------------------------------------------------
SHAPES = [(3, 2, (9, 7)), (2, 4, (6, 5, 4)), (2, 3, (8, 8))]  # (batch, classes, spatial): binary 2D, 3D, multi 2D


@pytest.mark.parametrize(("batch", "classes", "spatial"), SHAPES)
def test_matches_monai(batch, classes, spatial):
    logits, target, _ = _random(classes, batch, classes, spatial)
    mask = _ones(target)
    common = {"to_onehot_y": True, "softmax": True, "batch": True}
    pairs = [
        (build_loss("dice", classes), DiceLoss(include_background=True, **common)),
        (build_loss("dice", classes, {"include_background": False}), DiceLoss(include_background=False, **common)),
        (build_loss("dice_inverse", classes, {"smooth": 0}),
         GeneralizedDiceLoss(include_background=True, smooth_nr=0, smooth_dr=0, **common)),
        (build_loss("tversky", classes), TverskyLoss(include_background=True, alpha=0.3, beta=0.7, **common)),
    ]
    for ours, monai in pairs:
        assert ours(logits, target, mask).item() == pytest.approx(monai(logits, target).item(), rel=1e-5), ours.name
    focal = FocalLoss(to_onehot_y=True, use_softmax=True, gamma=2.0)(logits, target)
    assert build_loss("ce_focal", classes)(logits, target, mask).item() == pytest.approx(
        classes * focal.item(), rel=1e-5)
    counts = torch.bincount(target.flatten(), minlength=classes).float()
    ce = torch.nn.functional.cross_entropy(logits, target[:, 0], weight=1 / counts)
    assert build_loss("ce_inverse", classes)(logits, target, mask).item() == pytest.approx(ce.item(), rel=1e-5)


def test_generalized_dice_matches_monai_with_a_class_absent():
    logits, target, _ = _random(5, 2, 4, (7, 6))
    target[target == 2] = 3  # class 2 absent: both give it the largest weight of the present classes
    monai = GeneralizedDiceLoss(include_background=True, smooth_nr=0, smooth_dr=0, to_onehot_y=True, softmax=True,
                                batch=True)(logits, target)
    ours = build_loss("dice_inverse", 4, {"smooth": 0})(logits, target, _ones(target))
    assert ours.item() == pytest.approx(monai.item(), rel=1e-5)


# --- masking, dimensions, absent classes ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize(("batch", "classes", "spatial"), SHAPES)
def test_masked_voxels_change_neither_value_nor_gradient(name, batch, classes, spatial):
    logits, target, distance = _random(1, batch, classes, spatial)
    mask = torch.zeros_like(target, dtype=torch.float32)
    mask[..., :3] = 1
    changed = logits.clone(), target.clone(), distance.clone()
    changed[0][..., 3:] = torch.randn_like(logits[..., 3:]) * 10
    changed[1][..., 3:] = classes + 1  # an ignore value
    changed[2][..., 3:] = -1000.0
    loss = build_loss(name, classes)
    a = loss(logits, target, mask, distance)
    b = loss(*changed[:2], mask, changed[2])
    assert torch.isfinite(a) and a.item() == pytest.approx(b.item(), abs=1e-6)
    x = changed[0].clone().requires_grad_(True)
    loss(x, changed[1], mask, changed[2]).backward()
    assert torch.count_nonzero(x.grad[..., 3:]) == 0
    assert torch.count_nonzero(x.grad[..., :3]) > 0


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("spatial", [(6, 5), (4, 5, 3)])
def test_no_nan_when_classes_are_absent(name, spatial):
    logits, target, distance = _random(2, 2, 3, spatial)
    loss = build_loss(name, 3)
    for labels in (torch.zeros_like(target), torch.full_like(target, 2)):  # only background / only class 2
        x = logits.clone().requires_grad_(True)
        value = loss(x, labels, _ones(labels), distance)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all(), name
    nothing = torch.zeros_like(target, dtype=torch.float32)  # no annotated voxel at all: zero-ish, finite
    assert torch.isfinite(loss(logits, target, nothing, distance))


def test_weighted_dice_reduces_to_plain_dice_with_unit_weights():
    logits, target, _ = _random(3, 2, 3, (5, 6))
    probs = logits.softmax(1)
    onehot = torch.nn.functional.one_hot(target[:, 0], 3).movedim(-1, 1).float()
    mask = _ones(target)
    plain = soft_dice(probs, onehot, mask)
    assert soft_dice(probs, onehot, mask, voxel_weights=torch.ones_like(probs)).item() == pytest.approx(plain.item())


def test_distance_losses_require_the_maps():
    logits, target, _ = _random(0, 1, 2, (4, 4))
    for name, info in LOSSES.items():
        loss = build_loss(name, 2)
        assert loss.needs_distance == info.needs_distance == (name.endswith(("_dtm", "_dpt")) or name ==
                                                              "dice_boundary")
        if loss.needs_distance:
            with pytest.raises(ValueError, match="distance"):
                loss(logits, target, _ones(target))


# --- options --------------------------------------------------------------------------------------------------------
def test_options_defaults_and_errors():
    assert loss_options("ce_focal") == {"gamma": 2.0}
    assert loss_options("tversky", {"alpha": 0.5})["beta"] == 0.7
    assert loss_options("dice_boundary")["boundary_weight"] == 0.01
    with pytest.raises(InputError, match="'bogus'.*valid: gamma"):
        loss_options("ce_focal", {"bogus": 1})
    with pytest.raises(InputError, match="'gamma'.*takes none"):
        loss_options("ce", {"gamma": 1})
    with pytest.raises(InputError, match="'gamma' must be a number"):
        loss_options("ce_focal", {"gamma": "2"})
    with pytest.raises(InputError, match="'distance_scale_mm' must be > 0"):
        loss_options("ce_dtm", {"distance_scale_mm": 0})
    with pytest.raises(InputError, match="'include_background' must be true or false"):
        loss_options("dice", {"include_background": 1})
    with pytest.raises(InputError, match="unknown loss 'nope'"):
        build_loss("nope", 2)
