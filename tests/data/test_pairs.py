"""Paired-channel data: channel lookup, intensity scaling, brain masks, batch sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from versaseg.data.pairs import (
    PairedVolume,
    PairSampler,
    brain_mask,
    intensity_range,
    resolve_channel,
    scale_to_unit,
    unit_to_range,
)
from versaseg.errors import InputError
from versaseg.io.dataset import DatasetSpec


def _spec() -> DatasetSpec:
    return DatasetSpec(Path("/data/set"), {0: "T1", 1: "T2", 2: "TOF"}, {"background": 0, "brain": 1})


def test_channels_resolve_by_name_case_insensitively_or_index():
    spec = _spec()
    assert resolve_channel(spec, "TOF", "--target") == (2, "TOF")
    assert resolve_channel(spec, "t2", "--source") == (1, "T2")
    assert resolve_channel(spec, "0", "--source") == (0, "T1")
    with pytest.raises(InputError, match=r"--target 'FLAIR' is not a channel.*valid: 0 T1, 1 T2, 2 TOF"):
        resolve_channel(spec, "FLAIR", "--target")
    with pytest.raises(InputError, match="valid"):
        resolve_channel(spec, "3", "--target")


def test_scaling_maps_percentiles_to_minus_one_one_and_back():
    image = np.linspace(0, 1000, 10001).reshape(1, 1, -1)
    low, high = intensity_range(image, (0.5, 99.5))
    assert (low, high) == pytest.approx((5.0, 995.0))
    scaled = scale_to_unit(image, low, high)
    assert scaled.min() == -1 and scaled.max() == 1
    inside = (image >= low) & (image <= high)
    np.testing.assert_allclose(unit_to_range(scaled, low, high)[inside], image[inside], rtol=1e-5, atol=1e-3)
    assert intensity_range(np.full((4, 4, 4), 7.0), (0.5, 99.5)) == (7.0, 8.0)  # flat image: no division by zero


def test_brain_mask_is_the_label_foreground_or_the_otsu_foreground():
    grid = np.indices((30, 30, 30)) - 15
    ball = (grid**2).sum(0) < 8**2
    image = np.where(ball, 500.0, 20.0) + np.random.default_rng(0).normal(0, 5, ball.shape)
    image[2, 2, 2] = 900  # a bright speck outside: not the largest component
    image[15, 15, 15] = 20  # a dark voxel inside: a hole to fill
    label = np.zeros(ball.shape, np.int16)
    label[10:20, 10:20, 10:20] = 2
    assert np.array_equal(brain_mask(label, image, None), label > 0)
    assert np.array_equal(brain_mask(None, image, None), ball)
    sparse = np.where(np.arange(30)[None, None, :] % 4 == 0, label, 9).astype(np.int16)
    assert np.array_equal(brain_mask(sparse, image, ignore_label=9), ball)  # partly annotated: image foreground


def test_pair_sampler_2d_batches_are_aligned_slices_padded_with_the_darkest_value():
    rng = np.random.default_rng(0)
    source = rng.uniform(-1, 1, (10, 12, 6)).astype(np.float32)
    mask = np.zeros(source.shape, bool)
    mask[3:7, 4:8, 2:4] = True
    volume = PairedVolume("c", source, -source, mask, np.argwhere(mask).astype(np.int32), (0, 1), (0, 1))
    sampler = PairSampler([volume], "2d", 2, (16, 16), batch_size=5, seed=1)
    sampler.set_epoch(3)
    batch = next(iter(sampler))
    src, tgt = batch["source"], batch["target"]
    assert src.shape == tgt.shape == (5, 1, 16, 16)
    inside = src != -1
    assert np.allclose(tgt[inside], -src[inside])  # target is the same slice, same crop
    assert (src[:, :, 0, :] == -1).all()  # padding row
    slices = {int(np.flatnonzero([np.allclose(s[0, 3:13, 2:14], source[:, :, k]) for k in range(6)])[0])
              for s in src.numpy()}
    assert slices <= {2, 3}  # only slices holding brain are drawn


def test_pair_sampler_streams_repeat_per_epoch_and_rank_and_differ_between_them():
    rng = np.random.default_rng(0)
    source = rng.uniform(-1, 1, (20, 20, 8)).astype(np.float32)
    mask = np.ones(source.shape, bool)
    volume = PairedVolume("c", source, -source, mask, np.argwhere(mask).astype(np.int32), (0, 1), (0, 1))

    def first(epoch, rank):
        sampler = PairSampler([volume], "2d", 2, (8, 8), batch_size=3, seed=5, rank=rank)
        sampler.set_epoch(epoch)
        return next(iter(sampler))["source"]

    assert torch.equal(first(2, 0), first(2, 0))
    assert not torch.equal(first(2, 0), first(3, 0))
    assert not torch.equal(first(2, 0), first(2, 1))
