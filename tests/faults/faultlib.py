"""Kill the real CLI (``python -m versaseg.cli.main``) with SIGKILL and check what it leaves on disk.

Two kinds of kill points:

- :class:`KillAt`: at an exact write (the temporary of NAME is created, or is about to be renamed onto NAME), by
  ``inject/sitecustomize.py`` in the killed process itself: deterministic, and the points where a non-atomic write
  would leave a truncated file;
- :class:`KillAfter`: ``kill -9`` from this process after a delay (a fraction of a reference run's wall time, drawn
  from a seeded generator by :func:`random_delays`).

After a kill a final output path may be missing or hold a complete file; the only other thing allowed is the
hidden ``.NAME.*.tmp`` folders of interrupted writes (removed on ``--resume``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import versaseg

INJECT = Path(__file__).resolve().parent / "inject"
SRC = Path(versaseg.__file__).resolve().parents[1]
TIMEOUT_S = 300


@dataclass(frozen=True)
class KillAt:
    """SIGKILL at the ``nth`` ``event`` ("mkdtemp" | "replace") of ``name``, ``delay`` s later (0: at once)."""

    event: str
    name: str
    nth: int = 1
    delay: float = 0.0

    def __str__(self) -> str:
        return f"{self.event}-{self.name}-{self.nth}" + (f"+{self.delay * 1000:.0f}ms" if self.delay else "")


@dataclass(frozen=True)
class KillAfter:
    """``kill -9`` after ``fraction`` of the reference run's wall time."""

    fraction: float

    def __str__(self) -> str:
        return f"after-{self.fraction:.3f}"


def random_delays(seed: int, count: int, low: float = 0.3, high: float = 0.95) -> list[KillAfter]:
    """``count`` reproducible kill times, as fractions of a reference run, uniform in [low, high]."""
    return [KillAfter(round(float(f), 3)) for f in np.random.default_rng(seed).uniform(low, high, count)]


def cli_env(kill: KillAt | None = None) -> dict[str, str]:
    """The environment of a CLI child: this checkout's sources first on PYTHONPATH (plus the injector when
    ``kill``), one OpenMP thread (the same in every run a test compares, and no spinning threads on a busy CPU)."""
    env = dict(os.environ)
    paths = [str(SRC)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.pop("VERSASEG_KILL_AT", None)
    if kill is not None:
        paths.insert(0, str(INJECT))
        env["VERSASEG_KILL_AT"] = f"{kill.event} {kill.name} {kill.nth} {kill.delay}"
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["OMP_NUM_THREADS"] = "1"
    return env


def cli_args(*args) -> list[str]:
    return [sys.executable, "-m", "versaseg.cli.main", *map(str, args)]


def run_cli(*args) -> tuple[subprocess.CompletedProcess, float]:
    """Run the CLI to its end; returns (result, wall seconds)."""
    started = time.perf_counter()
    result = subprocess.run(cli_args(*args), capture_output=True, text=True, encoding="utf-8", errors="replace",
                            env=cli_env(), timeout=TIMEOUT_S)
    return result, time.perf_counter() - started


@contextlib.contextmanager
def one_thread():
    """Run torch in this process with one thread, as the CLI children do (the same sums in the same order)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def invoke(*args) -> tuple[int, str]:
    """Run the CLI in this process (no start-up cost; one torch thread); returns (exit code, stderr)."""
    from typer.testing import CliRunner

    from versaseg.cli.main import app

    with one_thread():
        result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


_SHARED: dict[str, Path] = {}


def shared(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    """``build(folder)`` once per test session (the fault modules share their tiny dataset and run)."""
    if name not in _SHARED:
        _SHARED[name] = build(tmp_path_factory.mktemp(name))
    return _SHARED[name]


def tiny_dataset(tmp_path_factory) -> Path:
    """3 training + 2 test cases of 24^3 (tests/conftest.py's balls and boxes, two channels)."""
    from conftest import write_tiny_dataset

    return shared(tmp_path_factory, "fault_data", lambda folder: write_tiny_dataset(
        folder / "Dataset001_Tiny", cases=3, test_cases=2, shape=(24, 24, 24)))


def tiny_run(tmp_path_factory) -> Path:
    """A run of one epoch of two iterations on :func:`tiny_dataset` (model.pt, checkpoint.pt, a snapshot)."""
    def build(folder: Path) -> Path:
        from versaseg.tasks.training import train
        from versaseg.training.config import TrainConfig

        config = TrainConfig(epochs=1, iterations_per_epoch=2, batch_size=2, augmentation="none", val_fraction=0,
                             save_every=1, network_kwargs={"depth": 2, "base_width": 4})
        with one_thread():
            train(config, tiny_dataset(tmp_path_factory), folder / "run", device="cpu")
        return folder / "run"

    return shared(tmp_path_factory, "fault_run", build)


def killed_run(args, point: KillAt | KillAfter, reference_s: float | None = None) -> int:
    """Run the CLI with ``args`` and kill it at ``point``; returns the exit status (-9 when killed; 0 when a
    :class:`KillAfter` came after the end: the outputs must then be the reference's)."""
    if isinstance(point, KillAt):
        result = subprocess.run(cli_args(*args), capture_output=True, text=True, encoding="utf-8", errors="replace",
                                env=cli_env(point), timeout=TIMEOUT_S)
        allowed = (-signal.SIGKILL, 0) if point.delay else (-signal.SIGKILL,)  # a delayed kill may come too late
        assert result.returncode in allowed, (
            f"{point}: exit {result.returncode}, not killed: the kill point was never reached\n"
            f"{result.stderr[-2000:]}")
        return result.returncode
    assert reference_s is not None
    proc = subprocess.Popen(cli_args(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env())
    try:
        proc.wait(timeout=point.fraction * reference_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode in (0, -signal.SIGKILL), stderr.decode(errors="replace")[-2000:]
    return proc.returncode


def leftovers(folder: Path, finals: set[str]) -> list[str]:
    """Names in ``folder`` that are neither a final output name nor the hidden temporary of an interrupted write."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in finals and not (p.name.startswith(".") and p.name.endswith(".tmp") and p.is_dir()))


def temporaries(folder: Path) -> list[Path]:
    """Every hidden ``.*.tmp`` left anywhere under ``folder``."""
    return sorted(p for p in folder.rglob(".*.tmp")) if folder.is_dir() else []


def assert_same_volume(path: Path, reference: Path) -> None:
    """``path`` reads completely (nibabel loads every voxel, then the project's reader) and equals ``reference``."""
    import nibabel as nib

    from versaseg.io.image import read_volume

    got, want = nib.load(path), nib.load(reference)
    data = np.asarray(got.dataobj)  # a truncated .nii.gz fails here
    assert data.shape == want.shape, f"{path}: shape {data.shape}, expected {want.shape}"
    np.testing.assert_array_equal(data, np.asarray(want.dataobj), err_msg=str(path))
    np.testing.assert_array_equal(got.affine, want.affine, err_msg=str(path))
    np.testing.assert_array_equal(read_volume(path).array, read_volume(reference).array, err_msg=str(path))


def assert_same_json(path: Path, reference: Path, ignore: tuple[str, ...] = ()) -> None:
    """``path`` parses and equals ``reference``, except the top-level keys ``ignore`` (timings)."""
    got, want = json.loads(path.read_text(encoding="utf-8")), json.loads(reference.read_text(encoding="utf-8"))
    for key in ignore:
        got.pop(key, None)
        want.pop(key, None)
    assert got == want, path


def stderr_error_line(stderr: str) -> str:
    """The one line a user mistake leaves on stderr: progress lines of finished steps may come first
    ("load cases 2/3 case (0 s)"), nothing else; no traceback."""
    import re

    progress = re.compile(r"[\w ]+ \d+(/\d+)? \w+ \(\d+ s\)")
    lines = [ln.split("\r")[-1] for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln.strip() and not progress.fullmatch(ln)]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]
