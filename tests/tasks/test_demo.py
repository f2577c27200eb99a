"""The demo pipeline end to end at a toy size: data, run with snapshots, predictions, evaluation, explain, report."""

from __future__ import annotations

import json

import pytest

from versaseg.errors import InputError
from versaseg.tasks.demo import run_demo


def test_demo_writes_report_with_metrics_and_explanation(tmp_path):
    out = tmp_path / "demo"
    report = run_demo(out, epochs=2, iterations=2, cases=2, test_cases=1, device="cpu", spacing=4.0)
    html = report.read_bytes().decode("utf-8")  # UTF-8 whatever the locale (the tables hold '±')
    assert "±" in html
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert set(evaluation["cases"]) == {p.name.removesuffix(".nii.gz") for p in (out / "predictions").iterdir()}
    assert "What the network computes" in html
    for figure in ("explain/prediction.png", "explain/cam_vessels.png", "explain/dice_timeline.png"):
        assert (out / figure).stat().st_size > 0 and figure in html
    assert sorted(p.name for p in (out / "run" / "checkpoints").glob("*.pt")) == ["epoch_001.pt", "epoch_002.pt"]
    explained = json.loads((out / "explain" / "explain.json").read_text())
    assert explained.get("label"), "the demo explains the test case against its ground truth"
    assert "--label None" not in html
    assert "Two-stage cascade" in html
    rois = json.loads((out / "cascade" / "predictions" / "cascade_rois.json").read_text())["cases"]
    assert len(rois) == 1 and 0 < rois[0]["roi_fraction"] <= 1
    figure = f"cascade/predictions/figures/{rois[0]['case']}.png"
    assert (out / figure).stat().st_size > 0 and figure in html
    assert set(json.loads((out / "cascade" / "evaluation.json").read_text())["cases"]) == {rois[0]["case"]}
    with pytest.raises(InputError, match="--overwrite"):
        run_demo(out, epochs=1, iterations=1, cases=2, test_cases=1, device="cpu", spacing=4.0)
