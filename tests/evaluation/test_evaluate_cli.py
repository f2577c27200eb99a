"""``versaseg evaluate`` and ``evaluate_paths``: folder matching, labels, outputs, aggregates and user errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from versaseg.cli.main import app
from versaseg.errors import InputError
from versaseg.evaluation.evaluate import MEAN_FOREGROUND, evaluate_paths

SPACING = (0.7, 1.3, 2.5)
SHAPE = (24, 24, 12)
LABELS = {"background": 0, "liver": 1, "tumour": 2, "ignore": 3}


def save(path: Path, array: np.ndarray, spacing=SPACING) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = (-5.0, 3.0, 1.0)
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


def truth() -> np.ndarray:
    gt = np.zeros(SHAPE, np.uint8)
    gt[4:14, 4:14, 2:7] = 1  # liver: 10 x 10 x 5 = 500 voxels
    gt[16:19, 16:19, 3:6] = 2  # tumour
    gt[:, :, 10:] = 3  # unannotated slices
    return gt


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Case a: perfect prediction. Case b: liver shifted by 2 voxels along I (Dice 0.8), tumour missed, and false
    positives in the ignored slices. Plus a prediction without ground truth."""
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt = truth()
    save(gt_dir / "a.nii.gz", gt)
    save(gt_dir / "b.nii.gz", gt)
    perfect = np.where(gt == 3, 0, gt).astype(np.uint8)
    save(pred_dir / "a.nii.gz", perfect)
    shifted = np.zeros(SHAPE, np.uint8)
    shifted[6:16, 4:14, 2:7] = 1
    shifted[0:20, 0:20, 10:] = 1  # inside the ignore region: must not count
    save(pred_dir / "b.nii.gz", shifted)
    save(pred_dir / "stray.nii.gz", perfect)
    labels = tmp_path / "dataset.json"
    labels.write_text(json.dumps({"channel_names": {"0": "CT"}, "labels": LABELS, "file_ending": ".nii.gz"}))
    return pred_dir, gt_dir, labels


def run(*args: str | Path):
    return CliRunner().invoke(app, ["evaluate", *map(str, args)])


def error_line(result) -> str:
    """The one ``error:`` line on stderr (warnings may precede it); no traceback."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("warning: ")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_two_folders_write_json_and_csv_with_expected_values(folders, tmp_path):
    pred_dir, gt_dir, labels = folders
    out_json, out_csv = tmp_path / "out" / "metrics.json", tmp_path / "out" / "metrics.csv"
    result = run(pred_dir, gt_dir, "--dataset-json", labels, "--json", out_json, "--csv", out_csv)
    assert result.exit_code == 0, result.output
    assert "stray.nii.gz" in result.stderr and "warning" in result.stderr
    assert "liver" in result.stdout and "0.900±0.141" in result.stdout and MEAN_FOREGROUND in result.stdout

    data = json.loads(out_json.read_text())
    assert data["classes"] == {"liver": 1, "tumour": 2} and data["ignore_label"] == 3
    assert data["cases"]["a"]["spacing"] == pytest.approx(SPACING)
    b = data["cases"]["b"]["metrics"]
    assert b["liver"]["dice"] == pytest.approx(0.8)
    assert b["liver"]["precision"] == pytest.approx(0.8)  # the false positives in ignored slices do not count
    assert b["liver"]["rvd"] == 0.0
    assert b["liver"]["hd95"] > 0
    assert b["tumour"]["dice"] == 0.0 and b["tumour"]["sensitivity"] == 0.0 and b["tumour"]["rvd"] == -1.0
    assert b["tumour"]["hd95"] is None and b["tumour"]["precision"] is None
    a = data["cases"]["a"]["metrics"]
    assert a["liver"] == {
        "dice": 1.0,
        "iou": 1.0,
        "sensitivity": 1.0,
        "precision": 1.0,
        "rvd": 0.0,
        "hd95": 0.0,
        "assd": 0.0,
    }

    liver = data["aggregates"]["liver"]["dice"]
    assert liver["mean"] == pytest.approx(0.9) and liver["median"] == pytest.approx(0.9)
    assert liver["std"] == pytest.approx(math.sqrt(0.02)) and (liver["n"], liver["n_nan"]) == (2, 0)
    tumour_hd = data["aggregates"]["tumour"]["hd95"]
    assert (tumour_hd["mean"], tumour_hd["n"], tumour_hd["n_nan"], tumour_hd["std"]) == (0.0, 2, 1, None)
    mean_fg = data["aggregates"][MEAN_FOREGROUND]["dice"]
    assert mean_fg["mean"] == pytest.approx((1.0 + 0.4) / 2)

    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 7
    assert set(rows[0]) == {"case", "class", "label", "metric", "value"}
    by_key = {(r["case"], r["class"], r["metric"]): r for r in rows}
    assert float(by_key["b", "liver", "dice"]["value"]) == pytest.approx(0.8)
    assert by_key["b", "liver", "dice"]["label"] == "1"
    assert math.isnan(float(by_key["b", "tumour", "hd95"]["value"]))
    assert float(by_key["b", "liver", "hd95"]["value"]) == pytest.approx(b["liver"]["hd95"])


def test_existing_output_is_not_overwritten_without_flag(folders, tmp_path):
    pred_dir, gt_dir, labels = folders
    out_json = tmp_path / "metrics.json"
    out_json.write_text("keep me")
    result = run(pred_dir, gt_dir, "--dataset-json", labels, "--json", out_json)
    assert result.exit_code == 2
    assert error_line(result) == f"error: {out_json}: output exists; pass --overwrite to replace it"
    assert out_json.read_text() == "keep me"
    result = run(pred_dir, gt_dir, "--dataset-json", labels, "--json", out_json, "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads(out_json.read_text())["classes"] == {"liver": 1, "tumour": 2}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".metrics")]  # no temporary files left


def test_missing_prediction_names_the_file(folders):
    pred_dir, gt_dir, labels = folders
    (pred_dir / "b.nii.gz").unlink()
    result = run(pred_dir, gt_dir, "--dataset-json", labels)
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith(f"error: {pred_dir / 'b.nii.gz'}: ") and "missing" in line
    assert "Traceback" not in result.output


def test_shape_mismatch_names_the_prediction(folders):
    pred_dir, gt_dir, labels = folders
    save(pred_dir / "b.nii.gz", np.zeros((24, 24, 11), np.uint8))
    result = run(pred_dir, gt_dir, "--dataset-json", labels)
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith(f"error: {pred_dir / 'b.nii.gz'}: ") and "shape" in line


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: (a + 0.5).astype(np.float32), "non-integer"),
        (lambda a: np.where(a == 1, 7, a).astype(np.uint8), "[7]"),
    ],
    ids=["float-values", "unknown-label"],
)
def test_bad_prediction_values_are_user_errors(folders, change, message):
    pred_dir, gt_dir, labels = folders
    save(pred_dir / "a.nii.gz", change(truth()))
    result = run(pred_dir, gt_dir, "--dataset-json", labels)
    assert result.exit_code == 2
    line = error_line(result)
    assert line.startswith(f"error: {pred_dir / 'a.nii.gz'}: ") and message in line


def test_two_files_with_different_geometry(tmp_path):
    gt = save(tmp_path / "gt.nii.gz", truth())
    pred = save(tmp_path / "pred.nii.gz", truth(), spacing=(0.7, 1.3, 2.0))
    result = run(pred, gt)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"error: {pred}: prediction geometry")


def test_file_and_folder_mix_is_an_error(folders):
    pred_dir, gt_dir, _ = folders
    result = run(pred_dir / "a.nii.gz", gt_dir)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"error: {gt_dir}: is a folder")


def test_help_documents_the_conventions():
    result = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for text in ("both empty: Dice=IoU=1", "HD95=ASSD=nan", "--dataset-json", "--json", "--csv", "--overwrite",
                 "ignore"):
        assert text in result.stdout


def test_labels_are_discovered_without_dataset_json(tmp_path):
    """Without --labels every non-zero value is a class; a class absent from a case gets the both-empty values."""
    gt = truth()
    gt[gt == 3] = 0
    only_liver = np.where(gt == 2, 0, gt).astype(np.uint8)
    save(tmp_path / "gt" / "x.nii.gz", only_liver)
    save(tmp_path / "pred" / "x.nii.gz", only_liver)
    save(tmp_path / "gt" / "y.nii.gz", gt)
    save(tmp_path / "pred" / "y.nii.gz", gt)
    result = evaluate_paths(tmp_path / "pred", tmp_path / "gt", progress=False)
    assert result.classes == {"label_1": 1, "label_2": 2}
    assert result.ignore_label is None
    assert result.cases["x"]["label_2"]["dice"] == 1.0 and result.cases["x"]["label_2"]["hd95"] == 0.0
    assert math.isnan(result.cases["x"]["label_2"]["sensitivity"])
    assert result.aggregates["label_2"]["sensitivity"]["n_nan"] == 1
    assert result.aggregates["label_1"]["dice"]["mean"] == 1.0


def test_process_pool_gives_the_same_result(folders):
    pred_dir, gt_dir, labels = folders
    with pytest.warns(UserWarning, match="stray.nii.gz"):
        serial = evaluate_paths(pred_dir, gt_dir, labels, progress=False)
    with pytest.warns(UserWarning, match="stray.nii.gz"):
        pooled = evaluate_paths(pred_dir, gt_dir, labels, workers=2, progress=False)
    assert json.dumps(pooled.to_json()) == json.dumps(serial.to_json())


def test_labels_file_errors(tmp_path, folders):
    pred_dir, gt_dir, _ = folders
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"labels": {"background": 0, "ignore": 1, "liver": 2}}))
    with pytest.raises(InputError, match="ignore"):
        evaluate_paths(pred_dir, gt_dir, bad, progress=False)
    with pytest.raises(InputError, match="not found"):
        evaluate_paths(pred_dir, gt_dir, tmp_path / "missing.json", progress=False)
