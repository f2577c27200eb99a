"""The pieces of benchmarks/reproduce.py that decide verdicts: Holm's correction, the paired test, the plateau rule,
the validation-curve reader and the resumable JSON-lines store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "reproduction"))
import common  # noqa: E402
import stats  # noqa: E402


def test_holm_matches_the_step_down_procedure():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept monotone at 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.2, None, 0.9]) == pytest.approx([0.4, None, 0.9])  # None is not in the family
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1


def test_paired_reports_the_median_difference_and_scipys_p():
    rng = np.random.default_rng(0)
    a = {f"c{i}": float(v) for i, v in enumerate(rng.random(9))}
    b = {k: v + 0.05 + 0.01 * i for i, (k, v) in enumerate(a.items())}
    b["only_b"] = 1.0
    a["nan_case"], b["nan_case"] = float("nan"), 0.5
    test = stats.paired(a, b)
    keys = [f"c{i}" for i in range(9)]
    assert test["n"] == 9
    assert test["median_diff"] == pytest.approx(0.09)
    assert test["p"] == pytest.approx(scipy_stats.wilcoxon([b[k] for k in keys], [a[k] for k in keys]).pvalue)
    assert stats.verdict(test, test["p"]) == "holds"
    assert stats.verdict(stats.paired(b, a), test["p"]) == "reversed"
    assert stats.verdict(test, 0.2) == "not significant"
    assert stats.paired({"x": 1.0}, {"x": 1.0})["p"] is None


def test_plateau_rule():
    rising = list(np.linspace(0.5, 0.9, 40))
    assert not common.plateau(rising)["plateaued"]  # still gaining 0.08 per fifth
    flat = [0.9 + 0.003 * ((-1) ** i) for i in range(40)]
    verdict = common.plateau(flat)
    assert verdict["plateaued"] and verdict["window"] == 8 and abs(verdict["gain"]) < 0.01
    assert common.plateau([0.1, 0.2, 0.3, 0.4, 0.5])["gain"] is None  # shorter than two windows of 3


def test_read_curve_keeps_only_validated_epochs(tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,train_loss,lr,val_dice_mean,val_dice_a,val_seconds\n"
        "1,1.0,0.1,0.5,0.5,1\n2,0.9,0.1,,,\n3,0.8,0.1,0.7,0.7,1\n")
    curve = common.read_curve(tmp_path)
    assert curve == {"epoch": [1, 3], "train_loss": [1.0, 0.8], "val_dice_mean": [0.5, 0.7], "val_dice_a": [0.5, 0.7]}


def test_store_resumes_past_a_line_cut_by_a_kill(tmp_path):
    store = common.Store(tmp_path / "runs.jsonl")
    store.append({"key": "x|1", "value": 1})
    with open(store.path, "a") as stream:
        stream.write('{"key": "x|2", "val')  # a kill in the middle of a write
    assert store.keys() == {"x|1"}
    store.append({"key": "x|3", "value": 3})
    rows = store.rows()
    assert [r["key"] for r in rows] == ["x|1", "x|3"]
    assert rows[1]["commit"] and rows[1]["machine"] and rows[1]["date"]
    assert json.loads(store.path.read_text().splitlines()[-1])["value"] == 3
