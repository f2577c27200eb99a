"""One meaning per option name (docs/cli.md): the axis frame, the shared option table, and the old spellings that
keep working for one release with a one-line deprecation warning."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from versaseg.cli.common import parse_axis
from versaseg.cli.main import app
from versaseg.errors import InputError
from versaseg.io.image import orientation_of, stored_axis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import write_tiny_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SWAPPED = np.array([[0.0, 1.5, 0.0, 0.0], [1.5, 0.0, 0.0, 0.0], [0.0, 0.0, 1.5, 0.0], [0, 0, 0, 1]])  # I->y, J->x


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _stderr_lines(result) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.strip()]


def test_axis_names_and_numbers_are_the_canonical_ras_axes():
    assert [parse_axis(v) for v in ("sagittal", "Coronal", " axial ", "0", "1", "2", 2)] == [0, 1, 2, 0, 1, 2, 2]
    assert parse_axis("auto", allow_auto=True) == "auto"
    with pytest.raises(InputError, match="--axis must be sagittal, coronal, axial, 0, 1 or 2, got 'auto'"):
        parse_axis("auto")
    with pytest.raises(InputError, match="--suggest-axes must be auto, .* got 'z'"):
        parse_axis("z", "--suggest-axes", allow_auto=True)
    # a file whose first two stored axes are swapped: its stored axis 0 runs along y (coronal slices)
    assert [stored_axis(a, orientation_of(SWAPPED)) for a in (0, 1, 2)] == [1, 0, 2]
    flipped = orientation_of(np.diag([-1.0, 1.0, 2.0, 1.0]))
    assert [stored_axis(a, flipped) for a in (0, 1, 2)] == [0, 1, 2]  # a flip keeps the axis


def _table_rows() -> dict[str, set[str]]:
    """docs/cli.md's option table: option -> the commands listed for it."""
    rows = {}
    for line in (ROOT / "docs" / "cli.md").read_text().splitlines():
        match = re.match(r"\| `(--[a-z0-9-]+)`[^|]* \| .+ \| (.+) \|$", line)
        if match:
            rows[match[1]] = {c.strip().strip("`") for c in match[2].split(",")}
    return rows


def _visible_options() -> dict[str, set[str]]:
    options: dict[str, set[str]] = {}

    def walk(command, path):
        if getattr(command, "commands", None):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
            return
        for param in command.params:
            if param.param_type_name == "option" and not param.hidden and param.name != "help":
                for opt in param.opts:
                    if opt.startswith("--"):
                        options.setdefault(opt, set()).add(" ".join(path))

    walk(typer.main.get_command(app), [])
    return options


def test_docs_cli_table_lists_every_option_with_exactly_its_commands():
    table, actual = _table_rows(), _visible_options()
    assert len(actual) > 60
    missing = sorted(set(actual) - set(table))
    assert not missing, f"options missing from docs/cli.md: {missing}"
    wrong = {opt: (sorted(table[opt]), sorted(commands)) for opt, commands in actual.items()
             if table[opt] != commands}
    assert not wrong, f"docs/cli.md lists other commands for: {wrong}"
    assert not set(table) - set(actual), "docs/cli.md lists options no command has"


def test_train_takes_anatomical_axis_names(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", cases=2, test_cases=0, shape=(16, 16, 8))
    result = _cli("train", data, "--out", tmp_path / "run", "--axis", "coronal", "--epochs", "1", "--iterations", "1",
                  "--batch-size", "2", "--network-kwargs", '{"depth": 2, "base_width": 4}', "--val-fraction", "0",
                  "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "run" / "config.json").read_text())["axis"] == 1
    bad = _cli("train", data, "--out", tmp_path / "run2", "--axis", "transverse")
    assert bad.exit_code == 2 and _stderr_lines(bad) == ["error: --axis must be sagittal, coronal, axial, 0, 1 or 2, "
                                                          "got 'transverse'"]
    assert not (tmp_path / "run2").exists()


def test_complete_reads_the_axis_in_the_canonical_frame_of_a_swapped_file(tmp_path):
    grid = np.indices((28, 28, 20)).astype(np.float32)
    truth = (((grid - np.array([14, 13, 10])[:, None, None, None]) ** 2).sum(0) < 64).astype(np.uint8)
    image = (100 * truth + np.random.default_rng(0).normal(0, 5, truth.shape)).astype(np.float32)
    sparse = np.full(truth.shape, 9, np.uint8)
    sparse[4::4] = truth[4::4]  # annotated along stored axis 0 = coronal in this file's orientation
    for name, array in (("img", image), ("sparse", sparse)):
        nib.save(nib.Nifti1Image(array, SWAPPED), tmp_path / f"{name}.nii.gz")
    out, report = tmp_path / "dense.nii.gz", tmp_path / "report.json"
    result = _cli("complete", tmp_path / "img.nii.gz", "--label", tmp_path / "sparse.nii.gz", "--ignore-label", 9,
                  "--axis", "coronal", "--no-check", "--suggest", 1, "--suggest-axes", "coronal", "--out", out,
                  "--report", report, "--device", "cpu")
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["annotation_axis"] == 0 and all(s["axis"] == 0 for s in data["suggested"])
    assert re.search(r"annotate next: coronal slice \d+ \(stored axis 0\)", result.stdout)
    dense = np.asarray(nib.load(out).dataobj)
    between = [i for i in range(6, 22) if i % 4]
    overlap = (dense[between] == 1) & (truth[between] == 1)
    assert 2 * overlap.sum() / ((dense[between] == 1).sum() + (truth[between] == 1).sum()) > 0.8


def test_old_spellings_work_with_one_warning_and_clash_with_the_new_ones(tmp_path):
    out = tmp_path / "brain"
    result = _cli("data", "synth-brain", out, "--tiny", "--cases", "1", "--labels", "basal-ganglia", "--workers", 1)
    assert result.exit_code == 0, result.output
    warnings = [ln for ln in _stderr_lines(result) if ln.startswith("warning: ")]
    later = "is deprecated and will be removed in the next release; use"
    assert warnings == [f"warning: a positional OUT {later} --out OUT", f"warning: --labels {later} --label-set"]
    assert json.loads((out / "dataset.json").read_text())["labels"]["putamen"] == 2
    label = out / "labelsTr" / "synth_000.nii.gz"
    sparse = tmp_path / "sparse.nii.gz"
    degraded = _cli("data", "degrade", label, sparse, "--every", 4)
    assert degraded.exit_code == 0 and sparse.exists(), degraded.output
    assert "use --out OUT" in degraded.stderr
    both = _cli("data", "degrade", label, sparse, "--out", sparse, "--every", 4, "--overwrite")
    assert both.exit_code == 2 and "give the output once" in both.stderr
    evaluated = _cli("evaluate", label, label, "--labels", out / "dataset.json")
    assert evaluated.exit_code == 0 and "use --dataset-json" in evaluated.stderr
    clash = _cli("complete", tmp_path / "img.nii.gz", "--label", sparse, "--labels", sparse, "--out", tmp_path / "x")
    assert clash.exit_code == 2 and _stderr_lines(clash) == ["error: --labels is the old name of --label; give only "
                                                             "--label"]
    old = _cli("complete", tmp_path / "missing.nii.gz", "--labels", sparse, "--out", tmp_path / "x.nii.gz")
    lines = _stderr_lines(old)
    assert old.exit_code == 2 and lines[0].endswith("use --label") and "missing.nii.gz" in lines[1]
    patch = _cli("synth", "train", tmp_path / "nowhere", "--source", "T1", "--target", "T2", "--out", tmp_path / "p",
                 "--patch", "32,x")
    assert patch.exit_code == 2 and _stderr_lines(patch) == [
        "warning: --patch is deprecated and will be removed in the next release; use --patch-size",
        "error: --patch-size must be comma-separated integers, got '32,x'"]
    assert not (tmp_path / "x.nii.gz").exists() and not (tmp_path / "p").exists()


def test_study_overwrite_refuses_a_folder_that_is_not_a_study(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", cases=3, test_cases=0, shape=(16, 16, 8))
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = _cli("study", "losses", data, "--out", folder, "--losses", "ce,dice", "--overwrite", "--device", "cpu")
    assert result.exit_code == 2 and "not a study folder" in result.stderr
    assert (folder / "notes.txt").read_text() == "keep me"
