"""Every command that reads images refuses every file of the bad-input corpus the same way.

The corpus (tests/corpus/make_bad_inputs.py: truncated, garbage, zero/negative/NaN spacing, huge headers, 2D and 4D,
complex and RGB voxels, bad offsets, broken NRRD/MetaImage, an empty DICOM folder, ...) is handed to ``predict``
(as the image), ``complete`` (as the image and as the label), ``evaluate`` (as the prediction), ``data degrade`` (as
the label and as ``--image``) and ``train`` (as a training image and as a training label). Each run must exit with
code 2, print one ``error: <that file>: <problem>`` line with the problem the corpus names, show no traceback, and
leave no output behind. :data:`ROLES` x the corpus is the "bad files" row of docs/reliability.md.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from versaseg.cli.main import app
from versaseg.tasks.training import train
from versaseg.training.config import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import write_tiny_dataset  # noqa: E402
from corpus.make_bad_inputs import make_corpus  # noqa: E402

ROLES = ("predict image", "complete image", "complete label", "evaluate prediction", "degrade label",
         "degrade image", "train image", "train label")


def _corpus_names() -> list[str]:
    """The corpus' file names, for the test ids (the corpus is made once into a temporary folder)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        return [item.path.name for item in make_corpus(folder)]


NAMES = _corpus_names()
# train reads a dataset's files, all with its file ending (.nii.gz here): only those corpus files apply
CASES = [(name, role) for role in ROLES for name in NAMES if not role.startswith("train") or name.endswith(".nii.gz")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("matrix")
    corpus = {item.path.name: item for item in make_corpus(root / "corpus")}
    dataset = write_tiny_dataset(root / "data", cases=2, test_cases=0)
    for path in (dataset / "imagesTr").glob("*_0001.nii.gz"):
        path.unlink()
    spec = json.loads((dataset / "dataset.json").read_text())
    spec["channel_names"] = {"0": "T1"}
    (dataset / "dataset.json").write_text(json.dumps(spec))
    config = TrainConfig(epochs=1, iterations_per_epoch=1, batch_size=2, augmentation="none", seed=0,
                         network_kwargs={"depth": 2, "base_width": 4})
    train(config, dataset, root / "run", device="cpu")
    label = nib.load(dataset / "labelsTr" / "tiny_000.nii.gz")
    sparse = np.asarray(label.dataobj).copy()
    sparse[:, :, [z for z in range(sparse.shape[2]) if z % 4 != 2]] = 0
    nib.save(nib.Nifti1Image(sparse, label.affine), root / "sparse.nii.gz")
    return {"root": root, "corpus": corpus, "dataset": dataset, "run": root / "run", "sparse": root / "sparse.nii.gz",
            "image": dataset / "imagesTr" / "tiny_000_0000.nii.gz", "label": dataset / "labelsTr" / "tiny_000.nii.gz"}


def _dataset_with(setup: dict, bad: Path, where: Path, folder: str, name: str) -> tuple[Path, Path]:
    """A copy of the tiny dataset in ``where`` whose ``folder/name`` is the bad file; returns (dataset, that path)."""
    dataset = where / "data"
    shutil.copytree(setup["dataset"], dataset)
    target = dataset / folder / name
    target.unlink()
    if bad.exists():
        shutil.copyfile(bad, target)
    return dataset, target


def _command(role: str, setup: dict, bad: Path, work: Path) -> tuple[list[str], Path]:
    """The command line of ``role`` with ``bad`` in it and the path the error must name."""
    out = work / "out"
    if role == "predict image":
        return ["predict", str(setup["run"]), str(bad), "--out", str(out / "pred"), "--device", "cpu"], bad
    if role == "complete image":
        return ["complete", str(bad), "--label", str(setup["sparse"]), "--out", str(out / "dense.nii.gz"),
                "--device", "cpu"], bad
    if role == "complete label":
        return ["complete", str(setup["image"]), "--label", str(bad), "--out", str(out / "dense.nii.gz"),
                "--device", "cpu"], bad
    if role == "evaluate prediction":
        return ["evaluate", str(bad), str(setup["label"]), "--json", str(out / "metrics.json")], bad
    if role == "degrade label":
        return ["data", "degrade", str(bad), "--out", str(out / "sparse.nii.gz"), "--every", "4"], bad
    if role == "degrade image":
        return ["data", "degrade", str(setup["label"]), "--image", str(bad), "--out", str(out / "sparse.nii.gz"),
                "--every", "4"], bad
    folder, name = ("imagesTr", "tiny_001_0000.nii.gz") if role == "train image" else ("labelsTr", "tiny_001.nii.gz")
    dataset, target = _dataset_with(setup, bad, work, folder, name)
    return ["train", str(dataset), "--out", str(out / "run"), "--epochs", "1", "--device", "cpu"], target


@pytest.mark.parametrize(("name", "role"), CASES)
def test_bad_file_gets_one_clean_error(setup, tmp_path, role, name):
    item = setup["corpus"][name]
    args, named = _command(role, setup, item.path, tmp_path)
    result = CliRunner().invoke(app, args)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert result.exit_code == 2, f"{item.problem}: {result.output}"
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    # progress lines of finished steps may come first (off a TTY, one per step); the error is one line, the last
    assert len(errors) == 1 and lines[-1] == errors[0], (item.problem, result.stderr)
    assert errors[0].startswith(f"error: {named}: "), (item.problem, errors[0])
    if not item.path.exists():  # "file not found" (readers), "input not found" (predict), "channel file missing"
        expected = ("not found", "missing")
    elif item.path.is_dir() and role == "evaluate prediction":  # evaluate pairs files with files, folders with folders
        expected = ("is a folder but",)
    else:
        expected = (item.expected,)
    assert any(word in errors[0] for word in expected), (item.problem, errors[0])
    assert not (tmp_path / "out").exists()


# -- readable files whose content is wrong: the shared checks of versaseg.io.checks, the same in every command -------
# (name, what is wrong, the roles it is given in, what the error must say); every file is made from the tiny case
CONTENT = [
    ("nan_image.nii.gz", "an image with a NaN voxel",
     ("predict image", "complete image", "degrade image", "train image"), "NaN or Inf"),
    ("inf_image.nii.gz", "an image with an infinite voxel", ("predict image", "complete image", "degrade image"),
     "NaN or Inf"),
    ("fractional_label.nii.gz", "a label map holding 0.5", ("complete label", "evaluate prediction", "degrade label",
                                                            "train label"), "non-integer"),
    ("negative_label.nii.gz", "a label map holding -1", ("complete label", "evaluate prediction", "degrade label",
                                                         "train label"), "negative"),
    ("nan_label.nii.gz", "a float label map holding NaN", ("complete label", "evaluate prediction", "degrade label",
                                                           "train label"), "NaN or Inf"),
    ("unknown_value.nii.gz", "label value 7, which dataset.json does not define", ("train label",), "[7]"),
    ("shifted.nii.gz", "the right shape but an origin 5 mm away", ("complete label", "evaluate prediction",
                                                                  "degrade image", "train label"), "geometry"),
    ("wrong_shape.nii.gz", "one slice fewer than the image", ("complete label", "evaluate prediction",
                                                             "degrade image", "train label"), "shape"),
]
CONTENT_CASES = [(name, role) for name, _, roles, _ in CONTENT for role in roles]


def _content_file(setup: dict, name: str) -> Path:
    """Write the content-corpus file ``name`` beside the corpus (once) and return it."""
    path = setup["root"] / "content" / name
    if path.exists():
        return path
    path.parent.mkdir(exist_ok=True)
    image, label = nib.load(setup["image"]), nib.load(setup["label"])
    pixels = np.asarray(image.dataobj).astype(np.float32)
    labels = np.asarray(label.dataobj).astype(np.int16)
    affine = label.affine
    if name in ("nan_image.nii.gz", "inf_image.nii.gz"):
        pixels[3, 4, 5] = np.nan if name.startswith("nan") else np.inf
        nib.save(nib.Nifti1Image(pixels, image.affine), path)
        return path
    if name == "fractional_label.nii.gz":
        array = labels.astype(np.float32)
        array[1, 1, 1] = 0.5
    elif name == "nan_label.nii.gz":
        array = labels.astype(np.float32)
        array[1, 1, 1] = np.nan
    elif name == "negative_label.nii.gz":
        array = labels.copy()
        array[1, 1, 1] = -1
    elif name == "unknown_value.nii.gz":
        array = labels.copy()
        array[1, 1, 1] = 7
    elif name == "shifted.nii.gz":
        array, affine = labels, affine.copy()
        affine[0, 3] += 5.0
    else:
        array = labels[:, :, :-1]
    nib.save(nib.Nifti1Image(array, affine), path)
    return path


@pytest.mark.parametrize(("name", "role"), CONTENT_CASES)
def test_bad_content_gets_the_same_clean_error_everywhere(setup, tmp_path, role, name):
    problem, expected = next((p, e) for n, p, _, e in CONTENT if n == name)
    bad = _content_file(setup, name)
    args, named = _command(role, setup, bad, tmp_path)
    result = CliRunner().invoke(app, args)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert result.exit_code == 2, f"{problem}: {result.output}"
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    assert len(errors) == 1 and lines[-1] == errors[0], (problem, result.stderr)
    assert errors[0].startswith(f"error: {named}: ") and expected in errors[0], (problem, errors[0])
    assert not (tmp_path / "out").exists()
