"""NRRD / MetaImage / DICOM header checks before SimpleITK reads voxels: the header text first (an absurd MetaImage
``NDims`` makes ITK crash the process), then ``ReadImageInformation``; see :mod:`versaseg.io.header` for the shared
checks and the voxel limit."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from versaseg.errors import InputError
from versaseg.io.header import (
    check_data_size,
    check_deflate_bound,
    check_matrix,
    check_spacing,
    check_voxel_count,
)

_HEAD_BYTES = 1 << 16  # how much of a MetaImage/NRRD file is searched for its header


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

