"""A weights file or checkpoint carrying a pickle payload is refused without running it, by every command that loads
one: exit code 2, one line ``error: <file>: <problem>`` on stderr, no traceback, nothing written, and the payload's
marker file never created.

The payload is an object whose ``__reduce__`` is ``open(MARKER, "w")``: unpickling it with anything but
``torch.load(..., weights_only=True)`` creates MARKER (checked below, so the tests can fail). It rides in a real
state dict / checkpoint of a tiny run, saved with ``torch.save`` (zip) or plain ``pickle.dump``.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from faultlib import invoke, one_thread, run_cli, stderr_error_line, tiny_dataset, tiny_run  # noqa: E402

SMALL = {"depth": 2, "base_width": 4}


class CreatesMarker:
    """Unpickling this object calls ``open(path, "w")``: the file exists afterwards iff the pickle ran."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def poison(path: Path, marker: Path, fmt: str = "torch") -> None:
    """Add the payload to the (state) dict in ``path`` and save it back with torch.save or plain pickle."""
    content = dict(torch.load(path, weights_only=True))
    content["extra"] = CreatesMarker(marker)
    if fmt == "torch":
        torch.save(content, path)
    else:
        with path.open("wb") as f:
            pickle.dump(content, f)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pickles")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return tiny_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory) -> Path:
    """One epoch of two iterations with a snapshot: model.pt, checkpoint.pt, checkpoints/epoch_001.pt."""
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope="module")
def synth_run(root, dataset) -> Path:
    """A pix2pix T1 -> T2 run of one iteration."""
    from versaseg.tasks.synthesis import train_synthesis
    from versaseg.training.config import SynthConfig

    config = SynthConfig(source="T1", target="T2", epochs=1, iterations_per_epoch=1, batch_size=2, sample_every=0,
                         val_fraction=0, network_kwargs=SMALL, disc_channels=4)
    with one_thread():
        train_synthesis(config, dataset, root / "synth", device="cpu", show_progress=False)
    return root / "synth"


@pytest.fixture(scope="module")
def cascade_run(root, seg_run, dataset) -> Path:
    """A cascade run directory (cascade.json + two stage runs) made of the tiny run; the stages are never used."""
    from versaseg.training.cascade import CascadeInfo, CascadeSettings

    out = root / "cascade"
    for stage in ("stage1", "stage2"):
        shutil.copytree(seg_run, out / stage)
    labels = json.loads((seg_run / "config.json").read_text())["labels"]
    CascadeInfo(CascadeSettings(), labels, ["T1", "T2"], labels, [2.0, 2.0, 2.0], str(dataset)).save(out)
    return out


# (name, fixture of the run, file to poison inside it, arguments after the run dir ({run}, {out}, {data}))
COMMANDS = [
    ("predict", "seg_run", "model.pt", ["predict", "{run}", "{data}/imagesTs", "--out", "{out}", "--device", "cpu"]),
    ("train-resume", "seg_run", "checkpoint.pt", ["train", "{data}", "--out", "{run}", "--resume", "--epochs", 2,
                                                  "--device", "cpu"]),
    ("explain-model", "seg_run", "model.pt", ["explain", "{run}", "{data}/imagesTs/tiny_003_0000.nii.gz",
                                              "{data}/imagesTs/tiny_003_0001.nii.gz", "--out", "{out}",
                                              "--device", "cpu"]),
    ("explain-snapshot", "seg_run", "checkpoints/epoch_001.pt", ["explain", "{run}",
                                                                 "{data}/imagesTs/tiny_003_0000.nii.gz",
                                                                 "{data}/imagesTs/tiny_003_0001.nii.gz", "--out",
                                                                 "{out}", "--device", "cpu"]),
    ("synth-apply", "synth_run", "model.pt", ["synth", "apply", "{run}", "{data}/imagesTs/tiny_003_0000.nii.gz",
                                              "--out", "{out}/t2.nii.gz", "--device", "cpu"]),
    ("synth-augment", "synth_run", "model.pt", ["synth", "augment", "{run}", "{data}", "--out", "{out}",
                                                "--device", "cpu"]),
    ("synth-train-resume", "synth_run", "checkpoint.pt", ["synth", "train", "{data}", "--source", "T1", "--target",
                                                          "T2", "--out", "{run}", "--resume", "--epochs", 2,
                                                          "--device", "cpu"]),
    ("cascade-predict", "cascade_run", "stage2/model.pt", ["cascade", "predict", "{run}", "{data}/imagesTs",
                                                           "--out", "{out}", "--device", "cpu"]),
]
# the real process for two (what a user sees: no traceback, no warning line), in-process (cheaper) for the rest
SUBPROCESS = {("predict", "pickle"), ("train-resume", "torch")}


def _case(name, fmt="torch"):
    return pytest.param(name, fmt, id=f"{name}-{fmt}")


@pytest.mark.parametrize(("name", "fmt"), [_case(n) for n, *_ in COMMANDS] + [_case("predict", "pickle"),
                                                                          _case("train-resume", "pickle")])
def test_a_pickle_payload_is_refused_without_running_it(name, fmt, request, dataset, tmp_path):
    _, fixture, target, args = next(c for c in COMMANDS if c[0] == name)
    run = tmp_path / "run"
    shutil.copytree(request.getfixturevalue(fixture), run)
    marker, out = tmp_path / "MARKER", tmp_path / "out"
    poison(run / target, marker, fmt)
    before = _snapshot(run)
    args = [str(a).format(run=run, out=out, data=dataset) for a in args]
    if (name, fmt) in SUBPROCESS:
        result, _ = run_cli(*args)
        status, stderr = result.returncode, result.stderr
    else:
        status, stderr = invoke(*args)
    assert not marker.exists(), "the payload ran"
    assert status == 2, stderr
    line = stderr_error_line(stderr)
    assert line.startswith(f"error: {run / target}: refusing to load"), line
    assert not out.exists(), "an output was written"
    assert _snapshot(run) == before, "the run directory changed"


@pytest.mark.parametrize("fmt", ["torch", "pickle"])
def test_the_payload_runs_when_loaded_unsafely(fmt, seg_run, tmp_path):
    """The check above is real: loading the poisoned file without weights_only creates the marker."""
    path, marker = tmp_path / "model.pt", tmp_path / "MARKER"
    shutil.copy(seg_run / "model.pt", path)
    poison(path, marker, fmt)
    assert not marker.exists()
    if fmt == "torch":
        loaded = torch.load(path, weights_only=False)
    else:
        with path.open("rb") as f:
            loaded = pickle.load(f)
    loaded["extra"].close()  # the file object the payload opened
    assert marker.exists()
