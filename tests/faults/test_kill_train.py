"""``kill -9`` of `train` at writes and at random times, then ``--resume``: the run ends exactly as an unkilled one.

After a kill every file in the run directory is whole: model.pt holds the weights of a finished epoch, checkpoint.pt
those of its own epoch (both equal to the reference run's ``--save-every 1`` snapshots), no final name holds a
partial file. ``--resume`` then removes the stale temporaries (also inside checkpoints/) and finishes with weights,
optimiser state, metrics and snapshots bit-identical to the reference run's.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from faultlib import KillAt, killed_run, leftovers, random_delays, run_cli, temporaries, tiny_dataset  # noqa: E402

from versaseg.io.run_dir import RUN_FILES, load_safe  # noqa: E402
from versaseg.training.config import TrainConfig  # noqa: E402

EPOCHS = 3
TIMES = ("seconds", "samples_per_s", "val_seconds")  # the only columns that differ between identical runs
slow = pytest.mark.slow


def _args(dataset: Path, out: Path) -> list:
    # augmentation on (its random state must replay too), validation on one case, a snapshot every epoch
    return ["train", dataset, "--out", out, "--epochs", EPOCHS, "--iterations", 2, "--batch-size", 2,
            "--network-kwargs", '{"depth": 2, "base_width": 4}', "--device", "cpu", "--seed", 3, "--save-every", 1]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory):
    """The unkilled run: (run dir, wall seconds, {epoch: snapshot weights})."""
    run = tmp_path_factory.mktemp("train_ref") / "run"
    result, seconds = run_cli(*_args(dataset, run))
    assert result.returncode == 0, result.stderr
    snapshots = {e: load_safe(run / "checkpoints" / f"epoch_{e:03d}.pt") for e in range(1, EPOCHS + 1)}
    return run, seconds, snapshots


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _epoch_of(weights: dict, snapshots: dict) -> int:
    """The reference epoch whose weights ``weights`` are exactly; fails when there is none."""
    matches = [e for e, s in snapshots.items() if _same(weights, s)]
    assert matches, "weights that are no finished epoch of the reference run"
    return matches[0]


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return [{k: v for k, v in row.items() if k not in TIMES} for row in csv.DictReader(f)]


def _tensors_equal(a, b) -> bool:
    """Nested containers of tensors and numbers equal, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_tensors_equal, a, b))
    return a == b


def _check_after_kill(run: Path, snapshots: dict) -> int | None:
    """Every final file of the killed run is whole and belongs to a finished epoch; returns the checkpoint's number
    of finished epochs (None without checkpoint.pt)."""
    assert leftovers(run, set(RUN_FILES)) == []
    assert leftovers(run / "checkpoints", {f"epoch_{e:03d}.pt" for e in snapshots}) == []
    if (run / "config.json").exists():
        TrainConfig.load(run)
    model_epoch = _epoch_of(load_safe(run / "model.pt"), snapshots) if (run / "model.pt").exists() else 0
    done = None
    if (run / "checkpoint.pt").exists():
        checkpoint = load_safe(run / "checkpoint.pt")
        done = checkpoint["epoch"] + 1
        assert len(checkpoint["history"]) == done
        assert _same(checkpoint["model"], snapshots[done]), "checkpoint weights are not those of its epoch"
        assert model_epoch >= done, "model.pt is older than the checkpoint"
    for path in sorted((run / "checkpoints").glob("epoch_*.pt")):
        assert _same(load_safe(path), snapshots[int(path.stem[6:])]), path
    if (run / "checkpoints.json").exists():
        listed = json.loads((run / "checkpoints.json").read_text())["checkpoints"]
        assert all((run / entry["file"]).is_file() for entry in listed)
    if (run / "metrics.csv").exists():
        assert len(_rows(run / "metrics.csv")) <= max(model_epoch, done or 0)
    return done


def _assert_same_run(run: Path, reference: Path) -> None:
    assert _same(load_safe(run / "model.pt"), load_safe(reference / "model.pt")), "final weights differ"
    got, want = load_safe(run / "checkpoint.pt"), load_safe(reference / "checkpoint.pt")
    history = [{k: v for k, v in row.items() if k not in TIMES} for row in got.pop("history")]
    assert history == [{k: v for k, v in row.items() if k not in TIMES} for row in want.pop("history")]
    assert _tensors_equal(got, want), "optimiser / scheduler state differs"
    assert _rows(run / "metrics.csv") == _rows(reference / "metrics.csv")
    assert (run / "checkpoints.json").read_text() == (reference / "checkpoints.json").read_text()
    for path in sorted((reference / "checkpoints").iterdir()):
        assert _same(load_safe(run / "checkpoints" / path.name), load_safe(path)), path.name
    assert json.loads((run / "config.json").read_text()) == json.loads((reference / "config.json").read_text())
    assert (run / "curves.png").stat().st_size > 1000
    assert temporaries(run) == [], "stale temporaries left after --resume"


DEFAULT_POINTS = (KillAt("mkdtemp", "epoch_002.pt"), KillAt("replace", "checkpoint.pt", nth=2),
                  *random_delays(31, 1, low=0.5))
POINTS = [pytest.param(p, id=str(p)) for p in DEFAULT_POINTS]
POINTS += [pytest.param(p, id=str(p), marks=slow) for p in (
    KillAt("replace", "model.pt", nth=2),
    KillAt("mkdtemp", "checkpoint.pt", nth=2, delay=0.005), KillAt("mkdtemp", "metrics.csv"),
    KillAt("replace", "checkpoints.json", nth=3), *random_delays(29, 3, low=0.5))]


@pytest.mark.parametrize("point", POINTS)
def test_train_killed_then_resumed_matches_an_unkilled_run(point, dataset, reference, tmp_path):
    reference_run, seconds, snapshots = reference
    run = tmp_path / "run"
    status = killed_run(_args(dataset, run), point, seconds)
    done = _check_after_kill(run, snapshots)
    if status == 0:  # a random delay after the end: nothing to resume
        _assert_same_run(run, reference_run)
        return
    if done is None:  # killed before the first checkpoint: --resume says so, the run starts again
        result, _ = run_cli(*_args(dataset, run), "--resume")
        assert result.returncode == 2 and "checkpoint.pt" in result.stderr, result.stderr
        result, _ = run_cli(*_args(dataset, run), "--overwrite")
    else:  # done == EPOCHS: killed after the last checkpoint, while finishing; --resume has nothing left to train
        assert done <= EPOCHS
        result, _ = run_cli(*_args(dataset, run), "--resume")
    assert result.returncode == 0, result.stderr
    _assert_same_run(run, reference_run)

