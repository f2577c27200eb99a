"""Outputs that cannot be written are refused before any work, in one line, and leave nothing behind.

For ``predict``, ``evaluate --json``, ``complete``, ``train`` and ``data degrade``: an output under a regular file,
in a folder the file system refuses (a real one: /sys, where even root may not create files), and on a read-only
file system (EROFS, simulated at the one place every check probes) each give exit code 2, one ``error: <path>:
<problem>`` line and no new file or folder anywhere.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
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

COMMANDS = ("predict", "evaluate", "complete", "train", "degrade")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("locations")
    dataset = write_tiny_dataset(root / "data", cases=3)
    config = TrainConfig(epochs=1, iterations_per_epoch=2, batch_size=4, augmentation="none", seed=0,
                         network_kwargs={"depth": 2, "base_width": 4})
    train(config, dataset, root / "run", device="cpu")
    sparse = nib.load(dataset / "labelsTr" / "tiny_000.nii.gz")
    array = np.asarray(sparse.dataobj).copy()
    keep = np.zeros(array.shape[2], bool)
    keep[2::4] = True
    array[:, :, ~keep] = 0
    nib.save(nib.Nifti1Image(array, sparse.affine), root / "sparse.nii.gz")
    return {"dataset": dataset, "run": root / "run", "sparse": root / "sparse.nii.gz",
            "image": dataset / "imagesTr" / "tiny_000_0000.nii.gz", "label": dataset / "labelsTr" / "tiny_000.nii.gz"}


def _args(command: str, inputs: dict[str, Path], out_dir: Path) -> tuple[list[str], Path]:
    """The command line of ``command`` writing into ``out_dir``, and the output path it names."""
    if command == "predict":
        out = out_dir / "predictions"
        return ["predict", str(inputs["run"]), str(inputs["image"]), str(inputs["dataset"] / "imagesTr" /
                "tiny_000_0001.nii.gz"), "--out", str(out), "--device", "cpu"], out
    if command == "evaluate":
        out = out_dir / "metrics.json"
        return ["evaluate", str(inputs["label"]), str(inputs["label"]), "--json", str(out)], out
    if command == "complete":
        out = out_dir / "dense.nii.gz"
        return ["complete", str(inputs["image"]), "--label", str(inputs["sparse"]), "--out", str(out),
                "--device", "cpu"], out
    if command == "train":
        out = out_dir / "run"
        return ["train", str(inputs["dataset"]), "--out", str(out), "--epochs", "1", "--iterations", "1",
                "--device", "cpu"], out
    out = out_dir / "sparse.nii.gz"
    return ["data", "degrade", str(inputs["label"]), "--out", str(out), "--every", "4"], out


def _error_line(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("warning: ")]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    return lines[0]


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("command", COMMANDS)
def test_output_under_a_regular_file(inputs, tmp_path, command):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file, not a folder")
    args, out = _args(command, inputs, blocker / "sub")
    before = _tree(tmp_path)
    line = _error_line(CliRunner().invoke(app, args))
    assert str(out) in line and "is a file, not a folder" in line and str(blocker) in line, line
    assert _tree(tmp_path) == before and blocker.read_text() == "a file, not a folder"


def _sys_refuses_files() -> bool:
    try:
        handle, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        return True
    os.close(handle)
    os.unlink(probe)
    return False


@pytest.mark.skipif(not Path("/sys").is_dir() or not _sys_refuses_files(), reason="needs a /sys that refuses files")
@pytest.mark.parametrize("command", COMMANDS)
def test_output_in_a_folder_the_file_system_refuses(inputs, command):
    args, out = _args(command, inputs, Path("/sys/versaseg-test"))
    line = _error_line(CliRunner().invoke(app, args))
    assert str(out) in line and "cannot write to folder /sys" in line, line
    assert not Path("/sys/versaseg-test").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_output_on_a_read_only_file_system(inputs, tmp_path, monkeypatch, command):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("versaseg.io.atomic.tempfile.mkstemp", read_only)
    args, out = _args(command, inputs, tmp_path / "ro" / "deeper")
    line = _error_line(CliRunner().invoke(app, args))
    assert str(out) in line and "Read-only file system" in line, line
    assert _tree(tmp_path) == []


def test_not_enough_free_space_is_refused(tmp_path, monkeypatch):
    from versaseg.errors import InputError
    from versaseg.io.atomic import check_writable

    class Usage:
        free = 1000

    monkeypatch.setattr("versaseg.io.atomic.shutil.disk_usage", lambda _: Usage)
    with pytest.raises(InputError, match="needs about 2.0 MiB, 1000 bytes are free"):
        check_writable(tmp_path / "big.nii", overwrite=False, expected_bytes=2 * 1024 * 1024)
    check_writable(tmp_path / "small.nii", overwrite=False, expected_bytes=500)
    assert _tree(tmp_path) == []


def test_failed_train_leaves_no_run_directory(inputs, tmp_path):
    broken = tmp_path / "broken"
    write_tiny_dataset(broken, cases=2)
    label = nib.load(broken / "labelsTr" / "tiny_000.nii.gz")
    bad = np.asarray(label.dataobj).astype(np.float32)
    bad[0, 0, 0] = 0.5
    nib.save(nib.Nifti1Image(bad, label.affine), broken / "labelsTr" / "tiny_000.nii.gz")
    run = tmp_path / "runs" / "new"
    args = ["train", str(broken), "--out", str(run), "--epochs", "1", "--device", "cpu"]
    line = _error_line(CliRunner().invoke(app, args))
    assert "tiny_000.nii.gz" in line and "non-integer" in line, line
    assert not (tmp_path / "runs").exists()
