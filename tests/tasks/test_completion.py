"""Label completion: annotation detection in both conventions, completion quality on a tiny volume, CLI errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from versaseg.data.case import load_case
from versaseg.errors import InputError
from versaseg.io.dataset import CaseFiles
from versaseg.tasks.completion import CompletionSettings, PriorResidualNetwork, annotation_mask, complete_case

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import write_tiny_dataset  # noqa: E402


def test_ignore_convention_detects_axis_of_whole_slices():
    label = np.full((10, 12, 14), 9, np.int16)
    label[:, 3, :] = 0
    label[2:5, 3, 4:8] = 1
    label[:, 9, :] = 0
    annotated, axis = annotation_mask(label, 9, "auto")
    assert axis == 1 and annotated[:, [3, 9], :].all() and annotated.sum() == 2 * 10 * 14


def test_slicer_convention_detects_sparse_axis():
    label = np.zeros((20, 20, 24), np.int16)
    for z in range(2, 22, 6):
        label[5:15, 6:14, z] = 1
    annotated, axis = annotation_mask(label, None, "auto")
    assert axis == 2
    assert set(np.flatnonzero(annotated.any(axis=(0, 1)))) == {2, 8, 14, 20}


def test_nothing_to_complete_is_an_input_error():
    with pytest.raises(InputError, match="nothing to complete"):
        annotation_mask(np.ones((5, 5, 5), np.int16), None, "auto")
    with pytest.raises(InputError, match="nothing is annotated"):
        annotation_mask(np.zeros((5, 5, 5), np.int16), None, "auto")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "versaseg.cli.main", "complete", *map(str, args)],
                          capture_output=True, text=True, encoding="utf-8", errors="replace")


def test_complete_reconstructs_unannotated_slices(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", cases=1, test_cases=0, shape=(32, 32, 24), seed=3)
    full = nib.load(data / "labelsTr" / "tiny_000.nii.gz")
    dense = np.asarray(full.dataobj)
    sparse = np.full(dense.shape, 9, np.uint8)
    sparse[:, :, 2::4] = dense[:, :, 2::4]
    nib.save(nib.Nifti1Image(sparse, full.affine), tmp_path / "sparse.nii.gz")
    images = [data / "imagesTr" / f"tiny_000_{c:04d}.nii.gz" for c in range(2)]
    result = _cli(*images, "--label", tmp_path / "sparse.nii.gz", "--ignore-label", 9, "--out",
                  tmp_path / "dense.nii.gz", "--model-iterations", 40, "--device", "cpu",
                  "--report", tmp_path / "report.json")
    assert result.returncode == 0, result.stderr
    out = nib.load(tmp_path / "dense.nii.gz")
    np.testing.assert_allclose(out.affine, full.affine)
    completed = np.asarray(out.dataobj)
    unannotated = np.ones(dense.shape[2], bool)
    unannotated[2::4] = False
    for value in (1, 2):
        a, b = completed[:, :, unannotated] == value, dense[:, :, unannotated] == value
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.8
    # clean annotated slices are kept (cleansing only changes confidently contradicted voxels)
    assert np.mean(completed[:, :, 2::4] == sparse[:, :, 2::4]) > 0.99
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["annotation_axis"] == 2 and report["annotated_slices"] == list(range(2, 24, 4))
    # annotated background-only slices beyond the structures are known background, not judged (the Slicer
    # convention cannot tell them from unannotated slices, so both conventions train and judge the same slices)
    holding = [z for z in range(2, 24, 4) if dense[:, :, z].any()]
    assert [s["slice"] for s in report["slices"]] == holding
    assert all(not completed[:, :, z].any() for z in range(2, 24, 4) if z not in holding)
    # the output exists now: a second run refuses to overwrite it
    again = _cli(*images, "--label", tmp_path / "sparse.nii.gz", "--ignore-label", 9, "--out",
                 tmp_path / "dense.nii.gz")
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_geometry_mismatch_is_reported(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), tmp_path / "img.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 9), np.uint8), np.eye(4)), tmp_path / "lab.nii.gz")
    result = _cli(tmp_path / "img.nii.gz", "--label", tmp_path / "lab.nii.gz", "--out", tmp_path / "o.nii.gz")
    assert result.returncode == 2 and "lab.nii.gz" in result.stderr and "shape" in result.stderr
    assert not (tmp_path / "o.nii.gz").exists()


def _ball_case(tmp_path: Path, sparse: np.ndarray, image: np.ndarray):
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    nib.save(nib.Nifti1Image(image.astype(np.float32), affine), tmp_path / "img.nii.gz")
    nib.save(nib.Nifti1Image(sparse.astype(np.uint8), affine), tmp_path / "sparse.nii.gz")
    return load_case(CaseFiles("ball", [tmp_path / "img.nii.gz"], tmp_path / "sparse.nii.gz"))


def _ball(shape=(40, 40, 36)) -> tuple[np.ndarray, np.ndarray]:
    """An ellipsoid (class 1) with a smaller core (class 2), bright/brighter in a noisy image."""
    x, y, z = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    r = np.sqrt(((x - 20) / 13) ** 2 + ((y - 19) / 11) ** 2 + ((z - 17) / 13) ** 2)
    truth = np.where(r <= 1, 1, 0) + np.where(r <= 0.45, 1, 0)
    image = truth * 1.0 + np.random.default_rng(0).normal(0, 0.15, shape)
    return truth.astype(np.int16), image


def _dice(a, b):
    return 2 * np.sum(a & b) / (np.sum(a) + np.sum(b))


def test_completion_extrapolates_and_flags_a_wrong_slice(tmp_path):
    truth, image = _ball()
    annotated = list(range(8, 28, 2))  # the ellipsoid spans z = 4..30: it continues past both end slices
    sparse = np.full(truth.shape, 9, np.int16)
    sparse[:, :, annotated] = truth[:, :, annotated]
    wrong = annotated[3]
    sparse[:, :, wrong] = 0
    sparse[2:12, 2:12, wrong] = 1  # drawn in the wrong place: the ellipsoid is missing, a square is labelled
    case = _ball_case(tmp_path, sparse, image)
    settings = CompletionSettings(cleanse=True, seed=0)
    result = complete_case(case, 9, "auto", settings, progress=lambda m: None)
    labels = result.labels
    assert result.report["annotation_axis"] == 2
    assert [s["slice"] for s in result.report["slices_judged_wrong"]] == [wrong]
    assert _dice(labels[:, :, wrong] == 1, truth[:, :, wrong] == 1) > 0.8  # corrected from ~0
    between = [z for z in range(8, 27) if z not in annotated]
    for value in (1, 2):
        assert _dice(labels[:, :, between] == value, truth[:, :, between] == value) > 0.8
    beyond = [5, 6, 7, 28, 29]
    assert _dice(labels[:, :, beyond] == 1, truth[:, :, beyond] == 1) > 0.7  # extrapolated from the image
    clean = [z for z in annotated if z != wrong]
    np.testing.assert_array_equal(labels[:, :, clean], truth[:, :, clean])  # clean slices are kept


def test_prior_residual_network_starts_from_the_prior():
    class Zero(torch.nn.Module):
        required_divisor = 4

        def forward(self, x):
            return torch.zeros(x.shape[0], 3, *x.shape[2:])

    prior = torch.zeros(1, 2, 8, 8) - 1
    prior[0, 0, :4] = 1  # class 1 in the top half
    prior[0, 1, 6:, 6:] = 1  # class 2 in a corner
    x = torch.cat([torch.randn(1, 1, 8, 8), prior], dim=1)
    wrapped = PriorResidualNetwork(Zero(), num_classes=3)
    labels = wrapped(x).argmax(1)[0]
    assert wrapped.required_divisor == 4
    assert (labels[:4] == 1).all() and (labels[6:, 6:] == 2).all() and (labels[4:6] == 0).all()


def test_check_only_reports_the_wrong_slice_and_changes_nothing(tmp_path):
    truth, image = _ball()
    annotated = list(range(8, 28, 2))
    sparse = np.full(truth.shape, 9, np.int16)
    sparse[:, :, annotated] = truth[:, :, annotated]
    wrong = annotated[4]
    sparse[:, :, wrong] = 0  # the whole ellipsoid is missing on this slice
    case = _ball_case(tmp_path, sparse, image)
    result = complete_case(case, 9, "auto", CompletionSettings(seed=1), progress=lambda m: None)
    report = result.report
    assert [s["slice"] for s in report["slices_judged_wrong"]] == [wrong]
    assert report["checked"] and not report["cleansed"] and report["voxels_corrected"] == 0
    np.testing.assert_array_equal(result.labels[:, :, annotated], sparse[:, :, annotated])  # annotation kept
    assert set(report["time_split_s"]) == {"features", "priors", "training", "check", "prediction"}
    assert all(v >= 0 for v in report["time_split_s"].values())
    # the ellipsoid spans z = 4..30 but is annotated on 8..26: the part on z < 8 and z > 26 is extrapolated
    labels = result.labels
    inside = (labels[:, :, 8:27] >= 1).sum()
    outside = (labels >= 1).sum() - inside
    core = report["extrapolated_fraction"]["1"]
    assert 0 < core < 0.5 and abs(core - float(np.sum(labels[:, :, [*range(8), *range(27, 36)]] == 1))
                                  / max(1, np.sum(labels == 1))) < 1e-3
    assert outside > 0


def test_known_background_slices_stop_the_extrapolation(tmp_path):
    """Ignore convention: annotated slices holding only background bound the structure; in the Slicer convention
    the same slices are indistinguishable from unannotated ones and the shape is extrapolated past them."""
    truth, image = _ball()
    annotated = list(range(8, 28, 3))  # 8 .. 26
    sparse = np.full(truth.shape, 9, np.int16)
    sparse[:, :, annotated] = truth[:, :, annotated]
    sparse[:, :, 29] = 0  # the annotator marked slice 29 as background (wrongly: the ellipsoid reaches z = 30)
    ignore_case = _ball_case(tmp_path, sparse, image)
    with_ignore = complete_case(ignore_case, 9, "auto", CompletionSettings(seed=0), progress=lambda m: None)
    assert (with_ignore.labels[:, :, 29:] == 0).all()  # the known background is kept, nothing grows past it
    (tmp_path / "slicer").mkdir()
    slicer_case = _ball_case(tmp_path / "slicer", np.where(sparse == 9, 0, sparse), image)
    slicer = complete_case(slicer_case, None, "auto", CompletionSettings(seed=0), progress=lambda m: None)
    assert (slicer.labels[:, :, 29] > 0).sum() > 0


def test_cnn_model_still_completes(tmp_path):
    truth, image = _ball()
    annotated = list(range(8, 28, 3))
    sparse = np.full(truth.shape, 9, np.int16)
    sparse[:, :, annotated] = truth[:, :, annotated]
    case = _ball_case(tmp_path, sparse, image)
    settings = CompletionSettings(model="cnn", iterations=30, check=False, seed=0)
    result = complete_case(case, 9, "auto", settings, progress=lambda m: None)
    between = [z for z in range(8, 27) if z not in annotated]
    assert _dice(result.labels[:, :, between] == 1, truth[:, :, between] == 1) > 0.8
    assert "check" not in result.report["time_split_s"] and not result.report["checked"]


def test_unknown_model_is_an_input_error(tmp_path):
    truth, image = _ball()
    sparse = np.full(truth.shape, 9, np.int16)
    sparse[:, :, 8:28:3] = truth[:, :, 8:28:3]
    with pytest.raises(InputError, match="unknown completion model 'rf'"):
        complete_case(_ball_case(tmp_path, sparse, image), 9, "auto", CompletionSettings(model="rf"))


def test_cli_rejects_an_unknown_model_without_writing(tmp_path):
    truth, image = _ball()
    sparse = np.full(truth.shape, 9, np.int16)
    sparse[:, :, 8:28:3] = truth[:, :, 8:28:3]
    _ball_case(tmp_path, sparse, image)
    result = _cli(tmp_path / "img.nii.gz", "--label", tmp_path / "sparse.nii.gz", "--ignore-label", 9,
                  "--out", tmp_path / "out.nii.gz", "--model", "rf")
    assert result.returncode == 2 and "--model" in result.stderr and "voxel" in result.stderr
    assert not (tmp_path / "out.nii.gz").exists()


def test_slices_on_two_planes_complete_in_one_call(tmp_path):
    truth, image = _ball()
    sparse = np.full(truth.shape, 9, np.int16)
    axial, sagittal = [6, 17, 28], [16, 25]  # the sagittal slices cut the core (x = 14..26)
    sparse[:, :, axial] = truth[:, :, axial]
    sparse[sagittal] = truth[sagittal]
    case = _ball_case(tmp_path, sparse, image)
    result = complete_case(case, 9, "auto", CompletionSettings(seed=0), progress=lambda m: None)
    assert result.report["planes"] == {"0": sagittal, "2": axial} and result.report["annotation_axis"] == 2
    labels = result.labels
    annotated = sparse != 9
    np.testing.assert_array_equal(labels[annotated], truth[annotated])  # annotations kept on both planes
    axial_only = np.full(truth.shape, 9, np.int16)
    axial_only[:, :, axial] = truth[:, :, axial]
    one_plane = complete_case(_ball_case(tmp_path, axial_only, image), 9, "auto", CompletionSettings(seed=0),
                              progress=lambda m: None).labels
    shell, core = (_dice(labels == v, truth == v) for v in (1, 2))
    shell_axial, core_axial = (_dice(one_plane == v, truth == v) for v in (1, 2))
    assert shell > 0.9 and shell > shell_axial - 0.01
    assert core > core_axial + 0.05  # the sagittal slices show where the core starts and ends along z
    # a partial slice is not a plane
    sparse[3, 3, 3] = 1
    with pytest.raises(InputError, match="whole slices"):
        complete_case(_ball_case(tmp_path, sparse, image), 9, "auto", CompletionSettings(), progress=lambda m: None)


def test_suggestions_point_where_the_annotation_is_missing(tmp_path):
    truth, image = _ball()
    annotated = [6, 8, 10, 12, 14, 26, 28]  # a wide gap from z = 15 to 25 holds the core's far half
    sparse = np.full(truth.shape, 9, np.int16)
    sparse[:, :, annotated] = truth[:, :, annotated]
    result = complete_case(_ball_case(tmp_path, sparse, image), 9, "auto", CompletionSettings(suggest=3, seed=0),
                           progress=lambda m: None)
    picks = result.report["suggested"]
    assert len(picks) == 3 and all(p["axis"] == 2 for p in picks)
    assert 17 <= picks[0]["slice"] <= 23  # the middle of the gap first
    assert len({p["slice"] for p in picks}) == 3 and not {p["slice"] for p in picks} & set(annotated)

    def completed_dice(extra: int) -> float:
        more = sparse.copy()
        more[:, :, extra] = truth[:, :, extra]  # the annotator draws the suggested slice
        labels = complete_case(_ball_case(tmp_path, more, image), 9, "auto", CompletionSettings(seed=0),
                               progress=lambda m: None).labels
        return np.mean([_dice(labels == v, truth == v) for v in (1, 2)])

    assert completed_dice(picks[0]["slice"]) > completed_dice(2) + 0.1  # worth more than a slice off the end
    anywhere = complete_case(_ball_case(tmp_path, sparse, image), 9, "auto",
                             CompletionSettings(suggest=3, suggest_axes="all", seed=0), progress=lambda m: None)
    assert len(anywhere.report["suggested"]) == 3
    with pytest.raises(InputError, match="suggest axes"):
        complete_case(_ball_case(tmp_path, sparse, image), 9, "auto", CompletionSettings(suggest=1, suggest_axes="5"),
                      progress=lambda m: None)


def test_background_only_end_slices_are_known_background_and_change_no_training_slice(tmp_path):
    truth, image = _ball()  # the ellipsoid spans z = 4..30
    annotated = list(range(2, 36, 4))  # z = 2 and 34 are annotated, beyond the ellipsoid: background only
    ignore_sparse = np.full(truth.shape, 9, np.int16)
    ignore_sparse[:, :, annotated] = truth[:, :, annotated]
    slicer_sparse = np.where(ignore_sparse == 9, 0, ignore_sparse)
    settings = CompletionSettings(seed=0)
    ignore = complete_case(_ball_case(tmp_path, ignore_sparse, image), 9, "auto", settings, progress=lambda m: None)
    (tmp_path / "slicer").mkdir()
    slicer = complete_case(_ball_case(tmp_path / "slicer", slicer_sparse, image), None, "auto", settings,
                           progress=lambda m: None)
    assert ignore.report["annotated_slices"] == annotated
    assert slicer.report["annotated_slices"] == annotated[1:-1]
    # the same slices are trained on and judged in both conventions ...
    assert [s["slice"] for s in ignore.report["slices"]] == [s["slice"] for s in slicer.report["slices"]]
    # ... and what only the ignore label says is kept: the end slices are background, nothing grows past them
    assert not ignore.labels[:, :, [2, 34]].any() and not ignore.labels[:, :, :2].any()
    assert not ignore.labels[:, :, 35:].any()
    between = [z for z in range(6, 31) if z not in annotated]
    assert _dice(ignore.labels[:, :, between] >= 1, truth[:, :, between] >= 1) > 0.9
