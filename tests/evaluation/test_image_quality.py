"""Masked image-quality metrics: hand-computed MAE/PSNR, SSIM against MONAI, mask invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from versaseg.evaluation.image_quality import image_quality, ssim_map


def _smooth_image(shape=(40, 48), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[: shape[0], : shape[1]] / 8.0
    return (np.sin(x + rng.uniform(0, 3)) * np.cos(y) + 0.2 * rng.normal(size=shape)).astype(np.float32)


def test_mae_and_psnr_equal_hand_computed_values_inside_the_mask():
    target = np.zeros((4, 5))
    pred = np.zeros((4, 5))
    mask = np.zeros((4, 5), bool)
    mask[1:3, 1:4] = True  # 6 voxels
    pred[1, 1], pred[2, 3] = 0.5, -1.0  # errors 0.5 and 1.0 inside the mask
    pred[0, 0] = 9.0  # outside the mask
    result = image_quality(pred, target, mask, data_range=2.0)
    assert result["mae"] == pytest.approx(1.5 / 6)
    mse = (0.25 + 1.0) / 6
    assert result["psnr"] == pytest.approx(10 * np.log10(4.0 / mse))


def test_identical_images_have_ssim_one_and_infinite_psnr():
    image = _smooth_image()
    result = image_quality(image, image.copy(), image > 0, data_range=4.0)
    assert result["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert result["mae"] == 0 and result["psnr"] == float("inf")


def test_ssim_drops_with_noise_and_more_with_more_noise():
    image = _smooth_image()
    rng = np.random.default_rng(1)
    noise = rng.normal(size=image.shape)
    mask = np.ones(image.shape, bool)
    light = image_quality(image + 0.1 * noise, image, mask, 4.0)["ssim"]
    heavy = image_quality(image + 0.5 * noise, image, mask, 4.0)["ssim"]
    assert 1.0 > light > heavy


def test_voxels_outside_the_mask_do_not_change_any_metric():
    image = _smooth_image(seed=2)
    pred = image + 0.2 * np.random.default_rng(3).normal(size=image.shape)
    mask = np.zeros(image.shape, bool)
    mask[10:30, 12:36] = True
    base = image_quality(pred, image, mask, 4.0)
    changed_pred, changed_target = pred.copy(), image.copy()
    changed_pred[~mask] = 50.0
    changed_target[~mask] = -20.0
    changed = image_quality(changed_pred, changed_target, mask, 4.0)
    assert changed == pytest.approx(base)


def test_ssim_map_matches_monai_ssim_metric_away_from_the_border():
    from monai.metrics import SSIMMetric

    a, b = _smooth_image(seed=4), _smooth_image(seed=5)
    ours = ssim_map(a, b, data_range=4.0)[5:-5, 5:-5].mean()  # the valid region MONAI averages over
    theirs = SSIMMetric(spatial_dims=2, data_range=4.0)(torch.from_numpy(a)[None, None],
                                                        torch.from_numpy(b)[None, None])
    assert ours == pytest.approx(float(theirs), abs=1e-5)


def test_slice_wise_ssim_is_2d_ssim_of_each_slice():
    volume_a = np.stack([_smooth_image((24, 28), s) for s in range(5)], axis=2)
    volume_b = np.stack([_smooth_image((24, 28), s + 10) for s in range(5)], axis=2)
    slice_wise = ssim_map(volume_a, volume_b, 4.0, ssim_axis=2)
    assert slice_wise.shape == volume_a.shape
    for k in range(5):
        np.testing.assert_allclose(slice_wise[:, :, k], ssim_map(volume_a[:, :, k], volume_b[:, :, k], 4.0),
                                   atol=1e-10)
    assert not np.allclose(ssim_map(volume_a, volume_b, 4.0), slice_wise)  # 3D SSIM differs


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="mask is empty"):
        image_quality(np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((3, 3), bool), 1.0)
    with pytest.raises(ValueError, match="shape"):
        image_quality(np.zeros((3, 3)), np.zeros((3, 4)), None, 1.0)
