"""The training sampler: every sampled voxel carries its source voxel's label, and the loss mask excludes exactly the
ignore-label voxels and the padding outside the volume."""

from __future__ import annotations

import numpy as np
import pytest

from versaseg.data.sampling import PatchSampler, TrainingVolume, crop, inside_mask

IGNORE = 7


@pytest.mark.parametrize("start", [(0, 0, 0), (-3, 2, 5), (4, -6, 9), (-5, 10, 12), (8, 9, 10)])
def test_inside_mask_is_what_crop_copies(start):
    spatial, size = (9, 11, 13), (6, 7, 8)
    ones = np.ones((1, *spatial), bool)
    np.testing.assert_array_equal(inside_mask(start, size, spatial), crop(ones, start, size, False))


@pytest.mark.parametrize(("dim", "axis", "patch"), [(2, 0, (16, 16)), (2, 2, (12, 20)), (3, 0, (8, 12, 16))])
def test_samples_keep_labels_and_mask_ignore_and_padding(dim, axis, patch):
    rng = np.random.default_rng(0)
    shape = (10, 14, 12)
    label = rng.integers(0, 3, shape).astype(np.int16)
    label[:, :, ::3] = IGNORE  # sparse annotation: every third slice along Z unannotated
    coordinate = (np.arange(np.prod(shape)) + 1).reshape(shape).astype(np.float32)  # voxel index + 1; padding is 0
    volume = TrainingVolume.from_arrays("toy", coordinate[None], label, IGNORE, rng)
    sampler = PatchSampler([volume], dim, axis, patch, batch_size=4, foreground_fraction=0.5,
                           ignore_label=IGNORE, seed=1)
    flat = label.ravel()
    batches = iter(sampler)
    for _ in range(5):
        batch = next(batches)
        assert batch["image"].shape == (4, 1, *patch) and batch["label"].shape == (4, 1, *patch)
        source = batch["image"].numpy().astype(np.int64) - 1  # -1 where the patch lies outside the volume
        got_label, got_mask = batch["label"].numpy(), batch["mask"].numpy()
        inside = source >= 0
        truth = np.where(inside, flat[np.clip(source, 0, None)], IGNORE)
        np.testing.assert_array_equal(got_mask, (truth != IGNORE).astype(np.float32))
        np.testing.assert_array_equal(got_label, np.where(truth != IGNORE, truth, 0))
        assert got_mask.any() and (got_mask == 0).any()  # the patches are larger than the volume: padding shows
