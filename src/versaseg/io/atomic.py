"""Atomic file writes: write to a temporary file in the destination folder, then rename into place.

A kill at any moment leaves either the old file or the new one, never a half-written file. Nothing is created before
the write succeeds: the temporary file lies in the nearest folder that already exists, and the output's missing
parent folders are made only when it is moved into place, so a failed command leaves no empty folder behind.
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


def check_writable(path: str | Path, overwrite: bool, expected_bytes: int = 0) -> Path:
    """Refuse to replace an existing output unless ``overwrite``, and check that it can be written there
    (:func:`check_location`); returns the path."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError("output exists; pass --overwrite to replace it", path)
    check_location(path, expected_bytes)
    return path


def existing_ancestor(path: str | Path) -> Path:
    """The nearest of ``path``'s parent folders that exists (``path`` itself excluded); may be a file."""
    ancestor = Path(os.path.abspath(path)).parent
    while not (ancestor.exists() or ancestor.is_symlink()):
        ancestor = ancestor.parent
    return ancestor


def check_location(path: str | Path, expected_bytes: int = 0) -> None:
    """InputError naming ``path`` unless it can be written: its nearest existing parent is a folder (not a file),
    a file can be created in it (probed with a hidden temporary file, so read-only file systems, permissions and
    full disks are all caught) and, when ``expected_bytes`` is given, it has that much free space. Writes nothing
    that stays."""
    path = Path(path)
    ancestor = _temporary_home(path)
    try:
        handle, probe = tempfile.mkstemp(prefix=".versaseg-write-test.", dir=ancestor)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(f"cannot write to folder {ancestor} ({exc.strerror or exc})", path) from None
    if expected_bytes > 0:
        free = shutil.disk_usage(ancestor).free
        if free < expected_bytes:
            raise InputError(f"not enough free space in {ancestor}: the output needs about "
                             f"{_size(expected_bytes)}, {_size(free)} are free", path)


def check_output_folder(folder: str | Path, expected_bytes: int = 0) -> Path:
    """InputError naming ``folder`` unless it is (or can be made) a writable folder with ``expected_bytes`` free."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError("output folder is a file", folder)
    check_location(folder / ".probe", expected_bytes)
    return folder


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path with the same name as ``path``; move it onto ``path`` if the block succeeds.

    The temporary path lies in a hidden folder next to ``path``, or in its nearest existing parent folder while
    ``path``'s folder does not exist yet (either way the same file system, so the final rename is atomic), and
    has the same name, so formats that write a companion data file named after the header (MetaImage ``.mhd`` ->
    ``.raw``/``.zraw``, detached NRRD ``.nhdr`` -> ``.raw.gz``) reference the final names. Companion files are moved
    first and ``path`` last. The temporary folder and everything in it are deleted whether the block succeeds or raises.
    """
    path = Path(path)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=_temporary_home(path)))
    try:
        tmp_path = tmp_dir / path.name
        tmp_path.touch()
        yield tmp_path
        path.parent.mkdir(parents=True, exist_ok=True)
        for companion in sorted(tmp_dir.iterdir()):
            if companion.name != path.name and companion.is_file():
                os.replace(companion, path.parent / companion.name)
        os.replace(tmp_path, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(out: str | Path, overwrite: bool = False, mode: int = 0o755) -> Iterator[Path]:
    """Yield an empty temporary folder (permissions ``mode``); if the block succeeds it becomes ``out``
    (:func:`replace_folder`: an existing ``out`` only with ``overwrite``). Like :func:`atomic_path`, the temporary
    folder lies beside ``out`` or in its nearest existing parent, ``out``'s missing parents are made only at the end,
    and the temporary folder is deleted whether the block succeeds or raises (a kill leaves only a hidden
    ``.NAME.*.tmp``)."""
    out = Path(out)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=_temporary_home(out)))
    try:
        os.chmod(tmp, mode)
        yield tmp
        out.parent.mkdir(parents=True, exist_ok=True)
        replace_folder(tmp, out, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _temporary_home(path: Path) -> Path:
    """Where :func:`atomic_path` keeps its temporary folder: ``path``'s folder, or its nearest existing parent;
    InputError naming ``path`` when that is a file."""
    ancestor = existing_ancestor(path)
    if not ancestor.is_dir():
        raise InputError(f"cannot write here: {ancestor} is a file, not a folder", path)
    return ancestor


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
