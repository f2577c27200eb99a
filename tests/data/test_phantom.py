"""The procedural phantom: determinism, anatomy, contrast at every label boundary, and the written dataset."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from scipy import ndimage

from versaseg.data.case import load_case
from versaseg.data.synthetic.phantom import LABELS, make_phantom, write_phantom_dataset
from versaseg.errors import InputError
from versaseg.io.dataset import load_dataset
from versaseg.io.image import read_volume

SMALL = (40, 44, 36)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom(seed=3)


def test_same_seed_identical_different_seed_different():
    channels_a, label_a = make_phantom(SMALL, (3.0, 3.0, 3.0), seed=5)
    channels_b, label_b = make_phantom(SMALL, (3.0, 3.0, 3.0), seed=5)
    channels_c, label_c = make_phantom(SMALL, (3.0, 3.0, 3.0), seed=6)
    assert np.array_equal(label_a, label_b)
    for name in ("T1", "T2"):
        assert np.array_equal(channels_a[name], channels_b[name])
        assert not np.array_equal(channels_a[name], channels_c[name])
    assert not np.array_equal(label_a, label_c)


def test_shapes_dtypes_and_all_labels_present(phantom):
    channels, label = phantom
    assert set(channels) == {"T1", "T2"}
    for image in channels.values():
        assert image.shape == (64, 72, 56) and image.dtype == np.float32
        assert np.isfinite(image).all() and image.min() >= 0
    assert label.shape == (64, 72, 56) and label.dtype == np.uint8
    assert set(np.unique(label)) == set(LABELS.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_fractions(seed):
    _, label = make_phantom(seed=seed)
    counts = np.bincount(label.ravel(), minlength=5)
    brain = counts[1:].sum()
    assert 0.08 < brain / label.size < 0.3
    assert counts[1] > counts[2] > 0 and counts[1] > counts[3] > 0
    assert 0.003 < counts[4] / brain < 0.05  # thin vessels: a few % of the brain at most


def test_vessels_are_thin(phantom):
    _, label = phantom
    vessels = label == LABELS["vessels"]
    # eroding twice (radius <= 2 voxels) removes almost all of a thin tube
    assert ndimage.binary_erosion(vessels, iterations=2).sum() < 0.05 * vessels.sum()


def test_anatomical_layout(phantom):
    _, label = phantom
    centroid = {name: np.argwhere(label == value).mean(0) for name, value in LABELS.items() if value}
    # cerebellum below and behind the cerebrum, brainstem below the cerebrum, both near the midline
    assert centroid["cerebellum"][2] < centroid["cerebrum"][2] and centroid["cerebellum"][1] < centroid["cerebrum"][1]
    assert centroid["brainstem"][2] < centroid["cerebrum"][2]
    assert abs(centroid["brainstem"][0] - 31.5) < 4 and abs(centroid["cerebellum"][0] - 31.5) < 4
    # the midline fissure splits the top of the cerebrum
    top = label[:, :, int(np.argwhere(label == 1)[:, 2].max()) - 4] == 1
    parts, count = ndimage.label(top)
    sizes = np.bincount(parts.ravel())[1:]
    assert count >= 2 and np.sort(sizes)[-2] > 0.3 * sizes.max()


def _air_noise_std(image: np.ndarray, label: np.ndarray) -> float:
    """Rician noise sigma from the air in the 8 corner boxes (5^3 voxels): magnitude noise there is Rayleigh."""
    corners = np.zeros(image.shape, bool)
    for sx in (slice(0, 5), slice(-5, None)):
        for sy in (slice(0, 5), slice(-5, None)):
            for sz in (slice(0, 5), slice(-5, None)):
                corners[sx, sy, sz] = True
    assert not label[corners].any()
    return float(np.sqrt(np.mean(image[corners].astype(np.float64) ** 2) / 2))


@pytest.mark.parametrize("seed", [0, 4, 9])
def test_every_label_boundary_has_contrast(seed):
    channels, label = make_phantom(seed=seed)
    for value in range(1, 5):
        inside = label == value
        shell = ndimage.binary_dilation(inside) & ~inside  # the 1-voxel shell outside the label
        contrasts = [abs(image[inside].mean() - image[shell].mean()) / _air_noise_std(image, label)
                     for image in channels.values()]
        assert max(contrasts) > 3.0, (value, contrasts)


def test_vessels_bright_in_t1_dark_in_t2(phantom):
    channels, label = phantom
    vessels, brain = label == 4, np.isin(label, (1, 2, 3))
    assert channels["T1"][vessels].mean() > channels["T1"][brain].mean()
    assert channels["T2"][vessels].mean() < 0.5 * channels["T2"][brain].mean()


def test_default_case_is_fast():
    make_phantom(seed=0)  # warm-up (imports, caches)
    start = time.perf_counter()
    make_phantom(seed=11)
    assert time.perf_counter() - start < 1.0


def test_bad_geometry_is_an_input_error():
    with pytest.raises(InputError, match="shape"):
        make_phantom((8, 64, 64))
    with pytest.raises(InputError, match="spacing"):
        make_phantom(spacing=(1.0, 0.0, 1.0))


def test_written_dataset_loads(tmp_path):
    root = write_phantom_dataset(tmp_path / "Dataset900_Phantom", cases=2, test_cases=1, seed=1, shape=SMALL,
                                 spacing=(3.0, 3.0, 3.5))
    spec = load_dataset(root)
    data = json.loads((root / "dataset.json").read_text())
    assert data["channel_names"] == {"0": "T1", "1": "T2"} and data["labels"] == LABELS
    assert data["numTraining"] == 2 and data["file_ending"] == ".nii.gz" and data["description"]
    cases = spec.training_cases()
    assert [c.case_id for c in cases] == ["phantom_000", "phantom_001"]
    assert [p.name for p in cases[0].images] == ["phantom_000_0000.nii.gz", "phantom_000_0001.nii.gz"]
    case = load_case(cases[0], set(spec.labels.values()))
    assert case.image.shape == (2, *SMALL) and case.image.dtype == np.float32
    assert set(np.unique(case.label)) == set(LABELS.values())
    assert np.allclose(case.spacing, (3.0, 3.0, 3.5))
    assert np.abs(case.reference.affine[:3, 3]).min() > 0.5  # a non-trivial origin
    assert [c.case_id for c in spec.test_cases()] == ["phantom_002"]
    label_ts = read_volume(root / "labelsTs" / "phantom_002.nii.gz")
    assert label_ts.shape == SMALL and np.allclose(label_ts.affine, case.reference.affine)
    # the cases differ, and no temporary folder is left behind
    other = load_case(cases[1])
    assert not np.array_equal(case.label, other.label)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dataset900_Phantom"]


def test_dataset_refuses_to_overwrite_unless_asked(tmp_path):
    out = tmp_path / "phantom"
    out.mkdir()  # an empty folder is fine
    write_phantom_dataset(out, cases=1, test_cases=0, shape=SMALL)
    first = read_volume(out / "imagesTr" / "phantom_000_0000.nii.gz").array
    with pytest.raises(InputError, match="not empty"):
        write_phantom_dataset(out, cases=1, test_cases=0, shape=SMALL)
    write_phantom_dataset(out, cases=1, test_cases=0, seed=7, shape=SMALL, overwrite=True)
    second = read_volume(out / "imagesTr" / "phantom_000_0000.nii.gz").array
    assert not np.array_equal(first, second)
    assert not (out / "imagesTs").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["phantom"]
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        write_phantom_dataset(tmp_path / "file.txt", cases=1, test_cases=0, shape=SMALL, overwrite=True)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import versaseg.data.synthetic.phantom as phantom_module

    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("killed")
        return make_phantom(*args, **kwargs)

    monkeypatch.setattr(phantom_module, "make_phantom", failing)
    with pytest.raises(RuntimeError):
        write_phantom_dataset(tmp_path / "phantom", cases=2, test_cases=0, shape=SMALL)
    assert list(tmp_path.iterdir()) == []
