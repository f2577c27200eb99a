"""Padding at inference matches the training sampler: a slice smaller than the patch is centred in it."""

from __future__ import annotations

import numpy as np
import torch

from versaseg.data.sampling import crop, patch_start
from versaseg.inference.window import pad_to_multiple


def test_inference_padding_is_the_samplers_centred_padding():
    x = torch.randn(2, 3, 10, 13)
    padded, inside = pad_to_multiple(x, 8, (16, 24))
    assert padded.shape == (2, 3, 16, 24)
    torch.testing.assert_close(padded[(..., *inside)], x)
    # the sampler's patch for a case smaller than the patch (any centre): the same placement
    start = patch_start((4, 6), (16, 24), (10, 13))
    expected = crop(x[0].numpy(), start, (16, 24), 0.0)
    np.testing.assert_array_equal(padded[0].numpy(), expected)


def test_padding_only_to_the_divisor_without_a_minimum():
    x = torch.randn(1, 1, 17, 32, 5)
    padded, inside = pad_to_multiple(x, 16)
    assert padded.shape == (1, 1, 32, 32, 16)
    assert [(s.start, s.stop) for s in inside] == [(7, 24), (0, 32), (5, 10)]
    torch.testing.assert_close(padded[(..., *inside)], x)
