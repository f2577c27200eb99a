"""The nnU-Net v2 / Decathlon dataset layout: dataset.json parsing and checking, case files grouped by channel."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from versaseg.errors import InputError
from versaseg.io.dataset import (
    IGNORE_NAME,
    CaseFiles,
    DatasetSpec,
    group_channel_files,
    load_dataset,
    parse_labels,
)

SHAPE = (8, 9, 10)
LABELS = {"background": 0, "brain": 1, "vessel": 2, "ignore": 3}


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith((".nii", ".nii.gz")):
        nib.save(nib.Nifti1Image(array, np.diag([1.0, 1.2, 2.0, 1.0])), str(path))
    else:
        image = sitk.GetImageFromArray(array.transpose(2, 1, 0))
        image.SetSpacing((1.0, 1.2, 2.0))
        sitk.WriteImage(image, str(path))


def _make_dataset(root: Path, cases=("BRAIN_001", "BRAIN_002"), test_cases=("BRAIN_101",), labels=None,
                  channels=None, file_ending=".nii.gz", **extra) -> Path:
    """A tiny dataset: 2 channels (T1, T2), 8x9x10 volumes, labels with an ignore label."""
    channels = channels or {"0": "T1", "1": "T2"}
    data = {"channel_names": channels, "labels": LABELS if labels is None else labels, "numTraining": len(cases),
            "file_ending": file_ending, **extra}
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.json").write_text(json.dumps(data))
    rng = np.random.default_rng(0)
    for case in cases:
        for c in range(len(channels)):
            _write(root / "imagesTr" / f"{case}_{c:04d}{file_ending}", rng.normal(size=SHAPE).astype(np.float32))
        _write(root / "labelsTr" / f"{case}{file_ending}", rng.integers(0, 4, SHAPE).astype(np.uint8))
    for case in test_cases:
        for c in range(len(channels)):
            _write(root / "imagesTs" / f"{case}_{c:04d}{file_ending}", rng.normal(size=SHAPE).astype(np.float32))
    return root


# ------------------------------------------------------------------------------------------------------ happy path


def test_load_dataset_happy_path(tmp_path):
    root = _make_dataset(tmp_path / "Dataset001_Brain", extra_key={"a": 1})
    spec = load_dataset(root)
    assert spec.root == root
    assert spec.channel_names == {0: "T1", 1: "T2"}
    assert spec.num_channels == 2
    assert spec.labels == LABELS
    assert spec.ignore_label == 3
    assert spec.class_labels == {"background": 0, "brain": 1, "vessel": 2}
    assert list(spec.class_labels.values()) == [0, 1, 2]
    assert spec.file_ending == ".nii.gz"
    assert spec.num_training == 2
    assert spec.extra == {"extra_key": {"a": 1}}

    cases = spec.training_cases()
    assert [c.case_id for c in cases] == ["BRAIN_001", "BRAIN_002"]
    for case in cases:
        assert isinstance(case, CaseFiles)
        assert [p.name for p in case.images] == [f"{case.case_id}_0000.nii.gz", f"{case.case_id}_0001.nii.gz"]
        assert case.label == root / "labelsTr" / f"{case.case_id}.nii.gz"

    tests = spec.test_cases()
    assert [c.case_id for c in tests] == ["BRAIN_101"]
    assert tests[0].label is None
    assert [p.name for p in tests[0].images] == ["BRAIN_101_0000.nii.gz", "BRAIN_101_0001.nii.gz"]


def test_no_ignore_label(tmp_path):
    spec = load_dataset(_make_dataset(tmp_path / "d", labels={"background": 0, "tumour": 1}))
    assert spec.ignore_label is None
    assert spec.class_labels == {"background": 0, "tumour": 1}
    assert IGNORE_NAME == "ignore"


def test_test_cases_absent(tmp_path):
    spec = load_dataset(_make_dataset(tmp_path / "d", test_cases=()))
    assert spec.test_cases() == []


def test_other_file_endings_and_stray_files_are_ignored(tmp_path):
    root = _make_dataset(tmp_path / "d")
    (root / "imagesTr" / "README.txt").write_text("notes")
    (root / "imagesTr" / "BRAIN_001_0000.nrrd").write_bytes(b"other format")
    # hidden files: an in-progress atomic write and a macOS resource fork
    (root / "imagesTr" / ".BRAIN_003_0000.nii.gz").write_bytes(b"partial")
    (root / "imagesTr" / "._BRAIN_001_0000.nii.gz").write_bytes(b"resource fork")
    cases = load_dataset(root).training_cases()
    assert [c.case_id for c in cases] == ["BRAIN_001", "BRAIN_002"]


def test_other_file_ending(tmp_path):
    root = _make_dataset(tmp_path / "d", file_ending=".nrrd", cases=("A", "B"), test_cases=("C",))
    _write(root / "imagesTr" / "A_0000.nii.gz", np.zeros(SHAPE, np.float32))  # not this dataset's ending
    spec = load_dataset(root)
    assert spec.file_ending == ".nrrd"
    cases = spec.training_cases()
    assert [c.case_id for c in cases] == ["A", "B"]
    assert [p.name for p in cases[0].images] == ["A_0000.nrrd", "A_0001.nrrd"]
    assert cases[1].label == root / "labelsTr" / "B.nrrd"
    assert [c.case_id for c in spec.test_cases()] == ["C"]


def test_save_roundtrip(tmp_path):
    spec = load_dataset(_make_dataset(tmp_path / "d", extra_key="x"))
    (spec.root / "dataset.json").unlink()
    spec.save()
    data = json.loads((spec.root / "dataset.json").read_text())
    assert data["channel_names"] == {"0": "T1", "1": "T2"}
    assert data["labels"] == LABELS
    assert data["numTraining"] == 2
    assert data["file_ending"] == ".nii.gz"
    assert data["extra_key"] == "x"
    again = load_dataset(spec.root)
    assert again.to_json() == spec.to_json()
    assert sorted(p.name for p in spec.root.iterdir()) == ["dataset.json", "imagesTr", "imagesTs", "labelsTr"]


def test_decathlon_style_dataset_json(tmp_path):
    """Decathlon / nnU-Net v1: 'modality' instead of 'channel_names', labels as value -> name."""
    root = tmp_path / "Task01"
    root.mkdir()
    (root / "dataset.json").write_text(json.dumps({
        "modality": {"0": "FLAIR", "1": "T1w"},
        "labels": {"0": "background", "1": "edema", "2": "tumour"},
        "numTraining": 0,
    }))
    spec = load_dataset(root)
    assert spec.channel_names == {0: "FLAIR", 1: "T1w"}
    assert spec.labels == {"background": 0, "edema": 1, "tumour": 2}


# ------------------------------------------------------------------------------------------- dataset.json problems


def _assert_one_line_naming(info, path: Path, *words: str) -> None:
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message, message
    for word in words:
        assert word in message, message


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(InputError) as info:
        load_dataset(tmp_path / "nope")
    _assert_one_line_naming(info, tmp_path / "nope", "not found")


def test_missing_dataset_json(tmp_path):
    root = _make_dataset(tmp_path / "d")
    (root / "dataset.json").unlink()
    with pytest.raises(InputError) as info:
        load_dataset(root)
    _assert_one_line_naming(info, root / "dataset.json", "not found")


@pytest.mark.parametrize("text", ["{not json", "", '{"channel_names": {"0": "T1"}, "labels": {"bg": 0},}'])
def test_invalid_json(tmp_path, text):
    root = _make_dataset(tmp_path / "d")
    (root / "dataset.json").write_text(text)
    with pytest.raises(InputError) as info:
        load_dataset(root)
    _assert_one_line_naming(info, root / "dataset.json", "invalid JSON")


def test_binary_dataset_json(tmp_path):
    root = _make_dataset(tmp_path / "d")
    (root / "dataset.json").write_bytes(b"\xff\xfe\x00garbage\x9c")
    with pytest.raises(InputError) as info:
        load_dataset(root)
    _assert_one_line_naming(info, root / "dataset.json")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([1, 2, 3], ["object"]),
        ({"labels": {"background": 0}}, ["channel_names"]),
        ({"channel_names": {"0": "T1"}}, ["labels"]),
        ({"channel_names": ["T1"], "labels": {"background": 0}}, ["channel_names"]),
        ({"channel_names": {"a": "T1"}, "labels": {"background": 0}}, ["channel_names"]),
        ({"channel_names": {"0": "T1", "2": "T2"}, "labels": {"background": 0}}, ["0..N-1"]),
        ({"channel_names": {"0": "T1"}, "labels": {"background": 0}, "file_ending": ".png"}, [".png"]),
        ({"channel_names": {"0": "T1"}, "labels": {"background": 0}, "numTraining": "many"}, ["numTraining"]),
        ({"channel_names": {"0": "T1"}, "labels": {"background": 0, "ignore": 2, "a": 1}, "numTraining": None},
         ["numTraining"]),
    ],
)
def test_bad_dataset_json_content(tmp_path, data, words):
    root = tmp_path / "d"
    root.mkdir()
    (root / "dataset.json").write_text(json.dumps(data))
    with pytest.raises(InputError) as info:
        load_dataset(root)
    _assert_one_line_naming(info, root / "dataset.json", *words)


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        ({"background": 0, "ignore": 1, "brain": 2}, ["ignore", "highest"]),  # ignore label not highest
        ({"background": 0, "brain": 2}, ["consecutive"]),  # non-consecutive labels
        ({"background": 0, "brain": 1, "vessel": 3, "ignore": 4}, ["consecutive"]),
        ({"brain": 1, "vessel": 2}, ["background"]),
        ({"background": 0, "brain": 1, "vessel": 1}, ["unique"]),
        ({"background": 0, "brain": -1}, ["brain"]),
        ({"background": 0, "brain": 1.5}, ["brain"]),
        ({"background": 0, "brain": True}, ["brain"]),
        ({"background": 0, "brain": "1"}, ["brain"]),
        ({"background": 0, "whole": [1, 2]}, ["region"]),
        ({}, ["labels"]),
    ],
)
def test_bad_labels(tmp_path, labels, words):
    root = _make_dataset(tmp_path / "d", labels=labels)
    with pytest.raises(InputError) as info:
        load_dataset(root)
    _assert_one_line_naming(info, root / "dataset.json", *words)


def test_parse_labels_directly():
    assert parse_labels({"background": 0, "a": 1, "ignore": 2}, "x.json") == {"background": 0, "a": 1, "ignore": 2}
    with pytest.raises(InputError, match="x.json"):
        parse_labels(["background"], "x.json")
    with pytest.raises(InputError, match="unique"):
        parse_labels({"0": "background", "1": "background"}, "x.json")


# ------------------------------------------------------------------------------------------------ case file problems


def test_missing_channel_file_names_it(tmp_path):
    root = _make_dataset(tmp_path / "d")
    missing = root / "imagesTr" / "BRAIN_002_0001.nii.gz"
    missing.unlink()
    spec = load_dataset(root)
    with pytest.raises(InputError) as info:
        spec.training_cases()
    _assert_one_line_naming(info, missing, "channel", "BRAIN_002")
    assert info.value.path == missing


def test_missing_first_channel_file_names_it(tmp_path):
    root = _make_dataset(tmp_path / "d")
    missing = root / "imagesTr" / "BRAIN_001_0000.nii.gz"
    missing.unlink()
    with pytest.raises(InputError) as info:
        load_dataset(root).training_cases()
    _assert_one_line_naming(info, missing, "channel")


def test_missing_test_channel_file_names_it(tmp_path):
    root = _make_dataset(tmp_path / "d")
    missing = root / "imagesTs" / "BRAIN_101_0001.nii.gz"
    missing.unlink()
    with pytest.raises(InputError) as info:
        load_dataset(root).test_cases()
    _assert_one_line_naming(info, missing, "channel")


def test_all_channels_missing_for_a_label(tmp_path):
    """A label in labelsTr whose images are all gone is reported as a missing channel file."""
    root = _make_dataset(tmp_path / "d")
    for c in range(2):
        (root / "imagesTr" / f"BRAIN_002_{c:04d}.nii.gz").unlink()
    with pytest.raises(InputError) as info:
        load_dataset(root).training_cases()
    _assert_one_line_naming(info, root / "imagesTr" / "BRAIN_002_0000.nii.gz", "channel", "BRAIN_002")


def test_extra_channel_file(tmp_path):
    root = _make_dataset(tmp_path / "d")
    extra = root / "imagesTr" / "BRAIN_001_0002.nii.gz"
    _write(extra, np.zeros(SHAPE, np.float32))
    with pytest.raises(InputError) as info:
        load_dataset(root).training_cases()
    _assert_one_line_naming(info, extra, "channel 2")


def test_label_file_missing(tmp_path):
    root = _make_dataset(tmp_path / "d")
    missing = root / "labelsTr" / "BRAIN_001.nii.gz"
    missing.unlink()
    with pytest.raises(InputError) as info:
        load_dataset(root).training_cases()
    _assert_one_line_naming(info, missing, "label", "BRAIN_001")


def test_no_training_images(tmp_path):
    root = _make_dataset(tmp_path / "d", cases=())
    with pytest.raises(InputError) as info:
        load_dataset(root).training_cases()
    _assert_one_line_naming(info, root / "imagesTr", "no training images")


def test_group_channel_files():
    files = [Path(f"/x/{name}") for name in
             ["B_0001.nii.gz", "A_0000.nii.gz", "B_0000.nii.gz", "A_0001.nii.gz", "case_7_0000.nii.gz",
              "case_7_0001.nii.gz"]]
    grouped = group_channel_files(files, 2)
    assert sorted(grouped) == ["A", "B", "case_7"]
    assert [p.name for p in grouped["B"]] == ["B_0000.nii.gz", "B_0001.nii.gz"]
    assert [p.name for p in grouped["case_7"]] == ["case_7_0000.nii.gz", "case_7_0001.nii.gz"]
    # files without the suffix are single-channel cases
    single = group_channel_files([Path("/x/scan.nrrd"), Path("/x/other.mha")])
    assert {k: [p.name for p in v] for k, v in single.items()} == {"scan": ["scan.nrrd"], "other": ["other.mha"]}
    # without num_channels, gaps are still found
    with pytest.raises(InputError, match="A_0001.nii.gz"):
        group_channel_files([Path("/x/A_0000.nii.gz"), Path("/x/A_0002.nii.gz")])
    # two files for the same channel
    with pytest.raises(InputError, match="two files"):
        group_channel_files([Path("/x/A_0000.nii.gz"), Path("/x/A_0000.nrrd")], 1)


def test_dataset_spec_defaults(tmp_path):
    spec = DatasetSpec(tmp_path, {0: "CT"}, {"background": 0, "organ": 1})
    assert spec.file_ending == ".nii.gz"
    assert spec.num_channels == 1
    assert spec.ignore_label is None
    assert spec.test_cases() == []
