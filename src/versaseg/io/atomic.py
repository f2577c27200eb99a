"""Atomic file writes: write to a temporary file in the destination folder, then rename into place.

A kill at any moment leaves either the old file or the new one, never a half-written file.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import shutil
import sys
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
    """Yield a temporary path with the same name as ``path``; move it onto ``path`` if the block succeeds.

    The temporary path lies in a hidden folder next to ``path`` (same file system, so the final rename is atomic) and
    has the same name, so formats that write a companion data file named after the header (MetaImage ``.mhd`` ->
    ``.raw``/``.zraw``, detached NRRD ``.nhdr`` -> ``.raw.gz``) reference the final names. Companion files are moved
    first and ``path`` last. The temporary folder and everything in it are deleted whether the block succeeds or raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp_path = tmp_dir / path.name
        tmp_path.touch()
        yield tmp_path
        for companion in sorted(tmp_dir.iterdir()):
            if companion.name != path.name and companion.is_file():
                os.replace(companion, path.parent / companion.name)
        os.replace(tmp_path, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, UTF-8 whatever the locale (reports hold '±', 'µ', ...)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the hidden ``.NAME.*.tmp`` folders that :func:`atomic_path` leaves when a process is killed mid-write.

    Called when a run is resumed, so a ``kill -9`` leaves nothing behind once the work continues. Returns what was
    removed.
    """
    folder = Path(folder)
    stale = [p for p in folder.glob(".*.tmp") if p.is_dir()] if folder.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def replace_folder(tmp: str | Path, out: str | Path, overwrite: bool = True) -> None:
    """Rename the finished folder ``tmp`` onto ``out``; an existing ``out`` ends up in ``tmp`` and is deleted.

    With ``overwrite=False`` an existing ``out`` is an InputError. On Linux the two folders are swapped in one
    atomic step (``renameat2(RENAME_EXCHANGE)``), so even a ``kill -9`` leaves ``out`` the old or the new folder.
    Elsewhere (or on a file system without the exchange) the old folder is moved aside first: an error in the
    final rename puts it back, but a kill between the two renames leaves no ``out``, the old folder hidden in
    ``.NAME.*.old.tmp``.
    """
    tmp, out = Path(tmp), Path(out)
    if not (out.exists() or out.is_symlink()):
        os.replace(tmp, out)
        return
    if not overwrite:
        raise InputError("output exists; pass --overwrite to replace it", out)
    if out.is_dir() and not out.is_symlink() and _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old.tmp", dir=out.parent))
    old = trash / out.name
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old, out)
        raise
    shutil.rmtree(trash, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` atomically (Linux ``renameat2`` with ``RENAME_EXCHANGE``); False where this
    system or file system cannot, OSError for any other failure."""
    renameat2 = _renameat2()
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


@functools.cache
def _renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28, musl >= 1.2.3
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function
