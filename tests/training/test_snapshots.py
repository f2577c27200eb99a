"""``versaseg train --save-every N``: intermediate weights in RUN/checkpoints, listed in RUN/checkpoints.json."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from versaseg.cli.main import app
from versaseg.training.checkpoint import list_snapshots

TINY = ["--network-kwargs", '{"depth": 2, "base_width": 4}', "--iterations", "2", "--batch-size", "2",
        "--augmentation", "none", "--device", "cpu", "--val-fraction", "0"]


def test_save_every_writes_expected_epochs_loadable_and_final(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(tiny_dataset), "--out", str(run), "--epochs", "5",
                                      "--save-every", "2", *TINY])
    assert result.exit_code == 0, result.output
    assert [epoch for epoch, _ in list_snapshots(run)] == [2, 4, 5]  # every 2nd epoch plus the last
    index = json.loads((run / "checkpoints.json").read_text())
    assert index == {"checkpoints": [{"epoch": e, "file": f"checkpoints/epoch_{e:03d}.pt"} for e in (2, 4, 5)]}
    assert json.loads((run / "config.json").read_text())["save_every"] == 2
    states = {e: torch.load(p, map_location="cpu", weights_only=True) for e, p in list_snapshots(run)}
    final = torch.load(run / "model.pt", map_location="cpu", weights_only=True)
    assert states[5].keys() == final.keys()
    assert all(torch.equal(states[5][k], final[k]) for k in final)
    assert any(not torch.equal(states[2][k], final[k]) for k in final)  # the network changed after epoch 2


def test_no_snapshots_by_default_and_overwrite_clears_them(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    runner = CliRunner()
    assert runner.invoke(app, ["train", str(tiny_dataset), "--out", str(run), "--epochs", "1", "--save-every", "1",
                               *TINY]).exit_code == 0
    assert (run / "checkpoints" / "epoch_001.pt").exists()
    result = runner.invoke(app, ["train", str(tiny_dataset), "--out", str(run), "--epochs", "1", "--overwrite", *TINY])
    assert result.exit_code == 0, result.output
    assert not (run / "checkpoints").exists() and not (run / "checkpoints.json").exists()


def test_negative_save_every_is_a_user_error(tiny_dataset, tmp_path):
    result = CliRunner().invoke(app, ["train", str(tiny_dataset), "--out", str(tmp_path / "run"), "--save-every",
                                      "-1", *TINY])
    assert result.exit_code == 2
    assert "--save-every" in result.output and "Traceback" not in result.output
