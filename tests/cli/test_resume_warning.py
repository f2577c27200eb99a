"""``--resume`` continues a run with its own config.json: options typed on the resuming command line that differ
from the run's are named in one warning line instead of being dropped silently."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from versaseg.cli.main import app

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from conftest import write_tiny_dataset  # noqa: E402

TINY = ["--network-kwargs", '{"depth": 2, "base_width": 4}', "--iterations", "1", "--batch-size", "2"]


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("warning:")]


def test_train_resume_names_the_options_it_ignores_and_keeps_the_runs_own(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", cases=3)
    run = tmp_path / "run"
    runner = CliRunner()
    first = runner.invoke(app, ["train", str(data), "--out", str(run), "--epochs", "1", *TINY])
    assert first.exit_code == 0, first.output

    again = runner.invoke(app, ["train", str(data), "--out", str(run), "--epochs", "2", "--resume", "--lr", "0.01",
                                "--val-fraction", "0.5", "--seed", "0", *TINY])
    assert again.exit_code == 0, again.output
    lines = _warnings(again.output)
    assert len(lines) == 1, again.output
    assert "--lr 0.01 (the run has 0.002)" in lines[0] and "--val-fraction 0.5 (the run has 0.2)" in lines[0]
    for same in ("--seed", "--epochs", "--iterations", "--network-kwargs"):  # unchanged, or allowed to grow
        assert same not in lines[0]
    config = json.loads((run / "config.json").read_text())
    assert config["learning_rate"] == 0.002 and config["val_fraction"] == 0.2 and config["epochs"] == 2

    quiet = runner.invoke(app, ["train", str(data), "--out", str(run), "--epochs", "3", "--resume"])
    assert quiet.exit_code == 0, quiet.output
    assert _warnings(quiet.output) == []  # nothing typed that differs: nothing to warn about


def test_synth_train_resume_names_the_options_it_ignores(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", cases=3)
    run = tmp_path / "pix2pix"
    runner = CliRunner()
    common = ["synth", "train", str(data), "--source", "0", "--target", "1", "--out", str(run), "--iterations", "1",
              "--batch-size", "2"]
    first = runner.invoke(app, [*common, "--epochs", "1"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, [*common, "--epochs", "2", "--resume", "--lambda-l1", "10"])
    assert again.exit_code == 0, again.output
    lines = _warnings(again.output)
    assert len(lines) == 1 and "--lambda-l1 10.0 (the run has 100.0)" in lines[0], again.output
    assert json.loads((run / "config.json").read_text())["lambda_l1"] == 100.0
