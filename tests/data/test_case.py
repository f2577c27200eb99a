"""Loading a case: channels stacked in canonical orientation, label checked against channels and dataset.json."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from versaseg.data.case import Case, load_case, load_label
from versaseg.errors import InputError
from versaseg.io.dataset import CaseFiles, load_dataset
from versaseg.io.image import read_volume, write_volume

SHAPE = (8, 9, 10)
LABELS = {"background": 0, "brain": 1, "vessel": 2, "ignore": 3}
# a non-RAS input: I -> left, J -> inferior, K -> anterior ("LIA"), anisotropic spacing, non-zero origin
NON_RAS = np.array([
    [-0.8, 0.0, 0.0, 30.0],
    [0.0, 0.0, 2.5, -40.0],
    [0.0, -1.2, 0.0, 55.0],
    [0.0, 0.0, 0.0, 1.0],
])


def _save(path: Path, array: np.ndarray, affine: np.ndarray = NON_RAS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(array, affine)
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, str(path))
    return path


def _channel(seed: int, shape=SHAPE) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _label(shape=SHAPE) -> np.ndarray:
    i, j, k = np.indices(shape)
    return ((i + j + k) % 4).astype(np.uint8)


def _case(tmp_path: Path, affine: np.ndarray = NON_RAS, name: str = "C1") -> CaseFiles:
    images = [_save(tmp_path / "imagesTr" / f"{name}_{c:04d}.nii.gz", _channel(c), affine) for c in range(2)]
    label = _save(tmp_path / "labelsTr" / f"{name}.nii.gz", _label(), affine)
    return CaseFiles(name, images, label)


def _one_line_naming(info, path: Path, *words: str) -> None:
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message, message
    assert info.value.path == path
    for word in words:
        assert word in message, message


# ------------------------------------------------------------------------------------------------------ happy path


def test_load_case_canonical(tmp_path):
    files = _case(tmp_path)
    case = load_case(files, set(LABELS.values()))
    assert isinstance(case, Case)
    assert case.case_id == "C1"
    # LIA -> RAS: canonical X is original I flipped, Y is original K, Z is original J flipped
    expected_shape = (SHAPE[0], SHAPE[2], SHAPE[1])
    assert case.image.shape == (2, *expected_shape)
    assert case.image.dtype == np.float32
    assert case.spatial_shape == expected_shape
    assert case.label.shape == expected_shape
    assert case.label.dtype == np.int16
    np.testing.assert_allclose(case.spacing, (0.8, 2.5, 1.2))
    for c in range(2):
        expected = _channel(c)[::-1, :, :].transpose(0, 2, 1)[:, :, ::-1]
        np.testing.assert_array_equal(case.image[c], expected)
    np.testing.assert_array_equal(case.label, _label()[::-1, :, :].transpose(0, 2, 1)[:, :, ::-1])
    assert case.image.flags.c_contiguous

    # the reference keeps the original geometry; to_original undoes the reorientation
    assert case.reference.path == files.images[0]
    np.testing.assert_allclose(case.reference.affine, NON_RAS, atol=1e-6)
    np.testing.assert_array_equal(case.to_original(case.label), _label())
    np.testing.assert_array_equal(case.to_original(case.image[1]), _channel(1))
    probs = np.stack([case.image[0], case.image[1]], axis=-1)  # trailing axes follow along
    np.testing.assert_array_equal(case.to_original(probs)[..., 1], _channel(1))


def test_prediction_written_back_has_input_geometry(tmp_path):
    """Canonical prediction -> to_original -> write_volume gives a file with the input's exact geometry."""
    files = _case(tmp_path)
    case = load_case(files)
    out = write_volume(tmp_path / "pred" / "C1.nii.gz", case.to_original(case.label).astype(np.uint8),
                       case.reference)
    back, src = nib.load(str(out)), nib.load(str(files.images[0]))
    np.testing.assert_array_equal(back.affine, src.affine)
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), _label())
    s_back, s_src = sitk.ReadImage(str(out)), sitk.ReadImage(str(files.images[0]))
    assert s_back.GetSpacing() == s_src.GetSpacing()
    assert s_back.GetOrigin() == s_src.GetOrigin()
    assert s_back.GetDirection() == s_src.GetDirection()


def test_ras_case_is_unchanged(tmp_path):
    affine = np.diag([0.5, 0.7, 3.0, 1.0])
    case = load_case(_case(tmp_path, affine))
    np.testing.assert_array_equal(case.image[0], _channel(0))
    np.testing.assert_allclose(case.spacing, (0.5, 0.7, 3.0))


def test_case_without_label(tmp_path):
    files = _case(tmp_path)
    case = load_case(CaseFiles(files.case_id, files.images))
    assert case.label is None
    assert case.image.shape[0] == 2


def test_mixed_formats_within_tolerance(tmp_path):
    """An MHA channel next to a NIfTI channel with the same geometry is accepted (float32 header rounding)."""
    files = _case(tmp_path)
    ref = read_volume(files.images[0])
    mha = write_volume(tmp_path / "imagesTr" / "C1_0001.mha", _channel(1), ref)
    case = load_case(CaseFiles("C1", [files.images[0], mha], files.label))
    np.testing.assert_array_equal(case.to_original(case.image[1]), _channel(1))


def test_from_dataset_end_to_end(tmp_path):
    root = tmp_path / "Dataset002"
    root.mkdir()
    (root / "dataset.json").write_text(json.dumps(
        {"channel_names": {"0": "T1", "1": "T2"}, "labels": LABELS, "numTraining": 2, "file_ending": ".nii.gz"}))
    _case(root, name="A")
    _case(root, name="B")
    spec = load_dataset(root)
    assert spec.ignore_label == 3
    cases = [load_case(files, set(spec.labels.values())) for files in spec.training_cases()]
    assert [c.case_id for c in cases] == ["A", "B"]
    assert all(c.image.shape == (2, 8, 10, 9) for c in cases)
    assert (cases[0].label == spec.ignore_label).any()


# ------------------------------------------------------------------------------------------------------- problems


def test_channel_shape_mismatch(tmp_path):
    files = _case(tmp_path)
    _save(files.images[1], _channel(1, (8, 9, 11)))
    with pytest.raises(InputError) as info:
        load_case(files)
    _one_line_naming(info, files.images[1], "shape", "C1_0000.nii.gz")


def test_channel_geometry_mismatch(tmp_path):
    files = _case(tmp_path)
    moved = NON_RAS.copy()
    moved[:3, 3] += (0.0, 0.5, 0.0)
    _save(files.images[1], _channel(1), moved)
    with pytest.raises(InputError) as info:
        load_case(files)
    _one_line_naming(info, files.images[1], "geometry")


def test_channel_spacing_mismatch(tmp_path):
    files = _case(tmp_path)
    _save(files.images[1], _channel(1), NON_RAS @ np.diag([1.0, 1.0, 1.1, 1.0]))
    with pytest.raises(InputError) as info:
        load_case(files)
    _one_line_naming(info, files.images[1], "geometry")


def test_label_shape_mismatch(tmp_path):
    files = _case(tmp_path)
    _save(files.label, _label((8, 9, 9)))
    with pytest.raises(InputError) as info:
        load_case(files)
    _one_line_naming(info, files.label, "label", "shape")


def test_label_geometry_mismatch(tmp_path):
    files = _case(tmp_path)
    _save(files.label, _label(), np.diag([0.8, 1.2, 2.5, 1.0]))  # same spacing, RAS instead of LIA
    with pytest.raises(InputError) as info:
        load_case(files)
    _one_line_naming(info, files.label, "label", "geometry")


def test_label_value_not_in_dataset_json(tmp_path):
    files = _case(tmp_path)
    label = _label()
    label[0, 0, 0] = 7
    _save(files.label, label)
    with pytest.raises(InputError) as info:
        load_case(files, set(LABELS.values()))
    _one_line_naming(info, files.label, "[7]", "dataset.json")
    load_case(files)  # without allowed values the label is not checked against dataset.json


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_image(tmp_path, bad):
    files = _case(tmp_path)
    data = _channel(1)
    data[3, 4, 5] = bad
    _save(files.images[1], data)
    with pytest.raises(InputError) as info:
        load_case(files)
    _one_line_naming(info, files.images[1], "NaN")


def test_non_integer_label(tmp_path):
    files = _case(tmp_path)
    label = _label().astype(np.float32)
    label[1, 1, 1] = 0.5
    _save(files.label, label)
    with pytest.raises(InputError) as info:
        load_case(files)
    _one_line_naming(info, files.label, "non-integer")


def test_nan_in_label(tmp_path):
    files = _case(tmp_path)
    label = _label().astype(np.float32)
    label[1, 1, 1] = np.nan
    _save(files.label, label)
    with pytest.raises(InputError) as info:
        load_case(files)
    _one_line_naming(info, files.label, "NaN")


def test_negative_or_huge_label_values(tmp_path):
    files = _case(tmp_path)
    for value, words in ((-1, ("negative", "min -1")), (40000, ("0..32767", "40000"))):
        label = _label().astype(np.int32)
        label[0, 0, 0] = value
        _save(files.label, label)
        with pytest.raises(InputError) as info:
            load_case(files)
        _one_line_naming(info, files.label, *words)


def test_float_label_with_integer_values_is_accepted(tmp_path):
    files = _case(tmp_path)
    _save(files.label, _label().astype(np.float32))
    case = load_case(files, set(LABELS.values()))
    assert case.label.dtype == np.int16
    np.testing.assert_array_equal(case.to_original(case.label), _label())


def test_corrupt_channel(tmp_path):
    files = _case(tmp_path)
    files.images[1].write_bytes(b"\x1f\x8b\x08 not really gzip")
    with pytest.raises(InputError) as info:
        load_case(files)
    _one_line_naming(info, files.images[1])


def test_missing_channel_file(tmp_path):
    files = _case(tmp_path)
    files.images[1].unlink()
    with pytest.raises(InputError) as info:
        load_case(files)
    _one_line_naming(info, files.images[1], "not found")


def test_load_label_directly(tmp_path):
    files = _case(tmp_path)
    ref = read_volume(files.images[0])
    label, segments = load_label(files.label, ref, {0, 1, 2, 3})
    assert label.dtype == np.int16 and segments is None  # a NIfTI label has no segment table
    np.testing.assert_array_equal(label, _label())
    with pytest.raises(InputError, match=r"\[3\]"):
        load_label(files.label, ref, {0, 1, 2})
