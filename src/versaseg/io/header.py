"""Header checks that run before a reader allocates voxel memory.

Every reader in :mod:`versaseg.io.image` reads the header first (nibabel's lazy load for NIfTI, SimpleITK's
``ReadImageInformation`` for NRRD/MetaImage/DICOM) and passes it through these checks: the declared shape (every
dimension >= 1, 3D or squeezable to 3D, at most :func:`max_voxels` voxels), the voxel type (real numbers), the voxel
spacing (finite, > 0), the orientation (a finite, invertible affine/direction) and, for uncompressed data, that the file
holds as many bytes as the header declares. A failed check raises :class:`InputError` naming the file and saying what
is wrong, so a corrupt or hostile header never turns into a MemoryError, a traceback or a silently wrong volume.

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
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from versaseg.errors import InputError

# 1.2e9 voxels: a 1064^3 volume, far above any CT/MR scan (a 0.5 mm whole-body CT is ~1000 x 1000 x 4000 = 4e9
# only at the very extreme; typical volumes are 1e6..1e8). Preprocessing makes at least one float32 copy of a
# volume, 4.8 GB at this size, so a header that declares more is far more likely corrupt or hostile than real.
DEFAULT_MAX_VOXELS = 1_200_000_000
ENV_MAX_VOXELS = "VERSASEG_MAX_VOXELS"
_max_voxels_override: int | None = None

NIFTI1_SINGLE_OFFSET = 352  # 348-byte header + 4-byte extension flag: the voxel data of a .nii starts here or later
NIFTI2_SINGLE_OFFSET = 544  # 540 + 4
NIFTI1_MAGICS = {b"n+1": "single", b"ni1": "pair"}
NIFTI2_MAGIC = b"n+2\x00\r\n\x1a\n"
DEFLATE_MAX_RATIO = 1032  # deflate's largest possible compression ratio (runs of one byte value)
_SUPPORTED_KINDS = "biuf"  # bool, signed, unsigned, floating point
_HEAD_BYTES = 1 << 16  # how much of a MetaImage/NRRD file is searched for its header


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


@dataclass(frozen=True)
class NiftiHeaderInfo:
    """What a NIfTI header declares (raw, before nibabel's fixes)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int  # byte offset of the voxel data in the (uncompressed) file
    data_bytes: int  # voxels x bytes per voxel
    spacing: tuple[float, ...]
    version: int  # 1 or 2


def _read_head(path: Path, size: int) -> bytes:
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


def _parse_nifti_block(block: bytes, path: Path):
    """The nibabel header (unchecked, unfixed) of a NIfTI-1 or NIfTI-2 header ``block``."""
    import nibabel as nib

    if len(block) >= 12 and block[4:12] == NIFTI2_MAGIC:
        if len(block) < 540:
            raise InputError(f"file is truncated: a NIfTI-2 header has 540 bytes, the file holds {len(block)}", path)
        header_class, size, version = nib.Nifti2Header, 540, 2
        sizes = {int(np.frombuffer(block[:4], dtype=f"{order}i4")[0]) for order in "<>"}
        if 540 not in sizes:
            raise InputError(f"sizeof_hdr is {int(np.frombuffer(block[:4], dtype='<i4')[0])}; a NIfTI-2 header "
                             "has 540", path)
    elif len(block) >= 348 and block[344:347] in NIFTI1_MAGICS and block[347:348] == b"\x00":
        header_class, size, version = nib.Nifti1Header, 348, 1
        if NIFTI1_MAGICS[block[344:347]] == "pair":
            raise InputError("header magic 'ni1' means the voxels are in a separate .img file (a NIfTI pair); a "
                             "single .nii file has magic 'n+1'", path)
    elif len(block) < 348:
        raise InputError(f"file is too short for a NIfTI header ({len(block)} bytes; a NIfTI-1 header has 348)",
                         path)
    else:
        hint = " (it looks gzip-compressed: name it .nii.gz)" if block[:2] == b"\x1f\x8b" else ""
        raise InputError(f"not a NIfTI file (no NIfTI-1 'n+1' or NIfTI-2 'n+2' magic in the header){hint}", path)
    # Byte order: the one in which dim[0] is 1..7 (nibabel's rule), else the one in which sizeof_hdr is right.
    endian = None
    for candidate in ("<", ">"):
        dim0 = int(np.frombuffer(block[40:42] if version == 1 else block[16:24],
                                 dtype=f"{candidate}i{2 if version == 1 else 8}")[0])
        if 1 <= dim0 <= 7:
            endian = candidate
            break
    if endian is None:
        sizeof = np.frombuffer(block[:4], dtype="<i4")[0]
        endian = "<" if sizeof == size else ">"
    return header_class(block[:size], endianness=endian, check=False), version


def check_nifti_header(path: Path) -> NiftiHeaderInfo:
    """Read and check the raw header of a .nii / .nii.gz file; InputError saying what is wrong.

    Checks dim[0] (1..7), the shape (every dimension >= 1, 3D after dropping trailing singleton dimensions, at
    most :func:`max_voxels` voxels), the datatype (real numbers), pixdim of the spatial axes (finite, > 0), the
    scaling (scl_slope/scl_inter), vox_offset (past the header) and, for an uncompressed file, that the file holds
    vox_offset + voxels x bytes per voxel. Nothing of the voxel data is read.
    """
    block = _read_head(path, 540)
    header, version = _parse_nifti_block(block, path)
    dim = [int(d) for d in header["dim"]]
    if not 1 <= dim[0] <= 7:
        raise InputError(f"dim[0] is {dim[0]}; a NIfTI header declares 1 to 7 dimensions", path)
    shape = tuple(dim[1: dim[0] + 1])
    check_shape(shape, path)
    code = int(header["datatype"])
    try:
        dtype = header.get_data_dtype()
    except Exception:  # nibabel: HeaderDataError 'data code N not recognized / not supported'
        dtype = None
    if dtype is None or (dtype.kind == "V" and dtype.fields is None):
        from nibabel.nifti1 import data_type_codes

        label = data_type_codes.label[code] if code in data_type_codes.code else None
        what = f"NIfTI datatype {label} (code {code}) is not supported" if label else \
            f"unknown NIfTI datatype code {code}"
        raise InputError(f"{what}; store integers or float32/float64", path)
    check_dtype(dtype, path)
    pixdim = [float(p) for p in header["pixdim"]]
    spatial = min(dim[0], 3)
    check_spacing(pixdim[1: spatial + 1], path, f"pixdim[1:{spatial + 1}]")
    try:
        header.get_slope_inter()
    except Exception as exc:
        raise InputError(f"invalid intensity scaling scl_slope/scl_inter ({one_line(exc)})", path) from None
    raw_offset = float(header["vox_offset"])
    minimum = NIFTI1_SINGLE_OFFSET if version == 1 else NIFTI2_SINGLE_OFFSET
    if not math.isfinite(raw_offset):
        raise InputError(f"vox_offset is not a finite number ({raw_offset:g})", path)
    if raw_offset < minimum:
        raise InputError(f"vox_offset {raw_offset:g} is not past the header: the voxel data of a single-file NIfTI "
                         f"starts at byte {minimum} or later", path)
    offset = int(raw_offset)
    data_bytes = math.prod(shape) * dtype.itemsize
    if path.name.lower().endswith(".gz"):
        check_deflate_bound(path, offset + data_bytes)
    else:
        check_data_size(path, offset, data_bytes)
    return NiftiHeaderInfo(shape, dtype, offset, data_bytes, tuple(pixdim[1: spatial + 1]), version)


def nifti_read_error(exc: BaseException, path: Path, info: NiftiHeaderInfo) -> InputError:
    """The InputError for ``exc``, raised by nibabel while loading a file whose raw header ``info`` passed the checks
    (or reading its voxels)."""
    if path.name.lower().endswith(".gz"):  # a short stream shows as EOFError, OSError or nibabel's ImageFileError
        held = max(gzip_payload_size(path, info.offset + info.data_bytes) - info.offset, 0)
        if held < info.data_bytes:
            return InputError(f"file is truncated: header declares {info.data_bytes} bytes of voxel data, the file "
                              f"holds {held} (after decompression)", path)
        if isinstance(exc, (EOFError, OSError, zlib.error)):
            return InputError(f"corrupt gzip data ({one_line(exc)})", path)
    if isinstance(exc, MemoryError):
        return InputError(f"not enough memory for the {' x '.join(map(str, info.shape))} voxels the header declares "
                          f"({info.data_bytes} bytes)", path)
    return InputError(f"cannot read NIfTI file ({one_line(exc)})", path)


# ----------------------------------------------------------------------------------- SimpleITK formats and DICOM


def _itk_bytes_per_component(pixel_id: int) -> int | None:
    import SimpleITK as sitk

    sizes = {}
    for size, names in ((1, ("UInt8", "Int8")), (2, ("UInt16", "Int16")), (4, ("UInt32", "Int32", "Float32")),
                        (8, ("UInt64", "Int64", "Float64"))):
        for name in names:
            for prefix in ("sitk", "sitkVector"):
                value = getattr(sitk, prefix + name, None)
                if value is not None:
                    sizes[value] = size
    for name, size in (("sitkComplexFloat32", 8), ("sitkComplexFloat64", 16)):
        sizes[getattr(sitk, name)] = size
    return sizes.get(pixel_id)


def check_itk_information(reader, path: Path) -> tuple[int, ...]:
    """Check what ``reader`` (a ``sitk.ImageFileReader`` after ``ReadImageInformation()``) declares: a 3D image or
    a 4D one with one volume, one component of real numbers, at most :func:`max_voxels` voxels, spacing finite and
    > 0, origin finite, direction finite and invertible. Returns the size (SimpleITK's x, y, z order)."""
    import SimpleITK as sitk

    size = tuple(int(s) for s in reader.GetSize())
    dimension = int(reader.GetDimension())
    if dimension == 4 and size[3] != 1:
        raise InputError(f"expected a 3D image, the header declares 4D size {' x '.join(map(str, size))}, "
                         f"{size[3]} volumes (one file per channel, one volume per file)", path)
    if dimension not in (3, 4):
        raise InputError(f"expected a 3D image, got {dimension}D (size {' x '.join(map(str, size))})", path)
    if any(s < 1 for s in size):
        raise InputError(f"header declares size {' x '.join(map(str, size))}; every dimension must be at least 1",
                         path)
    check_voxel_count(size, path)
    pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    if "complex" in pixel:
        raise InputError(f"complex voxels ({pixel}) are not supported; store the magnitude (or the real and "
                         "imaginary parts as separate channels)", path)
    components = int(reader.GetNumberOfComponents())
    if components != 1:
        raise InputError(f"multi-component images ({components} components per voxel, {pixel}) are not supported; "
                         "store one channel per file", path)
    check_spacing(reader.GetSpacing()[:3], path)
    if not all(math.isfinite(float(o)) for o in reader.GetOrigin()):
        raise InputError("the image origin is not finite", path)
    direction = np.asarray(reader.GetDirection(), dtype=float).reshape(dimension, dimension)[:3, :3]
    check_matrix(direction, path, "direction matrix")
    return size


def check_itk_data_size(path: Path, size: tuple[int, ...], pixel_id: int, components: int = 1) -> None:
    """For a MetaImage (.mha/.mhd) or NRRD (.nrrd/.nhdr) file: uncompressed data must fill what the header declares,
    gzip/zlib data must be able to (:func:`check_deflate_bound`). Other formats and encodings (ASCII, bzip2) and
    data-file lists or patterns are not checked."""
    located = locate_itk_data(path)
    itemsize = _itk_bytes_per_component(pixel_id)
    if itemsize is None:
        return
    expected = math.prod(size) * components * itemsize
    if located is not None:
        data_file, offset, compressed = located
        if compressed:
            check_deflate_bound(path, expected, data_file)
        else:
            check_data_size(path, offset, expected, data_file)


def locate_itk_data(path: Path) -> tuple[Path, int, bool] | None:
    """(data file, byte offset, compressed) of a MetaImage or NRRD file's voxel data, from a scan of its header
    text; None when not checkable. InputError for a MetaImage header that never names its data file."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(_HEAD_BYTES)
    except OSError:
        return None
    name = path.name.lower()
    if name.endswith((".mha", ".mhd")):
        return _metaimage_data(head, path)
    if name.endswith((".nrrd", ".nhdr")):
        return _nrrd_data(head, path)
    return None


def check_itk_text_header(path: Path) -> None:
    """Checks of a MetaImage (.mha/.mhd) header text that must run before SimpleITK parses it: ITK's MetaIO crashes
    the process (segmentation fault) on an ``NDims`` it cannot use (1e30, -1, 40000), so anything but 2, 3 or 4
    dimensions is refused here."""
    if not path.name.lower().endswith((".mha", ".mhd")):
        return
    try:
        with open(path, "rb") as stream:
            head = stream.read(_HEAD_BYTES)
    except OSError:
        return
    for raw in head.splitlines():
        key, sep, ndims = raw.decode("latin-1").partition("=")
        key = key.strip().lower()
        if sep and key == "elementdatafile":
            break  # the header ends here
        if not sep or key != "ndims":
            continue  # every NDims line counts (which one MetaIO uses is its business)
        ndims = ndims.strip()
        if not re.fullmatch(r"[0-9]{1,3}", ndims):
            raise InputError(f"MetaImage header: NDims = {ndims[:40]!r} is not a number of dimensions", path)
        if int(ndims) not in (2, 3, 4):
            raise InputError(f"expected a 3D image, the MetaImage header declares NDims = {int(ndims)}", path)


def _metaimage_fields(head: bytes) -> tuple[dict[str, str], int | None]:
    """The 'Key = Value' fields (keys lower-cased) of a MetaImage header up to its ElementDataFile line, and the byte
    position after that line (None if the header has none)."""
    fields: dict[str, str] = {}
    position = 0
    for raw in head.splitlines(keepends=True):
        position += len(raw)
        key, sep, value = raw.decode("latin-1").partition("=")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        fields[key] = value
        if key == "elementdatafile":
            return fields, position
    return fields, None


def _metaimage_data(head: bytes, path: Path) -> tuple[Path, int, bool] | None:
    """(data file, byte offset, zlib-compressed) of a MetaImage header's binary data, or None when not checkable."""
    fields, position = _metaimage_fields(head)
    if position is None:
        if len(head) < _HEAD_BYTES:  # the whole file was read: its header never names the data
            raise InputError("MetaImage header ends without an ElementDataFile line (the file is truncated or "
                             "its header incomplete)", path)
        return None
    if fields.get("binarydata", "true").lower() != "true":
        return None
    compressed = fields.get("compresseddata", "false").lower() == "true"  # zlib
    target = fields["elementdatafile"]
    header_size = fields.get("headersize")
    try:
        skip = int(header_size) if header_size is not None else 0
    except ValueError:
        return None
    if skip < 0:
        return None  # -1: the data are the file's last bytes
    if target.upper() == "LOCAL":
        return path, position + skip, compressed
    if target.upper().startswith("LIST") or "%" in target or " " in target:
        return None
    return path.parent / target, skip, compressed


def _nrrd_data(head: bytes, path: Path) -> tuple[Path, int, bool] | None:
    """(data file, byte offset, gzip-compressed) of a NRRD header's raw or gzip data, or None when not checkable."""
    fields: dict[str, str] = {}
    lines = head.splitlines(keepends=True)
    if not lines or not lines[0].startswith(b"NRRD"):
        return None
    position, attached = len(lines[0]), False
    for raw in lines[1:]:
        position += len(raw)
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line.strip():
            attached = True  # a blank line ends the header; the data follow in this file
            break
        if line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep and not value.startswith("="):  # 'key:=value' lines are key/value pairs, not fields
            fields[key.strip().lower()] = value.strip()
    encoding = fields.get("encoding", "").lower()
    if encoding not in ("raw", "gzip", "gz") or "line skip" in fields or "lineskip" in fields:
        return None
    compressed = encoding != "raw"
    try:
        skip = int(fields.get("byte skip", fields.get("byteskip", "0")))
    except ValueError:
        return None
    if skip < 0:
        return None
    data_file = fields.get("data file", fields.get("datafile"))
    if data_file is None:
        return (path, position + skip, compressed) if attached else None
    if data_file.upper().startswith("LIST") or re.search(r"%|\s", data_file):
        return None
    return path.parent / data_file, skip, compressed


def check_dicom_series(files: list[str], folder: Path) -> None:
    """Check a DICOM series before SimpleITK reads it: the first file's header (one slice or a multi-frame volume)
    times the number of files must stay within :func:`max_voxels`, with one component of real numbers and spacing
    finite and > 0."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(files[0])
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise InputError(f"cannot read DICOM header of {Path(files[0]).name} ({itk_reason(exc)})", folder) from None
    size = tuple(int(s) for s in reader.GetSize())
    if any(s < 1 for s in size):
        raise InputError(f"DICOM file {Path(files[0]).name} declares size {size}", folder)
    slices = size[2] if len(size) > 2 else 1
    check_voxel_count((size[0], size[1], slices * len(files)), folder)
    components = int(reader.GetNumberOfComponents())
    if components != 1:
        raise InputError(f"multi-component images ({components} components per voxel) are not supported; store one "
                         "channel per series", folder)
    check_spacing(reader.GetSpacing()[:2], folder, "pixel spacing")


def itk_reason(exc: BaseException) -> str:
    """The last non-empty line of a SimpleITK exception (the reason; the rest is a C++ stack location)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    reason = lines[-1] if lines else "unknown error"
    if reason.startswith("Reason: ") and any("File cannot be read" in line for line in lines):
        return "the header cannot be parsed"  # MetaIO reports a stale errno ('No such file or directory')
    if "Unable to determine ImageIO reader" in reason:
        return "no SimpleITK reader recognises its contents: not an image of this type, or a corrupt header"
    return reason

