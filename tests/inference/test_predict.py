"""Prediction: outputs carry the input's exact geometry (oblique, non-RAS, NRRD/MHA), orientation invariance,
TTA, probabilities, connected-component post-processing, and safe writing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from scipy.spatial.transform import Rotation

from versaseg.inference.postprocess import keep_largest_component
from versaseg.tasks.training import train
from versaseg.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import write_tiny_dataset  # noqa: E402


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    dataset = write_tiny_dataset(root / "data", cases=3)
    config = TrainConfig(
        epochs=2,
        iterations_per_epoch=8,
        batch_size=8,
        augmentation="none",
        seed=0,
        network_kwargs={"depth": 3, "base_width": 8},
    )
    train(config, dataset, root / "run", device="cpu")
    return root / "run"


def _channels(seed=0, shape=(20, 22, 18)):
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    ball = ((grid - np.array(shape)[:, None, None, None] / 2) ** 2).sum(0) < 36
    return [
        (100 + 80 * ball + rng.normal(0, 5, shape)).astype(np.float32),
        (50 + 30 * ball + rng.normal(0, 5, shape)).astype(np.float32),
    ]


def _oblique_affine():
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", [12, -25, 40], degrees=True).as_matrix() @ np.diag([0.9, 1.4, 2.2])
    affine[:3, 3] = [-30.5, 12.25, 7.0]
    return affine


def _non_ras_affine():
    # LPI-like with permuted axes: i -> -y, j -> z, k -> -x
    affine = np.zeros((4, 4))
    affine[0, 2], affine[1, 0], affine[2, 1], affine[3, 3] = -1.5, -1.0, 2.0, 1.0
    affine[:3, 3] = [40.0, 30.0, -20.0]
    return affine


def _predict(run_dir, inputs, out, *extra):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "versaseg.cli.main",
            "predict",
            str(run_dir),
            *map(str, inputs),
            "--out",
            str(out),
            "--device",
            "cpu",
            *extra,
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
    )


@pytest.mark.parametrize("kind", ["oblique", "non_ras"])
def test_nifti_prediction_has_input_geometry(run_dir, tmp_path, kind):
    affine = _oblique_affine() if kind == "oblique" else _non_ras_affine()
    for c, data in enumerate(_channels()):
        nib.save(nib.Nifti1Image(data, affine), tmp_path / f"case_{c:04d}.nii.gz")
    result = _predict(
        run_dir, [tmp_path / "case_0000.nii.gz", tmp_path / "case_0001.nii.gz"], tmp_path / "out", "--probabilities"
    )
    assert result.returncode == 0, result.stderr
    source, output = tmp_path / "case_0000.nii.gz", tmp_path / "out" / "case.nii.gz"
    a, b = nib.load(source), nib.load(output)
    assert b.shape == a.shape
    np.testing.assert_allclose(b.affine, a.affine, atol=1e-5)
    assert np.issubdtype(b.get_data_dtype(), np.integer)
    sa, sb = sitk.ReadImage(str(source)), sitk.ReadImage(str(output))
    np.testing.assert_allclose(sb.GetSpacing(), sa.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(sb.GetOrigin(), sa.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(sb.GetDirection(), sa.GetDirection(), atol=1e-5)
    probs = np.stack(
        [nib.load(tmp_path / "out" / f"case_prob_{n}.nii.gz").get_fdata() for n in ("background", "ball", "box")]
    )
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-4)
    np.testing.assert_array_equal(probs.argmax(0), np.asarray(b.dataobj))
    np.testing.assert_allclose(nib.load(tmp_path / "out" / "case_prob_ball.nii.gz").affine, a.affine, atol=1e-5)


@pytest.mark.parametrize("ending", [".nrrd", ".mha"])
def test_itk_format_prediction_has_input_geometry(run_dir, tmp_path, ending):
    for c, data in enumerate(_channels()):
        image = sitk.GetImageFromArray(data.transpose(2, 1, 0))
        image.SetSpacing((0.8, 1.1, 2.5))
        image.SetOrigin((3.0, -4.0, 5.5))
        image.SetDirection(Rotation.from_euler("z", 30, degrees=True).as_matrix().ravel().tolist())
        sitk.WriteImage(image, str(tmp_path / f"case_{c:04d}{ending}"))
    result = _predict(run_dir, [tmp_path], tmp_path / "out")
    assert result.returncode == 0, result.stderr
    source, output = (
        sitk.ReadImage(str(tmp_path / f"case_0000{ending}")),
        sitk.ReadImage(str(tmp_path / "out" / f"case{ending}")),
    )
    assert output.GetSize() == source.GetSize()
    np.testing.assert_allclose(output.GetSpacing(), source.GetSpacing(), atol=1e-6)
    np.testing.assert_allclose(output.GetOrigin(), source.GetOrigin(), atol=1e-6)
    np.testing.assert_allclose(output.GetDirection(), source.GetDirection(), atol=1e-6)


def test_prediction_does_not_depend_on_storage_orientation(run_dir, tmp_path):
    """The same physical image stored with permuted/flipped axes gets the same segmentation."""
    channels = _channels(3)
    ras = np.diag([1.5, 1.0, 2.0, 1.0])
    for c, data in enumerate(channels):
        nib.save(nib.Nifti1Image(data, ras), tmp_path / f"ras_{c:04d}.nii.gz")
        flipped = np.flip(data, 0).transpose(2, 0, 1)  # new axes: (k, -i, j)
        ornt_affine = np.zeros((4, 4))
        ornt_affine[2, 0], ornt_affine[0, 1], ornt_affine[1, 2], ornt_affine[3, 3] = 2.0, -1.5, 1.0, 1.0
        ornt_affine[0, 3] = 1.5 * (data.shape[0] - 1)
        nib.save(nib.Nifti1Image(np.ascontiguousarray(flipped), ornt_affine), tmp_path / f"lpi_{c:04d}.nii.gz")
    result = _predict(run_dir, [tmp_path], tmp_path / "out")
    assert result.returncode == 0, result.stderr
    ras_pred = np.asarray(nib.load(tmp_path / "out" / "ras.nii.gz").dataobj)
    other = np.asarray(nib.load(tmp_path / "out" / "lpi.nii.gz").dataobj)
    np.testing.assert_array_equal(np.flip(other.transpose(1, 2, 0), 0), ras_pred)
    assert ras_pred.max() > 0


def test_dataset_input_tta_and_overwrite(run_dir, tmp_path):
    dataset = write_tiny_dataset(tmp_path / "data", cases=1, test_cases=2, seed=7)
    out = tmp_path / "out"
    result = _predict(run_dir, [dataset], out, "--tta", "--largest-component")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["tiny_001.nii.gz", "tiny_002.nii.gz"]
    before = (out / "tiny_001.nii.gz").read_bytes()
    again = _predict(run_dir, [dataset], out)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "tiny_001.nii.gz" in again.stderr
    assert (out / "tiny_001.nii.gz").read_bytes() == before
    assert _predict(run_dir, [dataset], out, "--overwrite").returncode == 0


def test_wrong_channel_count_is_a_clear_error(run_dir, tmp_path):
    nib.save(nib.Nifti1Image(_channels()[0], np.eye(4)), tmp_path / "single.nii.gz")
    result = _predict(run_dir, [tmp_path / "single.nii.gz"], tmp_path / "out")
    assert result.returncode == 2
    assert "expects 2" in result.stderr and "single_0001.nii.gz" in result.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_keep_largest_component_per_class():
    labels = np.zeros((10, 10, 10), np.int16)
    labels[1:4, 1:4, 1:4] = 1  # 27 voxels
    labels[7:9, 7:9, 7:9] = 1  # 8 voxels: removed
    labels[6:8, 1:3, 1:3] = 2  # only component of class 2: kept
    out = keep_largest_component(labels, [1, 2])
    assert (out == 1).sum() == 27 and (out == 2).sum() == 8 and out[8, 8, 8] == 0


def test_seg_nrrd_output_names_the_segments_after_the_classes(run_dir, tmp_path):
    from versaseg.io.image import read_volume

    affine = _oblique_affine()
    for c, data in enumerate(_channels()):
        nib.save(nib.Nifti1Image(data, affine), tmp_path / f"case_{c:04d}.nii.gz")
    inputs = [tmp_path / "case_0000.nii.gz", tmp_path / "case_0001.nii.gz"]
    assert _predict(run_dir, inputs, tmp_path / "nifti").returncode == 0
    result = _predict(run_dir, inputs, tmp_path / "seg", "--format", "seg.nrrd", "--probabilities")
    assert result.returncode == 0, result.stderr
    segmentation = read_volume(tmp_path / "seg" / "case.seg.nrrd")
    assert [(s.name, s.label_value) for s in segmentation.segments] == [("ball", 1), ("box", 2)]
    np.testing.assert_allclose(segmentation.affine, affine, atol=1e-6)
    np.testing.assert_array_equal(segmentation.array, np.asarray(nib.load(tmp_path / "nifti" / "case.nii.gz").dataobj))
    assert (tmp_path / "seg" / "case_prob_ball.nrrd").exists()  # maps are plain volumes, not segmentations
    bad = _predict(run_dir, inputs, tmp_path / "bad", "--format", "png")
    assert bad.returncode == 2 and "--format" in bad.stderr and not (tmp_path / "bad").exists()
