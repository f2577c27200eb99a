"""Atomic checkpoint I/O. Checkpoints hold only tensors and plain containers, so they load with weights_only=True."""

from __future__ import annotations

from pathlib import Path

import torch

from versaseg.errors import InputError
from versaseg.io.atomic import atomic_path


def save_atomic(obj, path: str | Path) -> None:
    """``torch.save`` to a temporary file, then rename into place."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_safe(path: str | Path, map_location="cpu"):
    """Load a state dict / checkpoint without unpickling arbitrary objects; InputError if missing or corrupt."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt zip, unsafe pickle, truncated file ...
        raise InputError(f"cannot load ({type(exc).__name__}: {str(exc).splitlines()[0]})", path) from None
