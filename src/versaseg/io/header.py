"""Header checks that run before a reader allocates voxel memory.

Every reader in :mod:`versaseg.io.image` reads the header first (nibabel's lazy load for NIfTI, SimpleITK's
``ReadImageInformation`` for NRRD/MetaImage/DICOM) and passes it through these checks: the declared shape (every
dimension >= 1, 3D or squeezable to 3D, at most :func:`max_voxels` voxels), the voxel type (real numbers), the voxel
spacing (finite, > 0), the orientation (a finite, invertible affine/direction) and, for uncompressed data, that the file
holds as many bytes as the header declares. A failed check raises :class:`InputError` naming the file and saying what
is wrong, so a corrupt or hostile header never turns into a MemoryError, a traceback or a silently wrong volume.

This module holds the checks every format shares and the limit; :mod:`versaseg.io.header_nifti` reads and checks
NIfTI headers, :mod:`versaseg.io.header_itk` NRRD / MetaImage / DICOM headers.

The voxel limit is :data:`DEFAULT_MAX_VOXELS` unless the environment variable ``VERSASEG_MAX_VOXELS`` or
:func:`set_max_voxels` (the CLI's global ``--max-voxels N``) says otherwise.

A compressed file (``.nii.gz``, gzip NRRD, zlib MetaImage) cannot be checked byte for byte before decompressing it,
but deflate never compresses more than 1032:1, so a header that declares more voxel data than that bound allows for
the file's size is refused before anything is allocated (:func:`check_deflate_bound`). The gzip trailer's ISIZE field
(uncompressed size mod 2**32) is deliberately not used: a multi-member gzip file (bgzip, concatenated members; nibabel
reads them) stores only the last member's size there, and a truncated file ends in arbitrary compressed bytes, so the
field neither proves a file complete nor a file short. Within the bound, the read itself finds a short stream, and
:func:`gzip_payload_size` measures it (in small chunks) for the error message.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from versaseg.errors import InputError

# 1.2e9 voxels: a 1064^3 volume, far above any CT/MR scan (a 0.5 mm whole-body CT is ~1000 x 1000 x 4000 = 4e9
# only at the very extreme; typical volumes are 1e6..1e8). Preprocessing makes at least one float32 copy of a
# volume, 4.8 GB at this size, so a header that declares more is far more likely corrupt or hostile than real.
DEFAULT_MAX_VOXELS = 1_200_000_000
ENV_MAX_VOXELS = "VERSASEG_MAX_VOXELS"
_max_voxels_override: int | None = None

DEFLATE_MAX_RATIO = 1032  # deflate's largest possible compression ratio (runs of one byte value)
_SUPPORTED_KINDS = "biuf"  # bool, signed, unsigned, floating point


# ------------------------------------------------------------------------------------------------------- the limit


def parse_voxel_count(text: str | int | float) -> int:
    """A positive voxel count from ``text`` ('1200000000', '2e9', 5000); ValueError otherwise."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"must be a positive number of voxels, got {text!r}")
    return int(value)


def set_max_voxels(value: int | None) -> None:
    """Set the voxel limit of this process (None: back to ``VERSASEG_MAX_VOXELS`` or the default)."""
    global _max_voxels_override
    _max_voxels_override = None if value is None else parse_voxel_count(value)


def max_voxels() -> int:
    """The largest number of voxels a header may declare: :func:`set_max_voxels`, else the environment variable
    ``VERSASEG_MAX_VOXELS``, else :data:`DEFAULT_MAX_VOXELS`."""
    if _max_voxels_override is not None:
        return _max_voxels_override
    text = os.environ.get(ENV_MAX_VOXELS, "").strip()
    if not text:
        return DEFAULT_MAX_VOXELS
    try:
        return parse_voxel_count(text)
    except ValueError:
        raise InputError(f"{ENV_MAX_VOXELS}={text!r} is not a positive number of voxels") from None


def format_count(count: float) -> str:
    """A count in short scientific notation, three significant digits: 6.4e13, 1.2e9, 1.23e8, 1e3."""
    mantissa, exponent = f"{float(count):.2e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


# ------------------------------------------------------------------------------------------- generic geometry checks


def squeezed_shape(shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The 3D shape :func:`versaseg.io.image._squeeze_to_3d` makes of an array of ``shape`` (trailing size-1
    dimensions beyond the third dropped), or None if it makes none (a 2D image is not a volume)."""
    shape = tuple(shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape if len(shape) == 3 else None


def check_shape(shape: tuple[int, ...], path: Path) -> tuple[int, ...]:
    """Check a declared ``shape``: every dimension >= 1, 3D after dropping trailing singleton dimensions, at most
    :func:`max_voxels` voxels. Returns the 3D shape."""
    shape = tuple(int(s) for s in shape)
    shown = " x ".join(map(str, shape))
    if not shape:
        raise InputError("header declares no dimensions", path)
    if any(s < 1 for s in shape):
        raise InputError(f"header declares shape {shown}; every dimension must be at least 1", path)
    spatial = squeezed_shape(shape)
    if spatial is None:
        extra = ""
        if len(shape) > 3 and spatial is None:
            extra = f", {math.prod(shape[3:])} volumes"
        raise InputError(f"expected a 3D volume, the header declares {len(shape)}D shape {shown}{extra} "
                         "(one file per channel, one volume per file)", path)
    check_voxel_count(shape, path)
    return spatial


def check_voxel_count(shape: tuple[int, ...], path: Path) -> None:
    """InputError when ``shape`` holds more voxels than :func:`max_voxels` allows."""
    count = math.prod(int(s) for s in shape)
    limit = max_voxels()
    if count > limit:
        raise InputError(f"header declares {' x '.join(map(str, shape))} voxels ({format_count(count)}), above the "
                         f"limit {format_count(limit)}; pass --max-voxels to raise it", path)


def check_spacing(spacing, path: Path, field: str = "spacing") -> None:
    """Every voxel spacing finite and > 0 (``field`` names the header field in the message)."""
    values = [float(s) for s in spacing]
    shown = "(" + ", ".join(f"{v:g}" for v in values) + ")"
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"voxel spacing is not a finite number ({field} = {shown})", path)
    if any(v == 0 for v in values):
        raise InputError(f"zero voxel spacing ({field} = {shown}); every spacing must be > 0", path)
    if any(v < 0 for v in values):
        raise InputError(f"negative voxel spacing ({field} = {shown}); every spacing must be > 0", path)


def check_matrix(matrix, path: Path, what: str) -> None:
    """A 3x3 orientation ``matrix`` (columns: the voxel axes) must be finite and invertible."""
    matrix = np.asarray(matrix, dtype=float).reshape(3, 3)
    if not np.all(np.isfinite(matrix)):
        raise InputError(f"the {what} is not finite", path)
    norms = np.linalg.norm(matrix, axis=0)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise InputError(f"the {what} is not invertible (an axis has zero length)", path)
    singular = np.linalg.svd(matrix / norms, compute_uv=False)
    if singular.min() < 1e-6 * singular.max():
        raise InputError(f"the {what} is not invertible (its axes are parallel)", path)


def check_affine(affine, path: Path) -> None:
    """A 4x4 voxel -> world ``affine`` must be finite and its 3x3 part invertible."""
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise InputError("the affine the header defines (sform/qform) is not finite", path)
    check_matrix(affine[:3, :3], path, "affine the header defines (sform/qform)")


def check_data_size(path: Path, offset: int, expected: int, data_file: Path | None = None) -> None:
    """The (uncompressed) data file holds at least ``expected`` bytes from byte ``offset``.

    ``data_file``: where the voxels are when not in ``path`` itself (a detached .nhdr/.mhd data file).
    """
    data_file = path if data_file is None else data_file
    name = "file" if data_file == path else f"data file {data_file.name}"
    if not data_file.is_file():
        raise InputError(f"{name} (named by the header) not found", path)
    size = data_file.stat().st_size
    held = max(size - offset, 0)
    if held < expected:
        where = f" (the data starts at byte {offset}, past the end)" if offset > size else ""
        raise InputError(f"{name} is truncated: header declares {expected} bytes of voxel data, the file holds "
                         f"{held}{where}", path)


def check_deflate_bound(path: Path, expected: int, data_file: Path | None = None) -> None:
    """A gzip/zlib-compressed data file cannot hold more than :data:`DEFLATE_MAX_RATIO` times its size: refuse a
    header that declares more (a small file must not make the reader allocate gigabytes it can never fill)."""
    data_file = path if data_file is None else data_file
    if not data_file.is_file():
        raise InputError(f"data file {data_file.name} (named by the header) not found", path)
    size = data_file.stat().st_size
    if expected > DEFLATE_MAX_RATIO * size + 1024:
        name = "file" if data_file == path else f"data file {data_file.name}"
        raise InputError(f"{name} is truncated: header declares {expected} bytes of voxel data, more than the "
                         f"{size}-byte compressed file can hold (deflate compresses at most "
                         f"{DEFLATE_MAX_RATIO}:1)", path)


def check_dtype(dtype: np.dtype, path: Path) -> None:
    """Voxels must be real numbers (bool, integers, floats up to 64 bits)."""
    dtype = np.dtype(dtype)
    if dtype.fields is not None and set(dtype.fields) <= {"R", "G", "B", "A"}:
        raise InputError(f"{'RGBA' if 'A' in dtype.fields else 'RGB'} voxels are not supported; store one channel "
                         "per file", path)
    if dtype.kind == "c":
        raise InputError(f"complex voxels ({dtype}) are not supported; store the magnitude (or the real and "
                         "imaginary parts as separate channels)", path)
    if dtype.kind not in _SUPPORTED_KINDS or dtype.itemsize > 8 or dtype.itemsize == 0:
        raise InputError(f"voxel type {dtype} is not supported; store integers or float32/float64", path)


def gzip_payload_size(path: Path, stop_at: int | None = None) -> int:
    """How many bytes ``path`` decompresses to before its gzip stream ends or breaks (read in 1 MiB chunks; stops
    once ``stop_at`` bytes are counted)."""
    count = 0
    try:
        with gzip.open(path, "rb") as stream:
            while stop_at is None or count < stop_at:
                chunk = stream.read(1 << 20)
                if not chunk:
                    break
                count += len(chunk)
    except (OSError, EOFError, zlib.error):
        pass
    return count


# --------------------------------------------------------------------------------------------------------- NIfTI


def read_head(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of ``path`` (decompressed for .gz)."""
    if path.name.lower().endswith(".gz"):
        try:
            with gzip.open(path, "rb") as stream:
                return stream.read(size)
        except gzip.BadGzipFile:
            raise InputError("not a gzip file, though the name ends in .gz", path) from None
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"corrupt gzip data ({one_line(exc)})", path) from None
    with open(path, "rb") as stream:
        return stream.read(size)


def one_line(exc: BaseException) -> str:
    """``exc`` as one line: 'Type: message' with the message's lines joined."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


