"""A corpus of bad image inputs, made on demand (no committed binaries).

``make_corpus(folder)`` writes each bad input into ``folder`` and returns a :class:`BadInput` per file: its path, what
is wrong in words, and a substring the :class:`versaseg.errors.InputError` message must contain. Every reader (and
every CLI command that reads images) must refuse each with one line naming the file. Run as a script to write the
corpus into a folder: ``python tests/corpus/make_bad_inputs.py OUT``.
"""

from __future__ import annotations

import gzip
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

SHAPE = (6, 7, 8)
AFFINE = np.array([[1.5, 0, 0, -10], [0, 1.0, 0, 5], [0, 0, 2.0, 3], [0, 0, 0, 1]])

# byte offsets of NIfTI-1 header fields (little-endian as nibabel writes them on x86)
DIM, DATATYPE, BITPIX, PIXDIM, VOX_OFFSET, SFORM_CODE, SROW_X = 40, 70, 72, 76, 108, 254, 280
NIFTI2_DIM = 16  # NIfTI-2: int64 dim[8] (NIfTI-1 dims are int16, at most 32767)


@dataclass(frozen=True)
class BadInput:
    """A bad input file (or folder), what is wrong with it, and what the error message must say."""

    path: Path
    problem: str
    expected: str


def nifti_bytes(array: np.ndarray | None = None, affine: np.ndarray = AFFINE) -> bytes:
    """An uncompressed NIfTI-1 file of ``array`` (default: int16 ramp of :data:`SHAPE`) as bytes."""
    if array is None:
        array = np.arange(np.prod(SHAPE), dtype=np.int16).reshape(SHAPE)
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm")
    return image.to_bytes()


def patch(data: bytes, offset: int, fmt: str, *values) -> bytes:
    """``data`` with ``values`` packed little-endian (``fmt``, struct syntax without the byte order) at ``offset``."""
    packed = struct.pack("<" + fmt, *values)
    return data[:offset] + packed + data[offset + len(packed):]


def _itk(array: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array.transpose(2, 1, 0) if array.ndim == 3 else array.T)
    image.SetSpacing(spacing[: image.GetDimension()])
    return image


def make_corpus(folder: str | Path) -> list[BadInput]:
    """Write the bad inputs into ``folder`` (created) and describe them."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    good = nifti_bytes()
    corpus: list[BadInput] = []

    def add(name: str, content: bytes | None, problem: str, expected: str) -> Path:
        path = folder / name
        if content is not None:
            path.write_bytes(content)
        corpus.append(BadInput(path, problem, expected))
        return path

    add("missing_0000.nii.gz", None, "the file does not exist", "file not found")
    add("empty.nii.gz", b"", "an empty file", "file is empty")
    add("truncated.nii", good[: len(good) - 40], "an uncompressed NIfTI cut 40 bytes short", "file is truncated")
    compressed = gzip.compress(nifti_bytes(np.random.default_rng(0).normal(size=SHAPE).astype(np.float32)))
    add("truncated.nii.gz", compressed[: len(compressed) // 2], "a .nii.gz cut in half", "file is truncated")
    add("header_only.nii", good[:348], "a NIfTI header without voxel data", "file is truncated")
    add("garbage.nii", np.random.default_rng(1).integers(0, 256, 2000, dtype=np.uint8).tobytes(),
        "random bytes with a .nii ending", "not a NIfTI file")
    add("plain_named_gz.nii.gz", good, "an uncompressed NIfTI named .nii.gz", "not a gzip file")
    add("gzipped_named_nii.nii", gzip.compress(good), "a gzip-compressed NIfTI named .nii", "name it .nii.gz")
    zero = patch(good, PIXDIM + 4, "3f", 0.0, 0.0, 0.0)
    for row in range(3):
        zero = patch(zero, SROW_X + 16 * row, "3f", 0.0, 0.0, 0.0)
    add("zero_spacing.nii.gz", gzip.compress(zero),
        "zero voxel spacing on every axis (pixdim and sform all zero)", "zero voxel spacing")
    add("negative_pixdim.nii", patch(good, PIXDIM + 4, "f", -1.5), "pixdim[1] negative", "negative voxel spacing")
    add("nan_pixdim.nii", patch(good, PIXDIM + 8, "f", float("nan")), "pixdim[2] NaN", "not a finite number")
    add("inf_pixdim.nii.gz", gzip.compress(patch(good, PIXDIM + 12, "f", float("inf"))), "pixdim[3] infinite",
        "not a finite number")
    nifti2 = nib.Nifti2Image(np.zeros(SHAPE, np.int16), AFFINE).to_bytes()
    add("huge_shape.nii", patch(nifti2, NIFTI2_DIM, "4q", 3, 40000, 40000, 40000),
        "a NIfTI-2 header claiming 40000^3 voxels", "above the limit")
    add("huge_shape.nii.gz", gzip.compress(patch(good, DIM, "4h", 3, 30000, 30000, 30000)),
        "a NIfTI-1 header claiming 30000^3 voxels (compressed)", "above the limit")
    add("deflate_bound.nii.gz", gzip.compress(patch(good, DIM, "4h", 3, 1000, 1000, 100)),
        "a tiny .nii.gz whose header claims 1e8 int16 voxels", "file is truncated")
    series = nifti_bytes(np.zeros(SHAPE + (3,), np.int16))
    add("four_volumes.nii.gz", gzip.compress(series), "a 4D series of 3 volumes", "expected a 3D volume")
    add("two_d.nii.gz", gzip.compress(nifti_bytes(np.zeros((6, 7), np.int16))), "a 2D image (one slice, dim[0] 2)",
        "expected a 3D volume")
    add("one_d.nii", nifti_bytes(np.zeros((5,), np.int16)), "a 1D array", "expected a 3D volume")
    add("zero_dim.nii", patch(good, DIM + 4, "h", 0), "dimension 2 is 0", "at least 1")
    add("bad_dim0.nii", patch(good, DIM, "h", 0), "dim[0] is 0", "dim[0]")
    add("complex.nii", nifti_bytes(np.zeros(SHAPE, np.complex64)), "complex64 voxels", "complex voxels")
    rgb = np.zeros(SHAPE, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    add("rgb.nii", nifti_bytes(rgb), "RGB voxels", "RGB voxels")
    add("unknown_datatype.nii", patch(good, DATATYPE, "h", 77), "datatype code 77", "datatype code 77")
    add("vox_offset_zero.nii", patch(good, VOX_OFFSET, "f", 0.0), "vox_offset 0 (the data would be the header)",
        "vox_offset")
    add("vox_offset_nan.nii", patch(good, VOX_OFFSET, "f", float("nan")), "vox_offset NaN", "vox_offset")
    add("vox_offset_past_end.nii", patch(good, VOX_OFFSET, "f", 1.0e6), "vox_offset past the end of the file",
        "file is truncated")
    add("nan_sform.nii", patch(good, SROW_X, "f", float("nan")), "a NaN in the sform", "not finite")
    add("singular_sform.nii", patch(good, SROW_X, "3f", 0.0, 1.0, 0.0),
        "sform's first axis parallel to its second", "not invertible")
    add("bad_magic.nii", patch(good, 344, "4s", b"xyz\x00"), "no NIfTI magic", "not a NIfTI file")

    # SimpleITK formats
    add("corrupt_header.nrrd", b"NRRD0004\ntype: blah\ndimension: 3\nsizes: 2 2\nencoding: raw\n\n" + bytes(8),
        "a NRRD header with an unknown type and too few sizes", "cannot read image")
    add("garbage.nrrd", np.random.default_rng(2).integers(0, 256, 500, dtype=np.uint8).tobytes(),
        "random bytes with a .nrrd ending", "cannot read image")
    mha = folder / "short_raw.mha"
    sitk.WriteImage(_itk(np.ones(SHAPE, np.int16)), str(mha), useCompression=False)
    mha.write_bytes(mha.read_bytes()[:-30])
    corpus.append(BadInput(mha, "a .mha whose raw data is 30 bytes short", "file is truncated"))
    nrrd = folder / "short_raw.nrrd"
    sitk.WriteImage(_itk(np.ones(SHAPE, np.int16)), str(nrrd), useCompression=False)
    nrrd.write_bytes(nrrd.read_bytes()[:-30])
    corpus.append(BadInput(nrrd, "a .nrrd whose raw data is 30 bytes short", "file is truncated"))
    header = (b"ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
              b"ElementSpacing = 1 1 1\nDimSize = 4 4 4\nElementType = MET_SHORT\nElementDataFile = missing.raw\n")
    add("missing_data_file.mhd", header, "a .mhd whose data file does not exist", "not found")
    huge = header.replace(b"DimSize = 4 4 4", b"DimSize = 40000 40000 40000").replace(b"missing.raw", b"LOCAL")
    add("huge_shape.mha", huge, "a .mha header claiming 40000^3 voxels", "above the limit")
    zero = header.replace(b"ElementSpacing = 1 1 1", b"ElementSpacing = 0 0 0").replace(b"missing.raw", b"LOCAL")
    add("zero_spacing.mha", zero + bytes(128), "a .mha with zero spacing", "zero voxel spacing")
    two_d = folder / "two_d.mha"
    sitk.WriteImage(_itk(np.ones((5, 6), np.uint8)), str(two_d))
    corpus.append(BadInput(two_d, "a 2D MetaImage", "expected a 3D image"))
    vector = folder / "vector.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6, 3), np.uint8), isVector=True), str(vector))
    corpus.append(BadInput(vector, "an RGB (3-component) NRRD", "multi-component"))

    no_dicom = folder / "no_dicom"
    no_dicom.mkdir(exist_ok=True)
    (no_dicom / "notes.txt").write_text("not a DICOM file\n")
    corpus.append(BadInput(no_dicom, "a folder with no DICOM files", "no DICOM series"))
    return corpus


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "bad_inputs")
    for item in make_corpus(out):
        print(f"{item.path}\t{item.problem}\t{item.expected}")
