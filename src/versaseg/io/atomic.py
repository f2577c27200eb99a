"""Atomic file writes: write to a temporary file in the destination folder, then rename into place.

A kill at any moment leaves either the old file or the new one, never a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from versaseg.errors import InputError


def check_writable(path: str | Path, overwrite: bool) -> Path:
    """Refuse to replace an existing output unless ``overwrite``; returns the path."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError("output exists; pass --overwrite to replace it", path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same suffixes); rename it onto ``path`` if the block succeeds.

    The temporary file is deleted if the block raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name.split('.')[0]}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
