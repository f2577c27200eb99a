"""``versaseg.data.degrade`` and ``versaseg data degrade``: sparse slices, corruptions, conventions, dataset mode."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from versaseg.data.degrade import (
    CORRUPTIONS,
    annotated_slices,
    corrupt_slice,
    degrade_label,
    num_corrupted,
    shift,
)
from versaseg.io.dataset import IGNORE_NAME, load_dataset
from versaseg.io.image import read_volume

SHAPE = (30, 34, 26)


def _app() -> typer.Typer:
    """``versaseg data`` if every command of it exists yet, else a stand-in that holds only ``degrade``."""
    try:
        from versaseg.cli.data_cmd import data_app

        return data_app
    except ImportError:
        from versaseg.cli.data_degrade_cmd import degrade

        app = typer.Typer()

        @app.callback()
        def _group() -> None:
            """Stand-in for ``versaseg data``."""

        app.command("degrade")(degrade)
        return app


def run(label: str | Path, out: str | Path, *args: str | Path):
    return CliRunner().invoke(_app(), ["degrade", str(label), "--out", *map(str, (out, *args))])


def error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def blobs(shape=SHAPE) -> np.ndarray:
    """Ellipsoid (label 1) with a small ball (label 2) beside it, both through every slice along every axis' middle."""
    grid = np.indices(shape).astype(float)
    centre = np.array(shape) / 2.0
    radii = np.array(shape) * 0.42
    ellipsoid = (((grid - centre[:, None, None, None]) / radii[:, None, None, None]) ** 2).sum(0) <= 1.0
    label = ellipsoid.astype(np.uint8)
    small = ((grid - np.array([6.0, 8.0, 13.0])[:, None, None, None]) ** 2).sum(0) <= 3.0**2
    label[small] = 2
    return label


def full_slab(shape=SHAPE) -> np.ndarray:
    """A label with foreground in every slice along every axis (a column of 1 plus a block of 2)."""
    label = np.zeros(shape, np.uint8)
    label[4:-4, 4:-4, :] = 1
    label[:, 10:16, 8:14] = 2
    label[10:14, :, :] = np.where(label[10:14, :, :] == 0, 1, label[10:14, :, :])
    return label


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def disk_slice(shape=(48, 48)) -> np.ndarray:
    """2D slice: a disk of radius 12 (label 1) and a disk of radius 4 (label 2)."""
    yy, xx = np.indices(shape)
    out = np.zeros(shape, np.int16)
    out[(yy - 22) ** 2 + (xx - 20) ** 2 <= 12**2] = 1
    out[(yy - 10) ** 2 + (xx - 40) ** 2 <= 4**2] = 2
    return out


def save(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    if affine is None:
        affine = np.array([[0.0, -1.2, 0.0, 30.0], [0.9, 0.0, 0.0, -12.0], [0.0, 0.0, 2.5, 4.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


# --------------------------------------------------------------------------------------------------- slices and volumes


def test_annotated_slices_and_bad_parameters():
    assert annotated_slices((10, 11, 12), 2, 5, 0) == [0, 5, 10]
    assert annotated_slices((10, 11, 12), 0, 3, 2) == [2, 5, 8]
    assert annotated_slices((10, 11, 12), 1, 1, 0) == list(range(11))
    assert annotated_slices((10, 11, 12), 1, 50, 4) == [4]
    for every, axis, offset in ((0, 2, 0), (2, 3, 0), (2, -1, 0), (2, 2, 12), (2, 2, -1)):
        with pytest.raises(ValueError):
            annotated_slices((10, 11, 12), axis, every, offset)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_only_every_kth_slice_is_annotated_and_clean_slices_are_exact(axis):
    label = blobs()
    degraded, report = degrade_label(label, every=4, axis=axis, offset=1, ignore_label=9)
    expected = list(range(1, SHAPE[axis], 4))
    assert report.annotated == expected and report.corrupted == []
    for index in range(SHAPE[axis]):
        got, original = np.take(degraded, index, axis=axis), np.take(label, index, axis=axis)
        if index in expected:
            assert np.array_equal(got, original)
        else:
            assert np.all(got == 9)
    assert degraded.dtype == label.dtype


@pytest.mark.parametrize("fraction", [0.0, 0.2, 0.5, 0.75, 1.0])
def test_noisy_fraction_corrupts_the_requested_number_of_slices_and_nothing_else(fraction):
    label = full_slab()
    degraded, report = degrade_label(label, every=2, axis=2, noisy_fraction=fraction, seed=3, ignore_label=5)
    annotated = annotated_slices(SHAPE, 2, 2, 0)
    assert len(report.corrupted) == num_corrupted(len(annotated), fraction) == int(fraction * len(annotated) + 0.5)
    for entry in report.slices:
        got, original = degraded[:, :, entry.index], label[:, :, entry.index]
        changed = int(np.count_nonzero(got != original))
        assert changed == entry.voxels_changed
        assert (changed > 0) == entry.corrupted == (entry.index in report.corrupted)
        if entry.corrupted:
            assert entry.kind in CORRUPTIONS and entry.params
            assert set(np.unique(got)) <= {0, 1, 2}
    unannotated = [k for k in range(SHAPE[2]) if k not in annotated]
    assert np.all(degraded[:, :, unannotated] == 5)


def test_corrupted_slices_prefer_foreground():
    label = np.zeros(SHAPE, np.uint8)
    label[5:20, 5:20, 10:14] = 1
    _, report = degrade_label(label, every=1, noisy_fraction=4 / SHAPE[2], seed=0)
    assert report.corrupted == [10, 11, 12, 13]


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_each_corruption_changes_the_slice_and_stays_plausible(kind):
    original = disk_slice()
    yy, xx = np.indices(original.shape)
    image = np.where(original == 1, 100.0, np.where(original == 2, 30.0, 10.0))
    image[(yy - 22) ** 2 + (xx - 34) ** 2 <= 5**2] = 98.0  # a bright neighbour behind a weak edge
    for seed in range(8):
        rng = np.random.default_rng(seed)
        new, params = corrupt_slice(kind, original, image if seed % 2 else None, rng)
        changed = np.count_nonzero(new != original)
        assert changed > 0, (kind, seed)
        assert 0.3 < dice(new, original) < 0.999, (kind, seed, dice(new, original))
        assert new.shape == original.shape and new.dtype == original.dtype
        assert set(np.unique(new)) <= {0, 1, 2}
        assert params


def test_shift_copies_a_neighbour_and_leak_follows_a_weak_edge():
    original = disk_slice()
    neighbour = np.roll(original, 2, axis=0)
    variants = set()
    for seed in range(12):
        new, params = shift(original, None, np.random.default_rng(seed), neighbour=neighbour)
        variants.add(params["variant"])
        if params["variant"] == "neighbour":
            assert np.array_equal(new, neighbour)
    assert variants == {"neighbour", "translate"}
    image = np.full(original.shape, 10.0)
    image[original == 1] = 100.0
    image[:, 30:] = 100.0  # everything right of the disk looks like it: region growing leaks there
    guided = 0
    for seed in range(10):
        new, params = corrupt_slice("leak", original, image, np.random.default_rng(seed))
        gained = (new == params["class"]) & (original != params["class"])
        if params["guided"]:
            guided += 1
            assert np.all(image[gained] == 100.0)
    assert guided > 0


def test_missed_structure_never_drops_the_only_structure():
    single = np.zeros((20, 20), np.uint8)
    single[5:12, 5:12] = 1
    new, params = corrupt_slice("missed", single, None, np.random.default_rng(0))
    assert np.array_equal(new, single) and params == {}
    new, params = corrupt_slice("missed", disk_slice(), None, np.random.default_rng(0))
    assert params["class"] == 2 and not np.any(new == 2)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_every_kind_through_degrade_label(kind):
    label = blobs()
    degraded, report = degrade_label(label, every=3, noisy_fraction=1.0, seed=1, kinds=[kind])
    assert report.corrupted and all(s.kind == kind and s.voxels_changed > 0 for s in report.slices if s.corrupted)
    for entry in report.slices:
        assert np.count_nonzero(degraded[:, :, entry.index] != label[:, :, entry.index]) == entry.voxels_changed


def test_determinism_and_seed_dependence():
    label = blobs()
    a, report_a = degrade_label(label, every=2, noisy_fraction=0.6, seed=11, ignore_label=3)
    b, report_b = degrade_label(label, every=2, noisy_fraction=0.6, seed=11, ignore_label=3)
    c, _ = degrade_label(label, every=2, noisy_fraction=0.6, seed=12, ignore_label=3)
    assert np.array_equal(a, b) and report_a.to_dict() == report_b.to_dict()
    assert not np.array_equal(a, c)
    json.dumps(report_a.to_dict())  # JSON-ready
    fresh, report = degrade_label(label, every=2, noisy_fraction=0.6, seed=None)
    again, _ = degrade_label(label, every=2, noisy_fraction=0.6, seed=report.seed)
    assert np.array_equal(fresh, again)


def test_conventions_dtype_and_label_errors():
    label = blobs()
    empty, report = degrade_label(label, every=5, axis=1, offset=2)
    assert report.convention == "empty" and report.ignore_label is None
    keep = annotated_slices(SHAPE, 1, 5, 2)
    assert np.all(np.delete(empty, keep, axis=1) == 0)
    assert np.array_equal(np.take(empty, keep, axis=1), np.take(label, keep, axis=1))
    wide, _ = degrade_label(label, every=5, ignore_label=300)
    assert wide.dtype == np.uint16 and wide.max() == 300
    with pytest.raises(ValueError, match="collides"):
        degrade_label(label, every=2, ignore_label=2)
    with pytest.raises(ValueError, match="integers"):
        degrade_label(label.astype(np.float32), every=2)
    with pytest.raises(ValueError, match="noisy_fraction"):
        degrade_label(label, every=2, noisy_fraction=1.5)
    with pytest.raises(ValueError, match="unknown"):
        degrade_label(label, every=2, kinds=["smudge"])


# ------------------------------------------------------------------------------------------------------------------ CLI


def test_cli_file_keeps_geometry_and_writes_report(tmp_path):
    label = blobs()
    source = save(tmp_path / "label.nii.gz", label)
    out, report = tmp_path / "sparse.nii.gz", tmp_path / "report.json"
    result = run(
        source,
        out,
        "--every",
        "3",
        "--axis",
        "sagittal",  # canonical RAS x: the file's stored axis 1 (its affine swaps the first two axes)
        "--offset",
        "1",
        "--noisy-fraction",
        "0.5",
        "--seed",
        "4",
        "--report",
        report,
    )
    assert result.exit_code == 0, result.output
    written, original = read_volume(out), read_volume(source)
    assert np.allclose(written.affine, original.affine) and written.shape == original.shape
    data = json.loads(report.read_text())
    assert data["ignore_label"] == 3 and data["convention"] == "ignore" and data["axis"] == 1
    assert data["canonical_axis"] == "sagittal"
    assert data["annotated"] == list(range(1, SHAPE[1], 3))
    assert data["num_corrupted"] == num_corrupted(len(data["annotated"]), 0.5)
    expected, _ = degrade_label(label, every=3, axis=1, offset=1, noisy_fraction=0.5, seed=4, ignore_label=3)
    assert np.array_equal(written.array, expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left

    again = run(source, out, "--every", "3")
    assert again.exit_code == 2 and "--overwrite" in error_line(again)
    assert run(source, out, "--every", "3", "--empty-slices", "--overwrite").exit_code == 0
    assert set(np.unique(read_volume(out).array)) == {0, 1, 2}
    image = save(tmp_path / "image.nii.gz", (label * 50.0).astype(np.float32))
    guided = run(source, tmp_path / "guided.nii.gz", "--every", "2", "--noisy-fraction", "1", "--image", image)
    assert guided.exit_code == 0, guided.output

    nrrd = tmp_path / "sparse.nrrd"
    assert run(source, nrrd, "--every", "2", "--ignore-label", "7").exit_code == 0
    assert np.allclose(read_volume(nrrd).affine, original.affine, atol=1e-5)


def test_cli_float_labels_with_integral_values_are_accepted(tmp_path):
    source = save(tmp_path / "label.nii.gz", blobs().astype(np.float32))
    result = run(source, tmp_path / "out.nii.gz", "--every", "2")
    assert result.exit_code == 0, result.output
    assert read_volume(tmp_path / "out.nii.gz").array.max() == 3


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--every", "0"], "--every"),
        (["--every", "2", "--axis", "3"], "--axis"),
        (["--every", "2", "--offset", "99"], "--offset"),
        (["--every", "2", "--noisy-fraction", "1.5"], "--noisy-fraction"),
        (["--every", "2", "--ignore-label", "2"], "--ignore-label"),
        (["--every", "2", "--ignore-label", "9", "--empty-slices"], "mutually exclusive"),
        (["--every", "2", "--seed", "-1"], "--seed"),
    ],
)
def test_cli_bad_options_exit_2(tmp_path, args, needle):
    source = save(tmp_path / "label.nii.gz", blobs())
    out = tmp_path / "out.nii.gz"
    result = run(source, out, *args)
    assert result.exit_code == 2
    assert needle in error_line(result)
    assert not out.exists()


def test_cli_bad_inputs_exit_2(tmp_path):
    out = tmp_path / "out.nii.gz"
    missing = run(tmp_path / "nope.nii.gz", out, "--every", "2")
    assert missing.exit_code == 2 and "nope.nii.gz" in error_line(missing)
    fractional = blobs().astype(np.float32)
    fractional[3, 3, 3] = 0.5
    source = save(tmp_path / "frac.nii.gz", fractional)
    result = run(source, out, "--every", "2")
    assert result.exit_code == 2 and "non-integer" in error_line(result) and "frac.nii.gz" in error_line(result)
    result = run(save(tmp_path / "ok.nii.gz", blobs()), tmp_path / "out.txt", "--every", "2")
    assert result.exit_code == 2 and "ending" in error_line(result)
    assert run(source, out).exit_code == 2  # --every is required
    image = save(tmp_path / "image.nii.gz", np.zeros((5, 5, 5), np.float32))
    result = run(tmp_path / "ok.nii.gz", out, "--every", "2", "--image", image)
    assert result.exit_code == 2 and "image.nii.gz" in error_line(result)
    assert not out.exists()


# ------------------------------------------------------------------------------------------------------------- datasets


def test_cli_dataset_mode_builds_a_loadable_sparse_dataset(tiny_dataset, tmp_path):
    out, report = tmp_path / "Dataset002_Sparse", tmp_path / "report.json"
    result = run(
        tiny_dataset, out, "--dataset", "--every", "3", "--noisy-fraction", "0.4", "--seed", "2", "--report", report
    )
    assert result.exit_code == 0, result.output
    spec = load_dataset(out)
    assert spec.ignore_label == 3 and spec.labels[IGNORE_NAME] == 3
    assert spec.extra["versaseg_degrade"]["every"] == 3
    cases = spec.training_cases()
    originals = {c.case_id: c for c in load_dataset(tiny_dataset).training_cases()}
    assert {c.case_id for c in cases} == set(originals)
    cases_report = json.loads(report.read_text())["cases"]
    for case in cases:
        source = originals[case.case_id]
        assert case.label.name == source.label.name
        written, original = read_volume(case.label), read_volume(source.label)
        assert np.allclose(written.affine, original.affine) and written.shape == original.shape
        annotated = cases_report[case.case_id]["annotated"]
        assert annotated == list(range(0, original.shape[2], 3))
        assert np.all(np.delete(written.array, annotated, axis=2) == 3)
        for entry in cases_report[case.case_id]["slices"]:
            same = np.array_equal(written.array[:, :, entry["index"]], original.array[:, :, entry["index"]])
            assert same != entry["corrupted"]
        for image, source_image in zip(case.images, source.images, strict=True):
            assert image.name == source_image.name and image.read_bytes() == source_image.read_bytes()
            assert os.path.samefile(image, source_image) or image.stat().st_nlink == 1
    assert sorted(p.name for p in (out / "imagesTs").iterdir()) == sorted(
        p.name for p in (tiny_dataset / "imagesTs").iterdir()
    )
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]

    again = run(tiny_dataset, out, "--dataset", "--every", "3")
    assert again.exit_code == 2 and "--overwrite" in error_line(again)
    replaced = run(tiny_dataset, out, "--dataset", "--every", "2", "--empty-slices", "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    spec = load_dataset(out)
    assert spec.ignore_label is None and spec.extra["versaseg_degrade"]["convention"] == "empty"
    assert len(spec.training_cases()) == len(cases)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_dataset_mode_errors(tiny_dataset, tmp_path):
    result = run(tiny_dataset, tmp_path / "x", "--dataset", "--every", "2", "--ignore-label", "2")
    assert result.exit_code == 2 and "--ignore-label" in error_line(result)
    result = run(tiny_dataset, tiny_dataset / "inside", "--dataset", "--every", "2")
    assert result.exit_code == 2 and "input dataset" in error_line(result)
    result = run(tiny_dataset, tmp_path / "x.nii.gz", "--every", "2")
    assert result.exit_code == 2 and "--dataset" in error_line(result)
    sparse = tmp_path / "sparse"
    assert run(tiny_dataset, sparse, "--dataset", "--every", "2").exit_code == 0
    result = run(sparse, tmp_path / "twice", "--dataset", "--every", "2")
    assert result.exit_code == 2 and "ignore" in error_line(result)
    assert not (tmp_path / "x").exists() and not (tmp_path / "twice").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
