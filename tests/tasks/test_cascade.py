"""``versaseg cascade``: derived datasets, ROI geometry, prediction with the input's geometry, fallback, CLI errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from versaseg.cli.main import app
from versaseg.data.case import load_case
from versaseg.inference.cascade import CascadePredictor
from versaseg.inference.postprocess import select_components
from versaseg.io.dataset import CaseFiles, load_dataset
from versaseg.io.resample import box_to_grid, coarse_grid, crop_box, resample_label, round_box
from versaseg.tasks import cascade as cc
from versaseg.training.cascade import stage1_spacing
from versaseg.training.config import TrainConfig

COARSE = 8.0


@pytest.fixture(scope="module")
def bg_dataset(tmp_path_factory) -> Path:
    """Tiny synthetic brains (4 mm, 44 x 52 x 44) with caudate, putamen, pallidum: 3 training + 1 test case."""
    from versaseg.data.synthetic.dataset import write_synth_dataset

    return write_synth_dataset(tmp_path_factory.mktemp("bg") / "data", cases=3, test_cases=1, label_set="basal-ganglia",
                               tiny=True, workers=1)


@pytest.fixture(scope="module")
def cascade_run(bg_dataset, tmp_path_factory) -> Path:
    """A cascade trained for one epoch of two iterations per stage (weights are near random; the tests that need a
    meaningful stage 1 replace it)."""
    config = TrainConfig(network_kwargs={"depth": 3, "base_width": 4}, epochs=1, iterations_per_epoch=2, batch_size=2,
                         augmentation="none", val_fraction=0.34)
    out = tmp_path_factory.mktemp("cascade") / "run"
    stage2 = TrainConfig(**{**config.__dict__, "network": "frrn"})  # the stages may use different networks
    return cc.train_cascade(bg_dataset, out, config, stage2, cc.CascadeSettings(coarse_spacing=COARSE, margin_mm=8.0),
                            device="cpu", show_progress=False)


def _test_case(bg_dataset: Path) -> CaseFiles:
    files = load_dataset(bg_dataset).test_cases()[0]
    files.label = bg_dataset / "labelsTs" / f"{files.case_id}.nii.gz"
    return files


def _fake_stage1_from_truth(truth_canonical: np.ndarray):
    """A stage 1 that 'predicts' the merged ground truth on its coarse grid."""
    def fake(self, case, affine):
        shape, coarse_affine = coarse_grid(case.spatial_shape, affine, stage1_spacing(case.spacing, COARSE))
        return resample_label((truth_canonical > 0).astype(np.int16), affine, shape, coarse_affine) > 0, coarse_affine
    return fake


# -- geometry helpers ----------------------------------------------------------------------------------------------
def test_crop_box_margin_and_clipping():
    mask = np.zeros((20, 20, 20), bool)
    mask[5:8, 10:12, 0:2] = True
    box = crop_box(mask, (2.0, 1.0, 1.0), 4.0)  # 4 mm = 2 voxels along x, 4 along y and z
    assert box == (slice(3, 10), slice(6, 16), slice(0, 6))
    assert crop_box(np.zeros((3, 3, 3), bool), (1, 1, 1), 1.0) is None


def test_round_box_grows_to_a_multiple_inside_the_volume():
    assert round_box((slice(3, 8), slice(0, 3), slice(0, 10)), (20, 20, 10), 4) == \
        (slice(2, 10), slice(0, 4), slice(0, 10))
    assert round_box((slice(17, 19),), (20,), 8) == (slice(12, 20),)  # shifted to stay inside


def test_box_to_grid_covers_the_same_physical_region():
    fine = np.diag([2.0, 2.0, 2.0, 1.0])
    shape, coarse = coarse_grid((40, 40, 40), fine, (8.0, 8.0, 8.0))
    assert shape == (10, 10, 10)
    box = box_to_grid((slice(2, 4), slice(0, 1), slice(9, 10)), coarse, (40, 40, 40), fine)
    assert box == (slice(8, 16), slice(0, 4), slice(36, 40))  # each coarse voxel = 4 fine voxels


def test_select_components_rules():
    mask = np.zeros((30, 10, 10), bool)
    mask[2:6, 2:6, 2:6] = True  # 64 voxels
    mask[20:24, 2:6, 2:6] = True  # 64 voxels (the other side of a bilateral structure)
    mask[12, 8, 8] = True  # a speck
    assert select_components(mask, "all").sum() == 129
    assert select_components(mask, "major").sum() == 128
    assert select_components(mask, "largest").sum() == 64


# -- training ------------------------------------------------------------------------------------------------------
def test_train_writes_two_normal_runs_and_derived_data(cascade_run, bg_dataset):
    info = json.loads((cascade_run / "cascade.json").read_text())
    assert info["stage1_labels"] == {"background": 0, "target": 1}
    assert info["settings"]["coarse_spacing"] == COARSE
    crops = [nib.load(p) for p in sorted((cascade_run / "work" / "stage2_data" / "labelsTr").glob("*.nii.gz"))]
    assert info["stage2_crop_mm"] == pytest.approx(np.max([np.multiply(c.shape, 4.0) for c in crops], axis=0))
    for stage in ("stage1", "stage2"):
        assert (cascade_run / stage / "model.pt").exists() and (cascade_run / stage / "config.json").exists()
    stage1 = TrainConfig.load(cascade_run / "stage1")
    stage2 = TrainConfig.load(cascade_run / "stage2")
    assert stage1.spacing == [COARSE] * 3 and stage2.spacing == [4.0] * 3
    assert stage2.network == "frrn" and stage1.network == "unet"
    # sizes are multiples of the networks' divisor (4 for depth 3) and patches the smallest case / crop: no padding
    assert stage1.patch_size == [24, 28]
    # the same original case is held out by both stages (all its crops)
    assert [c + "_crop0" for c in stage1.val_cases] == [c for c in stage2.val_cases if c.endswith("_crop0")]
    assert len(stage2.train_cases) == 2 * len(stage1.train_cases)
    # stage 1: coarse copy with the merged target; stage 2: crops that hold the whole target at full resolution
    spec = load_dataset(bg_dataset)
    for files in spec.training_cases():
        original = load_case(files)
        coarse = nib.load(cascade_run / "work" / "stage1_data" / "labelsTr" / f"{files.case_id}.nii.gz")
        assert coarse.shape == (24, 28, 24)  # 22 x 26 x 22 voxels of 8 mm, rounded up to multiples of 4
        assert set(np.unique(np.asarray(coarse.dataobj))) == {0, 1}
        for crop in (0, 1):
            path = cascade_run / "work" / "stage2_data" / "labelsTr" / f"{files.case_id}_crop{crop}.nii.gz"
            image = nib.load(str(path).replace("labelsTr", "imagesTr").replace(".nii.gz", "_0000.nii.gz"))
            label = np.asarray(nib.load(path).dataobj)
            assert np.bincount(label.ravel(), minlength=4)[1:].tolist() == \
                np.bincount(original.label.ravel(), minlength=4)[1:].tolist()
            assert label.size < original.label.size
            assert all(n % 4 == 0 for n in label.shape)
            assert all(p <= n for p, n in zip(stage2.patch_size, np.delete(label.shape, 2), strict=True))
            # the crop's affine puts its voxels where they were: voxel 0 maps onto the same original voxel value
            start = np.round(np.linalg.solve(original.reference.affine, image.affine @ [0, 0, 0, 1])[:3]).astype(int)
            assert np.allclose(np.asarray(image.dataobj)[0, 0, 0], original.image[0][tuple(start)])


def test_train_refuses_occupied_out_and_bad_options(bg_dataset, tmp_path):
    runner = CliRunner()
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "other.txt").write_text("keep me")
    result = runner.invoke(app, ["cascade", "train", str(bg_dataset), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "not empty" in result.output
    result = runner.invoke(app, ["cascade", "train", str(bg_dataset), "--out", str(tmp_path / "x"), "--overwrite"])
    assert result.exit_code == 2 and "not a versaseg cascade run" in result.output
    assert (tmp_path / "x" / "other.txt").exists()
    result = runner.invoke(app, ["cascade", "train", str(bg_dataset), "--out", str(tmp_path / "y"),
                                 "--stage1-classes", "some"])
    assert result.exit_code == 2 and "--stage1-classes" in result.output and "merged, all" in result.output
    result = runner.invoke(app, ["cascade", "train", str(bg_dataset), "--out", str(tmp_path / "y"),
                                 "--stage2-network", "resnet"])
    assert result.exit_code == 2 and "unknown network 'resnet'" in result.output
    assert not (tmp_path / "y").exists()


# -- prediction ----------------------------------------------------------------------------------------------------
def test_cli_predict_keeps_input_geometry_and_labels_only_inside_the_roi(cascade_run, bg_dataset, tmp_path):
    out = tmp_path / "pred"
    result = CliRunner().invoke(app, ["cascade", "predict", str(cascade_run), str(bg_dataset / "imagesTs"),
                                      "--out", str(out), "--device", "cpu", "--save-stage1"])
    assert result.exit_code == 0, result.output
    files = _test_case(bg_dataset)
    source = nib.load(files.images[0])
    pred = nib.load(out / f"{files.case_id}.nii.gz")
    assert pred.shape == source.shape and np.allclose(pred.affine, source.affine)
    assert (out / f"{files.case_id}_stage1.nii.gz").exists()
    record = json.loads((out / "cascade_rois.json").read_text())["cases"][0]
    box = tuple(slice(a, b) for a, b in zip(record["roi_start"], record["roi_stop"], strict=True))
    outside = np.asarray(pred.dataobj).copy()
    outside[box] = 0
    assert not outside.any()
    again = CliRunner().invoke(app, ["cascade", "predict", str(cascade_run), str(bg_dataset / "imagesTs"),
                                     "--out", str(out)])
    assert again.exit_code == 2 and "--overwrite" in again.output


def test_cli_predict_figures_are_checked_before_any_work(cascade_run, bg_dataset, tmp_path):
    out = tmp_path / "pred"
    args = ["cascade", "predict", str(cascade_run), str(bg_dataset / "imagesTs"), "--out", str(out), "--device", "cpu",
            "--figures"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    case_id = _test_case(bg_dataset).case_id
    figure = out / "figures" / f"{case_id}.png"
    from matplotlib.image import imread

    assert imread(figure).shape[0] > 400  # three planes
    (out / f"{case_id}.nii.gz").unlink()  # only the figure is left: it alone must stop a second run
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "figures" in again.output and "--overwrite" in again.output
    assert not (out / f"{case_id}.nii.gz").exists()


@pytest.mark.parametrize("flip", [False, True])
def test_roi_from_stage1_contains_the_truth_in_any_orientation(cascade_run, bg_dataset, tmp_path, monkeypatch, flip):
    files = _test_case(bg_dataset)
    if flip:  # an LPS-like copy: the first axis stored reversed
        flipped = []
        for path in [*files.images, files.label]:
            img = nib.load(path)
            affine = img.affine @ np.array([[-1, 0, 0, img.shape[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
            target = tmp_path / path.name
            nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[::-1].copy(), affine), target)
            flipped.append(target)
        files = CaseFiles(files.case_id, flipped[:-1], flipped[-1])
    case = load_case(files)
    monkeypatch.setattr(CascadePredictor, "stage1_foreground", _fake_stage1_from_truth(case.label))
    predictor = CascadePredictor(cascade_run, roi="major", margin_mm=8.0)
    assert predictor.stage2_multiple == 4
    rounded = predictor.predict_case(case).roi
    assert all((b.stop - b.start) % 4 == 0 for b in rounded)
    predictor.stage2_multiple = 1  # the margin arithmetic below is exact without rounding to the divisor
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        prediction = predictor.predict_case(case)
    truth = np.asarray(nib.load(files.label).dataobj) > 0  # original (stored) order
    inside = np.zeros(truth.shape, bool)
    inside[prediction.roi] = True
    assert not prediction.fallback
    assert truth[inside].sum() == truth.sum()  # the whole structure lies in the ROI
    assert inside.sum() < 0.5 * truth.size  # and the ROI is a crop, not the volume
    predictor.margin_mm = 0.0
    tight = predictor.predict_case(case).roi
    for grown, bare, size in zip(prediction.roi, tight, truth.shape, strict=True):  # 8 mm = 2 voxels per side
        assert (grown.start, grown.stop) == (max(bare.start - 2, 0), min(bare.stop + 2, size))
    assert prediction.labels.shape == truth.shape
    assert not prediction.labels[~inside].any()


def test_empty_stage1_falls_back_to_the_whole_volume(cascade_run, bg_dataset, monkeypatch):
    case = load_case(_test_case(bg_dataset))
    predictor = CascadePredictor(cascade_run)

    def nothing(self, case, affine):
        shape, coarse_affine = coarse_grid(case.spatial_shape, affine, (COARSE,) * 3)
        return np.zeros(shape, bool), coarse_affine

    seen = []
    real = predictor.stage2.predict_case

    def spy(crop, keep_probabilities=False):
        seen.append(crop.spatial_shape)
        result = real(crop)
        result.labels[:] = 0
        result.labels[10:20, 10:20, 10:20] = 2  # a stand-in for a trained stage 2's non-empty answer
        return result

    monkeypatch.setattr(CascadePredictor, "stage1_foreground", nothing)
    monkeypatch.setattr(predictor.stage2, "predict_case", spy)
    with pytest.warns(UserWarning, match="stage 1 found no target"):
        prediction = predictor.predict_case(case)
    assert seen == [case.spatial_shape]  # stage 2 ran on the whole volume
    assert prediction.fallback and prediction.roi == tuple(slice(0, n) for n in case.reference.shape)
    assert not prediction.oversized  # the whole volume after a fallback is not flagged as an oversized ROI
    assert (prediction.labels == 2).sum() == 1000


def test_roi_far_larger_than_the_training_crops_is_flagged(cascade_run, bg_dataset, monkeypatch, tmp_path):
    """Stage 1 'finds' two specks at opposite corners: the ROI spans the head, far beyond any training crop; the
    prediction still runs, with a warning, the flag in cascade_rois.json and a figure title that says so."""
    case = load_case(_test_case(bg_dataset))

    def specks(self, case, affine):
        shape, coarse_affine = coarse_grid(case.spatial_shape, affine, (COARSE,) * 3)
        found = np.zeros(shape, bool)
        found[1, 1, 1] = found[-2, -2, -2] = True
        return found, coarse_affine

    monkeypatch.setattr(CascadePredictor, "stage1_foreground", specks)
    predictor = CascadePredictor(cascade_run)
    with pytest.warns(UserWarning, match="larger than|over 1.5x the largest stage-2 training crop"):
        prediction = predictor.predict_case(case)
    assert prediction.oversized and not prediction.fallback
    assert prediction.roi_record()["roi_larger_than_training_crops"] is True
    monkeypatch.setattr(CascadePredictor, "stage1_foreground", _fake_stage1_from_truth(case.label))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a region like the training crops: no warning
        assert not predictor.predict_case(case).oversized


def test_predict_errors_are_one_line(cascade_run, bg_dataset, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["cascade", "predict", str(bg_dataset), str(bg_dataset / "imagesTs"), "--out",
                                 str(tmp_path / "o")])
    assert result.exit_code == 2 and "cascade.json not found" in result.output
    result = runner.invoke(app, ["cascade", "predict", str(cascade_run), str(bg_dataset / "imagesTs"), "--out",
                                 str(tmp_path / "o"), "--roi", "biggest"])
    assert result.exit_code == 2 and "--roi" in result.output
    one_channel = _test_case(bg_dataset).images[0]
    result = runner.invoke(app, ["cascade", "predict", str(cascade_run), str(one_channel), "--out",
                                 str(tmp_path / "o")])
    assert result.exit_code == 2 and "channel" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()
