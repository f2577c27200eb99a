"""Training: determinism, DDP replicas, sparse labels, run-directory safety (kill -9 and --resume: tests/faults)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from versaseg.errors import InputError
from versaseg.tasks.training import train
from versaseg.training.config import TrainConfig

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from conftest import write_tiny_dataset  # noqa: E402

SMALL_NET = {"depth": 3, "base_width": 4}


def _config(**kw) -> TrainConfig:
    defaults = dict(
        epochs=2, iterations_per_epoch=3, batch_size=4, augmentation="default", seed=1, network_kwargs=SMALL_NET
    )
    defaults.update(kw)
    return TrainConfig(**defaults)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def _same(a: dict, b: dict, atol: float = 0.0) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a)


def test_same_seed_gives_identical_weights_and_different_seed_does_not(tiny_dataset, tmp_path):
    train(_config(), tiny_dataset, tmp_path / "a", device="cpu")
    train(_config(), tiny_dataset, tmp_path / "b", device="cpu")
    train(_config(seed=2), tiny_dataset, tmp_path / "c", device="cpu")
    a, b, c = (_weights(tmp_path / r / "model.pt") for r in "abc")
    assert _same(a, b)
    assert not _same(a, c)


def test_run_directory_contents(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    train(_config(tensorboard=True), tiny_dataset, run, device="cpu")
    config = json.loads((run / "config.json").read_text())
    assert config["channel_names"] == ["T1", "T2"]
    assert [n["scheme"] for n in config["normalization"]] == ["zscore", "zscore"]
    assert config["val_cases"] and not set(config["val_cases"]) & set(config["train_cases"])
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,train_loss") and "val_dice_ball" in lines[0] and len(lines) == 3
    assert (run / "curves.png").stat().st_size > 1000
    assert list((run / "tensorboard").iterdir())
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["epoch"] == 1 and len(checkpoint["history"]) == 2
    assert not [p for p in run.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_existing_run_is_not_overwritten(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    train(_config(epochs=1), tiny_dataset, run, device="cpu")
    before = (run / "model.pt").read_bytes()
    with pytest.raises(InputError, match="--overwrite"):
        train(_config(epochs=1), tiny_dataset, run, device="cpu")
    assert (run / "model.pt").read_bytes() == before
    train(_config(epochs=1, seed=5), tiny_dataset, run, device="cpu", overwrite=True)
    assert (run / "model.pt").read_bytes() != before


def test_sparse_labels_train_on_annotated_slices_only(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "sparse", ignore_every=4)
    trainer = train(_config(epochs=1), dataset, tmp_path / "run", device="cpu")
    assert trainer.config.ignore_label == 3
    assert trainer.config.class_names == ["background", "ball", "box"]
    batch = next(iter(trainer.sampler))
    mask = batch["mask"][:, 0]
    assert mask.sum() > 0
    # 2D slices along axis 2 are drawn only from annotated slices: no sample is entirely unannotated
    assert (mask.flatten(1).sum(1) > 0).all()


def test_3d_training(tiny_dataset, tmp_path):
    trainer = train(
        _config(dim="3d", patch_size=[16, 16, 16], batch_size=2), tiny_dataset, tmp_path / "run", device="cpu"
    )
    assert trainer.history[-1]["epoch"] == 2 and np.isfinite(trainer.history[-1]["val_dice_mean"])


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "versaseg.cli.main", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        **kwargs,
    )


def test_ddp_two_cpu_processes_hold_identical_weights(tiny_dataset, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    result = subprocess.run(
        [
            str(torchrun),
            "--nproc-per-node",
            "2",
            "--master-port",
            str(29500 + os.getpid() % 1000),
            str(TESTS / "helpers" / "ddp_train.py"),
            str(tiny_dataset),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world 2" in result.stdout
    rank0, rank1 = _weights(tmp_path / "rank0.pt"), _weights(tmp_path / "rank1.pt")
    assert _same(rank0, rank1)
    # the replicas really trained (not the initial weights) and rank 0 wrote the run
    assert _same(rank0, _weights(tmp_path / "run" / "model.pt"))
    assert (tmp_path / "run" / "metrics.csv").read_text().count("\n") == 3


def test_bad_dataset_gives_one_line_error_and_exit_code_2(tmp_path):
    dataset = write_tiny_dataset(tmp_path / "bad", cases=2)
    (dataset / "imagesTr" / "tiny_001_0001.nii.gz").unlink()
    result = _cli("train", str(dataset), "--out", str(tmp_path / "run"), "--epochs", "1")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "tiny_001_0001.nii.gz" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "model.pt").exists()
