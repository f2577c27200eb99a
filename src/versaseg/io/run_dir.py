"""What every command does with a run directory: prepare it for writing, load its weights safely, pick the device.

A run directory (``versaseg train``, ``versaseg synth train``) holds config.json, model.pt (the network's state
dict), checkpoint.pt (everything a resume needs), metrics.csv, curves.png and optional checkpoints/, samples/ and
tensorboard/. Weights and checkpoints hold only tensors and plain containers, so they load with
``torch.load(..., weights_only=True)``; nothing a user hands in is ever unpickled. Other run directories (a
cascade's) are prepared the same way through a :class:`RunKind` that names their files.
"""

from __future__ import annotations

import pickle
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from versaseg.errors import InputError
from versaseg.io.atomic import atomic_path, check_location, remove_stale_temporaries

RUN_FILES = ("config.json", "model.pt", "checkpoint.pt", "metrics.csv", "curves.png", "tensorboard", "checkpoints",
             "checkpoints.json", "samples")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class RunKind:
    """A kind of run directory: ``name`` in messages, ``files`` all it holds (what --overwrite clears), ``markers``
    the files any one of which marks a folder as such a run, ``resumable`` whether its command has --resume."""

    name: str
    files: tuple[str, ...]
    markers: tuple[str, ...]
    resumable: bool = True


TRAINING_RUN = RunKind("run", RUN_FILES, ("config.json",))


def check_run_dir(run_dir: str | Path, resume: bool, overwrite: bool, kind: RunKind = TRAINING_RUN) -> Path:
    """What :func:`prepare_run_dir` will do is allowed; InputError naming the folder otherwise. Writes nothing.

    ``resume``: it must hold checkpoint.pt. Otherwise a non-empty folder is refused unless ``overwrite``, and even
    then unless it is a versaseg run of ``kind`` (one with a file of ``kind.markers``: config.json for training).
    Either way the folder must be writable (:func:`versaseg.io.atomic.check_location`).
    """
    run_dir = Path(run_dir)
    if resume:
        if not (run_dir / "checkpoint.pt").exists():
            raise InputError("--resume given but there is no checkpoint.pt to resume from", run_dir)
        check_location(run_dir / "checkpoint.pt")
        return run_dir
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"the {kind.name} directory is a file", run_dir)
    check_location(run_dir / "config.json")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            hint = "--resume to continue or --overwrite" if kind.resumable else "--overwrite to replace it"
            raise InputError(f"{kind.name} directory exists and is not empty; pass {hint}", run_dir)
        if not any((run_dir / name).exists() for name in kind.markers):
            raise InputError(f"refusing to --overwrite a non-empty folder that is not a versaseg {kind.name}", run_dir)
    return run_dir


def prepare_run_dir(run_dir: str | Path, resume: bool, overwrite: bool, kind: RunKind = TRAINING_RUN) -> Path:
    """Make ``run_dir`` ready for a run (after :func:`check_run_dir`) and return it: with ``resume`` the stale
    temporaries of a killed run are removed (in the run directory and in its folders of :data:`RUN_FILES`:
    checkpoints/, samples/); with ``overwrite`` only the files of its ``kind`` are cleared (for training
    :data:`RUN_FILES`); the folder is created."""
    run_dir = check_run_dir(run_dir, resume, overwrite, kind)
    if resume:
        remove_stale_temporaries(run_dir)
        for name in kind.files:
            remove_stale_temporaries(run_dir / name)  # nothing for a file or a missing folder
        return run_dir
    if run_dir.exists() and overwrite:
        for name in kind.files:
            path = run_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def save_atomic(obj, path: str | Path) -> None:
    """``torch.save`` to a temporary file, then rename into place."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_safe(path: str | Path, map_location="cpu"):
    """Load a state dict / checkpoint with ``torch.load(..., weights_only=True)``: tensors and plain containers
    only, so nothing a file carries is ever run. InputError naming the file when it is missing, empty, truncated,
    not a PyTorch file, or holds other objects (a pickle payload: refused before any of it runs)."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says what matters
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:  # what torch's weights-only unpickler raises for anything else
        raise InputError(f"refusing to load: it holds more than tensors, and unpickling it could run code "
                         f"({_unpickler_reason(exc)})", path) from None
    except Exception as exc:  # corrupt zip, truncated or empty file, not a PyTorch file ...
        detail = _ANSI.sub("", str(exc)).strip().splitlines()
        what = f"{type(exc).__name__}: {detail[0]}" if detail else f"{type(exc).__name__}, empty or truncated file"
        raise InputError(f"cannot load: not a complete PyTorch file ({what})", path) from None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _unpickler_reason(exc: Exception) -> str:
    """The line of a weights-only UnpicklingError that says what was refused ("Unsupported global: GLOBAL io.open
    was not an allowed global by default"), without torch's advice to load the file unsafely."""
    text = _ANSI.sub("", str(exc))
    text = text.split("WeightsUnpickler error:", 1)[-1]
    for line in text.splitlines():
        line = line.strip()
        if "unsupported" in line.lower() or "GLOBAL" in line:
            return line.split(". Please use")[0].split(" Please use")[0].rstrip(".")
    return "not a weights-only file"


def resolve_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """``--device``: 'auto' -> cuda when available, else cpu; a torch.device passes through unchanged."""
    if isinstance(name, torch.device):
        return name
    if name not in DEVICES:
        raise InputError(f"unknown --device '{name}'; valid: {', '.join(DEVICES)}")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda requested but no CUDA device is available")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())
