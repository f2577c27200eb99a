"""Shared by the reproduction studies (benchmarks/reproduce.py): the JSON-lines store of finished runs, running
``versaseg`` steps as a user would, train -> predict -> evaluate, the validation curve and the plateau rule.

A finished run is one JSON line in ``benchmarks/results/reproduction_<claim>.jsonl`` with its key, the git commit it
ran on, the machine and the date; a run whose key is already there is never repeated, so a killed or interrupted
reproduction (or one on a new machine) continues where the last one stopped. Intermediate files (datasets, run
directories, predictions) live under ``benchmark_data/reproduction/`` (not committed); every one of them is rebuilt
deterministically when a pending run needs it (the generators, ``data degrade``, ``complete`` and CPU training are
seeded).
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from docs_section import cpu_model, versaseg  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
WORK = REPO / "benchmark_data" / "reproduction"
LOG = WORK / "log.txt"

# The plateau rule, judged on every validation curve: the mean of the last fifth of the epochs (at least 3) may
# exceed the mean of the fifth before it by less than this (mean validation Dice, absolute).
PLATEAU_GAIN = 0.01


def git_commit() -> str:
    """Short hash of HEAD, with '+' when the working tree has uncommitted changes under src/ or benchmarks/."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "src", "benchmarks/reproduction",
                            "benchmarks/reproduce.py"], cwd=REPO, capture_output=True, text=True)
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "")


class Store:
    """The finished runs of one claim: one JSON object per line. A line cut short by a kill is ignored on reading."""

    def __init__(self, path: Path):
        self.path = path

    def rows(self) -> list[dict]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def keys(self) -> set[str]:
        return {row["key"] for row in self.rows()}

    def append(self, row: dict) -> None:
        row = {**row, "commit": git_commit(), "machine": f"{cpu_model()}, {os.cpu_count()} cores",
               "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = self.path.read_text() if self.path.exists() else ""
        prefix = "" if not text or text.endswith("\n") else "\n"  # after a cut line, start a new one
        with open(self.path, "a") as stream:
            stream.write(prefix + json.dumps(row, allow_nan=False, separators=(",", ":")) + "\n")
            stream.flush()
            os.fsync(stream.fileno())


def step(*args: str) -> float:
    """Run ``versaseg ARGS`` (stderr to the log); the wall time in seconds."""
    WORK.mkdir(parents=True, exist_ok=True)
    print("versaseg " + " ".join(args), flush=True)
    return versaseg(*args, log=LOG)


def read_curve(run: Path) -> dict:
    """The validation curve of a run directory's metrics.csv: per epoch the mean and per-class validation Dice
    (rows without validation left out) and the train loss; {} when the run did not validate."""
    with open(run / "metrics.csv") as stream:
        rows = list(csv.DictReader(stream))
    curve: dict[str, list] = {"epoch": [], "train_loss": [], "val_dice_mean": []}
    classes = [k for k in rows[0] if k.startswith("val_dice_") and k != "val_dice_mean"] if rows else []
    for name in classes:
        curve[name] = []
    for row in rows:
        if not row.get("val_dice_mean"):
            continue
        curve["epoch"].append(int(row["epoch"]))
        curve["train_loss"].append(float(row["train_loss"]))
        for name in ["val_dice_mean", *classes]:
            curve[name].append(float(row[name]))
    return curve if curve["epoch"] else {}


def plateau(values: list[float]) -> dict:
    """The plateau rule on one validation curve (one value per validated epoch): ``gain`` = mean of the last window
    minus mean of the window before it, window = a fifth of the curve (at least 3 points)."""
    window = max(3, round(len(values) / 5))
    if len(values) < 2 * window:
        return {"window": window, "gain": None, "plateaued": False}
    last = sum(values[-window:]) / window
    before = sum(values[-2 * window:-window]) / window
    return {"window": window, "gain": round(last - before, 5), "plateaued": last - before < PLATEAU_GAIN}


def trained(run: Path) -> bool:
    """Whether ``run`` finished all its epochs (metrics.csv has as many rows as config.json's epochs)."""
    if not (run / "model.pt").exists() or not (run / "metrics.csv").exists():
        return False
    epochs = json.loads((run / "config.json").read_text())["epochs"]
    with open(run / "metrics.csv") as stream:
        return sum(1 for _ in csv.DictReader(stream)) >= epochs


def train(dataset: Path, run: Path, options: list[str], command: tuple[str, ...] = ("train",)) -> float:
    """Train (or finish, after a kill, with --resume) a run directory; the wall time of this call (0 if done)."""
    if trained(run):
        return 0.0
    again = ["--resume"] if (run / "checkpoint.pt").exists() and command == ("train",) else ["--overwrite"]
    return step(*command, str(dataset), "--out", str(run), *options, *again)


def evaluate(prediction: Path, truth_dataset: Path, out: Path) -> dict:
    """``versaseg evaluate`` of a prediction folder against the test labels; per case, per class metrics."""
    step("evaluate", str(prediction), str(truth_dataset / "labelsTs"), "--dataset-json",
         str(truth_dataset / "dataset.json"), "--json", str(out), "--workers", "2", "--overwrite")
    cases = json.loads(out.read_text())["cases"]
    return {case: _finite(entry["metrics"]) for case, entry in cases.items()}


def _finite(metrics: dict) -> dict:
    """Per class {metric: value} with NaN/inf as None (JSON has no NaN)."""
    import math

    return {name: {k: (round(v, 5) if isinstance(v, float) and math.isfinite(v) else None if isinstance(v, float)
                       else v) for k, v in values.items()} for name, values in metrics.items()}


def train_predict_evaluate(train_dataset: Path, test_dataset: Path, run: Path, options: list[str],
                           truth_dataset: Path | None = None) -> dict:
    """Train on ``train_dataset``, predict ``test_dataset``'s imagesTs, score against ``truth_dataset``'s labelsTs
    (default: the test dataset's). The row of a finished run: validation curve, plateau verdict, per-case metrics and
    times."""
    seconds = train(train_dataset, run, options)
    prediction = run.parent / f"{run.name}_pred"
    predict_s = step("predict", str(run), str(test_dataset), "--out", str(prediction), "--overwrite")
    cases = evaluate(prediction, truth_dataset or test_dataset, run.parent / f"{run.name}_eval.json")
    curve = read_curve(run)
    return {"curve": curve, "plateau": plateau(curve["val_dice_mean"]) if curve else None, "cases": cases,
            "train_seconds": round(seconds, 1), "predict_seconds": round(predict_s, 1)}


def synth_brain(out: Path, label_set: str, cases: int, test_cases: int, spacing: float, seed: int) -> Path:
    """A synthetic-brain dataset (byte-identical for the same arguments), generated once."""
    if not (out / "dataset.json").exists():
        step("data", "synth-brain", "--out", str(out), "--label-set", label_set, "--cases", str(cases),
             "--test-cases", str(test_cases), "--spacing", str(spacing), "--seed", str(seed), "--workers", "2",
             "--overwrite")
    return out
