"""The per-voxel MLP: learns a rule from feature rows, deterministic per seed, predicts volumes with their shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from versaseg.training.voxel import fit_voxels, predict_voxels, voxel_mlp


def _rows(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1.0)  # three classes, not linearly trivial
    return x, y


def test_mlp_learns_a_rule_and_generalises():
    x, y = _rows()
    network = fit_voxels(voxel_mlp(3, 3, hidden=32), x, y, epochs=30, batch_size=512, seed=1)
    test_x, test_y = _rows(seed=5)
    volume = test_x.T.reshape(3, 20, 30, 10)
    probs = predict_voxels(network, volume, chunk=1000)
    assert probs.shape == (3, 20, 30, 10)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    accuracy = np.mean(probs.reshape(3, -1).argmax(0) == test_y)
    assert accuracy > 0.93


def test_same_seed_same_weights():
    x, y = _rows(2000)
    torch.manual_seed(0)
    a = fit_voxels(voxel_mlp(3, 3, hidden=8), x, y, epochs=2, batch_size=256, seed=3)
    torch.manual_seed(0)
    b = fit_voxels(voxel_mlp(3, 3, hidden=8), x, y, epochs=2, batch_size=256, seed=3)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy())


def test_no_rows_is_an_error():
    with pytest.raises(ValueError, match="no labelled voxels"):
        fit_voxels(voxel_mlp(3, 2), np.zeros((0, 3), np.float32), np.zeros(0, np.int64))
