"""NIfTI-1/2 header checks, on the raw header bytes, before nibabel (which quietly "fixes" zero or negative pixdim)
reads anything: see :mod:`versaseg.io.header` for the shared checks and the voxel limit."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from versaseg.errors import InputError
from versaseg.io.header import (
    check_data_size,
    check_deflate_bound,
    check_dtype,
    check_shape,
    check_spacing,
    gzip_payload_size,
    one_line,
    read_head,
)

NIFTI1_SINGLE_OFFSET = 352  # 348-byte header + 4-byte extension flag: the voxel data of a .nii starts here or later
NIFTI2_SINGLE_OFFSET = 544  # 540 + 4
NIFTI1_MAGICS = {b"n+1": "single", b"ni1": "pair"}
NIFTI2_MAGIC = b"n+2\x00\r\n\x1a\n"


@dataclass(frozen=True)
class NiftiHeaderInfo:
    """What a NIfTI header declares (raw, before nibabel's fixes)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int  # byte offset of the voxel data in the (uncompressed) file
    data_bytes: int  # voxels x bytes per voxel
    spacing: tuple[float, ...]
    version: int  # 1 or 2


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
    block = read_head(path, 540)
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


