"""Loss study: splits, paired statistics (significance and rank scores), outputs and reuse of finished runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from versaseg.errors import InputError
from versaseg.tasks.loss_study import METRICS, case_splits, compare

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import write_tiny_dataset  # noqa: E402


def test_folds_cover_every_case_once_and_split_is_seeded():
    ids = [f"c{i}" for i in range(7)]
    splits = case_splits(ids, 3, None, seed=0)
    tested = sorted(c for _, test in splits for c in test)
    assert tested == sorted(ids)
    for train, test in splits:
        assert not set(train) & set(test) and len(train) + len(test) == 7
    assert case_splits(ids, None, 0.3, seed=1) == case_splits(ids, None, 0.3, seed=1)
    assert len(case_splits(ids, None, 0.3, seed=1)[0][1]) == 2
    with pytest.raises(InputError, match="--folds"):
        case_splits(ids, 8, None, seed=0)


def _rows(values: dict[str, list[float]], metric: str) -> list[dict]:
    return [{"loss": loss, "fold": 0, "case": f"c{i}", "class": "vessel", "metric": metric, "value": v}
            for loss, vs in values.items() for i, v in enumerate(vs)]


def test_significance_counts_losses_beaten_in_the_right_direction():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.5, 0.7, 10)
    good, bad, same = base + 0.2, base, base + rng.normal(0, 0.001, 10)
    rows = []
    for metric in METRICS:
        flip = metric in ("hd95", "assd")  # lower is better: the good loss has the smaller distances
        rows += _rows({"good": list(-good if flip else good), "bad": list(-bad if flip else bad),
                       "same": list(-same if flip else same)}, metric)
    summary = compare(rows, ["good", "bad", "same"], ["vessel"])
    good_entry, bad_entry = summary["losses"]["good"], summary["losses"]["bad"]
    for metric in METRICS:
        assert good_entry["significance"][f"vessel/{metric}"] == 2  # beats 'bad' and 'same' (p ~ 0.002)
        assert bad_entry["significance"][f"vessel/{metric}"] == 0
    assert good_entry["rank_score"] == 1.0 and good_entry["significance_score"] == 2 * len(METRICS)
    assert summary["cases"] == 10


def test_no_difference_is_not_significant():
    values = list(np.linspace(0.5, 0.9, 6))
    summary = compare(_rows({"a": values, "b": values}, "dice"), ["a", "b"], ["vessel"])
    assert summary["losses"]["a"]["significance"]["vessel/dice"] == 0
    assert summary["losses"]["a"]["rank_score"] == pytest.approx(summary["losses"]["b"]["rank_score"])


def test_study_cli_writes_outputs_and_reuses_finished_runs(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", cases=4, test_cases=0, shape=(24, 24, 16), seed=1)
    command = [sys.executable, "-m", "versaseg.cli.main", "study", "losses", str(data), "--out", str(tmp_path / "s"),
               "--losses", "ce,dice", "--quick", "--test-split", "0.5", "--device", "cpu"]
    first = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace")
    assert first.returncode == 0, first.stderr[-2000:]
    out = tmp_path / "s"
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["losses"]) == {"ce", "dice"} and summary["cases"] == 2
    assert (out / "summary.md").read_text().startswith("Loss study over 2 test cases")
    assert (out / "plots" / "box_ball_dice.png").stat().st_size > 1000
    rows = (out / "results.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * 2 * len(METRICS)  # losses x cases x classes x metrics
    second = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace")
    assert second.returncode == 0 and second.stderr.count("done before, reused") == 2
    bad = subprocess.run(command[:-7] + ["--losses", "ce,nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "nope" in bad.stderr
