"""Training with the weighted and distance-based losses: maps computed once per volume and only when needed, the
loss options in config.json, CLI errors for bad options."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from versaseg.cli.main import app
from versaseg.data import distance as distance_module
from versaseg.data.sampling import TrainingVolume
from versaseg.errors import InputError
from versaseg.networks.registry import build_network
from versaseg.tasks.training import train
from versaseg.training.config import TrainConfig
from versaseg.training.steps import segmentation_trainer
from versaseg.training.trainer import Trainer

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from conftest import write_tiny_dataset  # noqa: E402

SMALL_NET = {"depth": 3, "base_width": 4}
LABELS = {"background": 0, "ball": 1, "box": 2, "ignore": 3}


@pytest.fixture
def count_maps(monkeypatch):
    calls = []
    original = distance_module.signed_distance_maps

    def counting(label, *args, **kwargs):
        calls.append(label.shape)
        return original(label, *args, **kwargs)

    monkeypatch.setattr(distance_module, "signed_distance_maps", counting)
    return calls


def _volumes(count: int = 2) -> list[TrainingVolume]:
    rng = np.random.default_rng(0)
    volumes = []
    for index in range(count):
        label = np.full((24, 24, 8), 3, np.int16)  # sparse: every other axial slice annotated
        label[:, :, ::2] = 0
        label[5:15, 6:16, ::2] = 1
        label[17:21, 3:8, ::2] = 2
        image = (label == 1).astype(np.float32)[None] - (label == 2) + rng.normal(0, 0.3, (1, *label.shape))
        volumes.append(TrainingVolume.from_arrays(f"c{index}", image.astype(np.float32), label, 3, rng,
                                                  spacing=(1.0, 1.2, 2.5)))
    return volumes


def _trainer(loss: str, volumes, dim: str = "2d", **kwargs) -> Trainer:
    settings = dict(loss=loss, dim=dim, axis=2, patch_size=[16, 16] if dim == "2d" else [16, 16, 8], batch_size=4,
                    epochs=2, iterations_per_epoch=4, learning_rate=1e-2, labels=LABELS, ignore_label=3,
                    augmentation="default", seed=0)
    config = TrainConfig(**{**settings, **kwargs})
    config.validate()
    torch.manual_seed(0)
    network = build_network("unet", config.spatial_dims, 1, 3, **SMALL_NET)
    return segmentation_trainer(config, network, volumes, torch.device("cpu"))


@pytest.mark.parametrize(("loss", "dim"), [("ce_dtm", "2d"), ("dice_dpt", "2d"), ("dice_boundary", "3d")])
def test_distance_losses_train_with_maps_computed_once(loss, dim, count_maps):
    volumes = _volumes()
    trainer = _trainer(loss, volumes, dim)
    assert len(count_maps) == len(volumes)
    before = [p.detach().clone() for p in trainer.network.parameters()]
    history = trainer.fit()
    assert len(count_maps) == len(volumes), "maps must not be recomputed during training"
    assert all(np.isfinite(row["train_loss"]) for row in history)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.network.parameters(), strict=True))
    expected = (3, 24, 24, 8)
    assert all(v.distance.shape == expected for v in volumes)
    plane = 2 if dim == "2d" else None
    assert all(v.distance_key == (3, plane) for v in volumes)
    _trainer(loss, volumes, dim)  # a second trainer on the same volumes reuses their maps
    assert len(count_maps) == len(volumes)


def test_other_losses_compute_no_maps(count_maps):
    volumes = _volumes(1)
    trainer = _trainer("ce_median", volumes)
    trainer.fit()
    assert count_maps == [] and volumes[0].distance is None


def test_ce_dtm_loss_decreases():
    trainer = _trainer("ce_dtm", _volumes(1), epochs=1, iterations_per_epoch=12, augmentation="none")
    losses = []
    original = trainer.step.loss_fn

    def record(*args):
        value = original(*args)
        losses.append(value.item())
        return value

    trainer.step.loss_fn = record
    trainer.fit()
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


def test_loss_kwargs_saved_and_checked(tmp_path):
    data = write_tiny_dataset(tmp_path / "Dataset001_Tiny", cases=2, shape=(16, 16, 8), test_cases=0)
    config = TrainConfig(loss="ce_focal", loss_kwargs={"gamma": 1.5}, epochs=1, iterations_per_epoch=2, batch_size=2,
                         network_kwargs=SMALL_NET, val_fraction=0)
    train(config, data, tmp_path / "run", device="cpu")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["loss"] == "ce_focal" and saved["loss_kwargs"] == {"gamma": 1.5}
    assert TrainConfig.load(tmp_path / "run").loss_kwargs == {"gamma": 1.5}
    with pytest.raises(InputError, match="'gamma'"):
        TrainConfig(loss="ce", loss_kwargs={"gamma": 1}).validate()


def test_cli_lists_losses_and_rejects_unknown_options(tmp_path):
    runner = CliRunner()
    help_text = runner.invoke(app, ["train", "--help"], terminal_width=200).output
    for name in ("ce_inverse", "dice_median", "ce_dtm", "dice_dpt", "tversky", "dice_boundary", "--loss-kwargs"):
        assert name in help_text
    result = runner.invoke(app, ["train", str(tmp_path), "-o", str(tmp_path / "run"), "--loss", "ce_focal",
                                 "--loss-kwargs", '{"gama": 1}'])
    assert result.exit_code == 2 and "'gama'" in result.output and "gamma" in result.output
    result = runner.invoke(app, ["train", str(tmp_path), "-o", str(tmp_path / "run"), "--loss-kwargs", "[1]"])
    assert result.exit_code == 2 and "JSON object" in result.output
