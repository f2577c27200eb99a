"""``kill -9`` of `predict`, `complete` and `data degrade` (file and --dataset) at writes and at random times.

After every kill a final output path is missing or holds the file an unkilled run writes (every voxel read, equal to
the reference run's), and the output folder holds nothing else but hidden ``.NAME.*.tmp`` temporaries. The exact
kill points (``KillAt``) always run; the random delays of the slower commands are marked slow.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from faultlib import (  # noqa: E402
    KillAfter,
    KillAt,
    assert_same_json,
    assert_same_volume,
    invoke,
    killed_run,
    leftovers,
    random_delays,
    run_cli,
    tiny_dataset,
    tiny_run,
)

SEED = 17  # of the random kill times
SHAPE = (24, 24, 24)
slow = pytest.mark.slow


def _points(exact, delays, slow_exact=(), slow_delays=None):
    """Parameters: the exact points and ``delays`` always, ``slow_exact`` and ``slow_delays`` marked slow."""
    params = [pytest.param(p, id=str(p)) for p in (*exact, *delays)]
    params += [pytest.param(p, id=str(p), marks=slow) for p in (*slow_exact, *(slow_delays or []))]
    return params


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("kill")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory)


def _reference(folder: Path, args, in_process: bool = False) -> float | None:
    """Run ``args`` (``{out}`` = ``folder``) unkilled: as a process (returns its wall time, which the random kill
    times are fractions of) or, cheaper, in this process (None)."""
    folder.mkdir(parents=True)
    args = [str(a).format(out=folder) for a in args]
    if in_process:
        status, stderr = invoke(*args)
        assert status == 0, stderr
        return None
    result, seconds = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return seconds


def _kill(folder: Path, args, point, seconds: float | None) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    return killed_run([str(a).format(out=folder) for a in args], point, seconds)


def _seconds(point, request, fixture: str) -> float | None:
    """The wall time of an unkilled process run, measured only for a random kill time."""
    return request.getfixturevalue(fixture) if isinstance(point, KillAfter) else None


# -- data degrade, one file -------------------------------------------------------------------------------------------
def _degrade_args(dataset: Path):
    return ["data", "degrade", dataset / "labelsTr" / "tiny_000.nii.gz", "--every", 3, "--noisy-fraction", 0.5,
            "--seed", 1, "--image", dataset / "imagesTr" / "tiny_000_0000.nii.gz", "--out", "{out}/sparse.nii.gz",
            "--report", "{out}/report.json"]


@pytest.fixture(scope="module")
def degrade_reference(root, dataset):
    folder = root / "degrade_ref"
    return folder, _reference(folder, _degrade_args(dataset))


@pytest.mark.parametrize("point", _points(
    [KillAt("mkdtemp", "sparse.nii.gz"), KillAt("replace", "sparse.nii.gz"), KillAt("replace", "report.json")],
    random_delays(SEED, 3), slow_exact=[KillAt("mkdtemp", "sparse.nii.gz", delay=0.002)]))
def test_degrade_file_killed(point, dataset, degrade_reference, tmp_path):
    reference, seconds = degrade_reference
    status = _kill(tmp_path, _degrade_args(dataset), point, seconds)
    assert leftovers(tmp_path, {"sparse.nii.gz", "report.json"}) == []
    label, report = tmp_path / "sparse.nii.gz", tmp_path / "report.json"
    if status == 0:  # a random kill time after the end
        assert label.exists() and report.exists()
    if isinstance(point, KillAt) and not point.delay:  # what an exact point leaves is known
        assert label.exists() == (point.name == "report.json")
        assert not report.exists()
    if label.exists():
        assert_same_volume(label, reference / "sparse.nii.gz")
    if report.exists():
        assert label.exists(), "the report is written after the label"
        assert_same_json(report, reference / "report.json")


# -- data degrade --dataset: a folder built aside and renamed into place ----------------------------------------------
def _degrade_dataset_args(dataset: Path, seed: int = 1):
    return ["data", "degrade", dataset, "--dataset", "--every", 3, "--noisy-fraction", 0.5, "--seed", seed,
            "--out", "{out}/sparse"]


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _assert_same_dataset(folder: Path, reference: Path) -> None:
    assert _files(folder) == _files(reference)
    for name in _files(reference):
        if name.endswith(".nii.gz"):
            assert_same_volume(folder / name, reference / name)
        else:
            assert_same_json(folder / name, reference / name)


@pytest.fixture(scope="module")
def degrade_dataset_reference(root, dataset):
    folder = root / "degrade_dataset_ref"
    seconds = _reference(folder, _degrade_dataset_args(dataset))
    _reference(root / "degrade_dataset_old", _degrade_dataset_args(dataset, seed=2))  # what --overwrite replaces
    return folder / "sparse", root / "degrade_dataset_old" / "sparse", seconds


@pytest.mark.parametrize("point", _points(
    [KillAt("mkdtemp", "tiny_001.nii.gz"), KillAt("replace", "sparse")], random_delays(SEED + 1, 1),
    slow_exact=[KillAt("mkdtemp", "tiny_002.nii.gz", delay=0.002)], slow_delays=random_delays(SEED + 2, 2)))
def test_degrade_dataset_killed(point, dataset, degrade_dataset_reference, tmp_path):
    reference, _, seconds = degrade_dataset_reference
    status = _kill(tmp_path, _degrade_dataset_args(dataset), point, seconds)
    assert leftovers(tmp_path, {"sparse"}) == []
    assert (tmp_path / "sparse").exists() or status != 0
    if isinstance(point, KillAt) and not point.delay:
        assert not (tmp_path / "sparse").exists()
    if (tmp_path / "sparse").exists():
        _assert_same_dataset(tmp_path / "sparse", reference)


@pytest.mark.parametrize("point", _points(
    [KillAt("mkdtemp", "sparse"), KillAt("replace", "dataset.json")], random_delays(SEED + 3, 1),
    slow_delays=random_delays(SEED + 4, 2)))
def test_degrade_dataset_killed_while_overwriting_keeps_the_old_or_the_new_folder(point, dataset,
                                                                                  degrade_dataset_reference, tmp_path):
    """--overwrite of a folder: a kill at any moment leaves the old dataset or the new one at OUT, never none."""
    reference, old, seconds = degrade_dataset_reference
    shutil.copytree(old, tmp_path / "sparse")
    status = _kill(tmp_path, [*_degrade_dataset_args(dataset), "--overwrite"], point, seconds)
    assert leftovers(tmp_path, {"sparse"}) == []
    assert (tmp_path / "sparse").is_dir(), "the kill left no dataset at OUT"
    try:
        _assert_same_dataset(tmp_path / "sparse", reference)
    except AssertionError:
        assert status != 0
        _assert_same_dataset(tmp_path / "sparse", old)


# -- predict ----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory)


def _predict_args(run_dir: Path, dataset: Path):
    return ["predict", run_dir, dataset / "imagesTs", "--out", "{out}/pred", "--probabilities", "--device", "cpu"]


@pytest.fixture(scope="module")
def predict_reference(root, run_dir, dataset) -> Path:
    folder = root / "predict_ref"
    _reference(folder, _predict_args(run_dir, dataset), in_process=True)
    names = sorted(p.name for p in (folder / "pred").iterdir())
    assert names == [f"tiny_{i:03d}{s}.nii.gz" for i in (3, 4) for s in ("", "_prob_background", "_prob_ball",
                                                                         "_prob_box")]
    return folder / "pred"


@pytest.fixture(scope="module")
def predict_seconds(root, run_dir, dataset) -> float:
    return _reference(root / "predict_timed", _predict_args(run_dir, dataset))


@pytest.mark.parametrize("point", _points(
    [KillAt("replace", "tiny_004.nii.gz"), KillAt("mkdtemp", "tiny_003.nii.gz")], random_delays(SEED + 7, 1, low=0.5),
    slow_exact=[KillAt("mkdtemp", "tiny_003_prob_ball.nii.gz", delay=0.002)],
    slow_delays=random_delays(SEED + 5, 3, low=0.5)))
def test_predict_killed(point, run_dir, dataset, predict_reference, request, tmp_path):
    reference = predict_reference
    status = _kill(tmp_path, _predict_args(run_dir, dataset), point, _seconds(point, request, "predict_seconds"))
    out = tmp_path / "pred"
    finals = {p.name for p in reference.iterdir()}
    assert leftovers(out, finals) == []
    present = sorted(p.name for p in out.iterdir() if p.name in finals) if out.is_dir() else []
    assert status != 0 or present == sorted(finals)
    if point == KillAt("replace", "tiny_004.nii.gz"):  # the first case is complete, the second not begun
        assert present == sorted(n for n in finals if n.startswith("tiny_003"))
    for name in present:
        assert_same_volume(out / name, reference / name)


# -- complete ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sparse_label(root, dataset) -> Path:
    full = nib.load(dataset / "labelsTr" / "tiny_000.nii.gz")
    sparse = np.full(full.shape, 9, np.uint8)
    sparse[:, :, 2::4] = np.asarray(full.dataobj)[:, :, 2::4]
    nib.save(nib.Nifti1Image(sparse, full.affine), root / "sparse.nii.gz")
    return root / "sparse.nii.gz"


def _complete_args(dataset: Path, sparse_label: Path):
    images = [dataset / "imagesTr" / f"tiny_000_{c:04d}.nii.gz" for c in range(2)]
    return ["complete", *images, "--label", sparse_label, "--ignore-label", 9, "--no-check", "--device", "cpu",
            "--out", "{out}/dense.nii.gz", "--report", "{out}/report.json"]


@pytest.fixture(scope="module")
def complete_reference(root, dataset, sparse_label) -> Path:
    folder = root / "complete_ref"
    _reference(folder, _complete_args(dataset, sparse_label), in_process=True)
    dense, image = nib.load(folder / "dense.nii.gz"), nib.load(dataset / "imagesTr" / "tiny_000_0000.nii.gz")
    assert dense.shape == SHAPE and set(np.unique(np.asarray(dense.dataobj))) == {0, 1, 2}
    np.testing.assert_array_equal(dense.affine, image.affine)
    return folder


@pytest.fixture(scope="module")
def complete_seconds(root, dataset, sparse_label) -> float:
    return _reference(root / "complete_timed", _complete_args(dataset, sparse_label))


@pytest.mark.parametrize("point", _points(
    [KillAt("replace", "report.json"), KillAt("replace", "dense.nii.gz")], random_delays(SEED + 8, 1, low=0.5),
    slow_exact=[KillAt("mkdtemp", "dense.nii.gz"), KillAt("mkdtemp", "dense.nii.gz", delay=0.002)],
    slow_delays=random_delays(SEED + 6, 3, low=0.5)))
def test_complete_killed(point, dataset, sparse_label, complete_reference, request, tmp_path):
    reference = complete_reference
    status = _kill(tmp_path, _complete_args(dataset, sparse_label), point,
                   _seconds(point, request, "complete_seconds"))
    assert leftovers(tmp_path, {"dense.nii.gz", "report.json"}) == []
    dense, report = tmp_path / "dense.nii.gz", tmp_path / "report.json"
    assert status != 0 or (dense.exists() and report.exists())
    if isinstance(point, KillAt) and not point.delay:
        assert dense.exists() == (point.name == "report.json")
        assert not report.exists()
    if dense.exists():
        assert_same_volume(dense, reference / "dense.nii.gz")
    if report.exists():
        assert dense.exists()
        assert_same_json(report, reference / "report.json", ignore=("seconds", "time_split_s"))
