"""Property-based tests of the image readers: random header fields, truncations and byte flips.

Property: :func:`read_volume` either returns a correct read (a valid file: the array and the geometry that were
written; a damaged file that still parses: a 3D array with a finite, invertible affine) or raises one
:class:`InputError` line naming the file. Never another exception, never a MemoryError: the header is checked
before anything is allocated. The examples are derandomized (tests/conftest.py), so every run draws the same ones.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
import nibabel as nib  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from hypothesis import HealthCheck, assume, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from versaseg.errors import InputError  # noqa: E402
from versaseg.io.image import read_volume  # noqa: E402


def fuzz(examples: int) -> settings:
    """``examples`` derandomized examples, no database, no deadline (as the profile in tests/conftest.py, stated here
    too so that the tests stay reproducible however they are collected)."""
    return settings(max_examples=examples, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

SHAPE = (4, 5, 6)
AFFINE = np.array([[0.0, -1.2, 0.0, 10.0], [0.9, 0.0, 0.0, -4.0], [0.0, 0.0, 2.5, 7.0], [0.0, 0.0, 0.0, 1.0]])
DATA = (np.arange(np.prod(SHAPE)).reshape(SHAPE) * 7 - 50).astype(np.int16)
ITK_ENDINGS = (".nrrd", ".mha")

# NIfTI-1 header fields: name -> (byte offset, struct format)
FIELDS = {
    "dim": (40, "8h"), "datatype": (70, "h"), "bitpix": (72, "h"), "pixdim": (76, "8f"), "vox_offset": (108, "f"),
    "scl_slope": (112, "f"), "scl_inter": (116, "f"), "qform_code": (252, "h"), "sform_code": (254, "h"),
    "quatern": (256, "6f"), "srow": (280, "12f"),
}
DATATYPES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304]


def _nifti_bytes(version: int = 1) -> bytes:
    image = (nib.Nifti1Image if version == 1 else nib.Nifti2Image)(DATA, AFFINE)
    return image.to_bytes()


BASE = _nifti_bytes()
BASE2 = _nifti_bytes(2)


def _itk_bytes(ending: str, folder: Path) -> bytes:
    path = folder / f"base{ending}"
    image = sitk.GetImageFromArray(DATA.transpose(2, 1, 0))
    image.SetSpacing((0.9, 1.2, 2.5))
    image.SetOrigin((-3.0, 4.0, 7.0))
    sitk.WriteImage(image, str(path), useCompression=False)
    return path.read_bytes()


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, bytes]:
    """Valid uncompressed bytes of the test volume per file ending."""
    folder = tmp_path_factory.mktemp("originals")
    data = {".nii": BASE, ".nii.gz": gzip.compress(BASE, mtime=0), ".nii (NIfTI-2)": BASE2}
    data.update({ending: _itk_bytes(ending, folder) for ending in ITK_ENDINGS})
    return data


def _file_name(ending: str) -> str:
    return "img.nii" if ending == ".nii (NIfTI-2)" else f"img{ending}"


def _read(path: Path):
    """read_volume(path), or None after checking the InputError names the file on one line."""
    try:
        volume = read_volume(path)
    except InputError as exc:
        message = str(exc)
        assert str(path) in message, message
        assert "\n" not in message, message
        assert exc.path == path
        return None
    assert volume.array.ndim == 3
    assert np.all(np.isfinite(volume.affine))
    assert abs(np.linalg.det(volume.affine[:3, :3])) > 0
    return volume


def _assert_original(volume, ending: str) -> None:
    np.testing.assert_array_equal(np.asarray(volume.array), DATA)
    np.testing.assert_allclose(volume.spacing, (0.9, 1.2, 2.5), rtol=1e-5)
    if ending.startswith(".nii"):
        np.testing.assert_allclose(volume.affine, AFFINE, atol=1e-5)


# ------------------------------------------------------------------------------------------------------ valid files


@fuzz(40)
@given(
    shape=st.lists(st.integers(1, 5), min_size=3, max_size=3).map(tuple),
    trailing=st.integers(0, 2),
    dtype=st.sampled_from(["uint8", "int8", "int16", "uint16", "int32", "float32", "float64"]),
    spacing=st.lists(st.floats(0.05, 8.0), min_size=3, max_size=3),
    ending=st.sampled_from([".nii", ".nii.gz", ".nrrd", ".mha"]),
    seed=st.integers(0, 2**16),
)
def test_valid_files_read_back_exactly(tmp_path_factory, shape, trailing, dtype, spacing, ending, seed):
    """Random 3D shapes (plus trailing singleton axes for NIfTI), voxel types and spacings read back."""
    folder = tmp_path_factory.mktemp("valid")
    rng = np.random.default_rng(seed)
    if ending in ITK_ENDINGS:
        trailing = 0
    array = (rng.normal(0, 50, shape + (1,) * trailing)).astype(dtype)
    path = folder / f"img{ending}"
    if ending.startswith(".nii"):
        affine = np.diag([*spacing, 1.0])
        affine[:3, 3] = rng.normal(0, 20, 3)
        nib.save(nib.Nifti1Image(array, affine), str(path))
    else:
        image = sitk.GetImageFromArray(array.transpose(2, 1, 0))
        image.SetSpacing(spacing)
        sitk.WriteImage(image, str(path), useCompression=bool(seed % 2))
    volume = _read(path)
    assert volume is not None
    expected = array.reshape(array.shape[: len(shape)])
    np.testing.assert_array_equal(np.asarray(volume.array), expected)
    np.testing.assert_allclose(volume.spacing, spacing, rtol=1e-5)


# -------------------------------------------------------------------------------------------- random header fields


def _field_values(name: str) -> st.SearchStrategy:
    floats = st.floats(width=32, allow_nan=True, allow_infinity=True)
    small = st.integers(-3, 40) | st.sampled_from([-32768, 32767, 30000, 1000])
    n = int(FIELDS[name][1][:-1] or 1)  # how many values the field holds
    if name == "dim":
        return st.tuples(st.integers(-2, 9), *[small] * 7)
    if name == "datatype":
        return st.tuples(st.sampled_from(DATATYPES) | st.integers(-32768, 32767))
    if name in ("bitpix", "qform_code", "sform_code"):
        return st.tuples(st.integers(-32768, 32767) | st.sampled_from([0, 1, 2, 8, 16, 32, 64]))
    if name == "vox_offset":
        return st.tuples(floats | st.sampled_from([0.0, 348.0, 352.0, 353.0, 480.0, 1e9]))
    if name == "pixdim":
        return st.tuples(*[floats | st.sampled_from([0.0, -1.0, 1.0, 2.5])] * n)
    return st.tuples(*[floats] * n)


@st.composite
def header_mutations(draw) -> dict[str, tuple]:
    """Up to four header fields set to random values."""
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), unique=True, max_size=4))
    return {name: draw(_field_values(name)) for name in names}


def _mutate(data: bytes, mutations: dict[str, tuple]) -> bytes:
    for name, values in mutations.items():
        offset, fmt = FIELDS[name]
        packed = struct.pack("<" + fmt, *values)
        data = data[:offset] + packed + data[offset + len(packed):]
    return data


@fuzz(400)
@given(mutations=header_mutations(), compressed=st.booleans())
@example(mutations={"dim": (3, 30000, 30000, 30000, 1, 1, 1, 1)}, compressed=True)
@example(mutations={"dim": (3, 32767, 32767, 1000, 1, 1, 1, 1), "datatype": (64,)}, compressed=True)
@example(mutations={"pixdim": (1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0)}, compressed=False)
@example(mutations={"pixdim": (1.0, -1.0, 1.2, 2.5, 1.0, 1.0, 1.0, 1.0)}, compressed=False)
@example(mutations={"vox_offset": (0.0,)}, compressed=False)
@example(mutations={"datatype": (32,)}, compressed=True)
@example(mutations={}, compressed=True)
def test_random_header_fields(tmp_path_factory, mutations, compressed):
    """Random dim / datatype / bitpix / pixdim / vox_offset / scaling / qform / sform values in a NIfTI-1 header."""
    path = tmp_path_factory.mktemp("fields") / ("img.nii.gz" if compressed else "img.nii")
    data = _mutate(BASE, mutations)
    path.write_bytes(gzip.compress(data, mtime=0) if compressed else data)
    volume = _read(path)
    if data == BASE:
        assert volume is not None
        _assert_original(volume, ".nii")


# ------------------------------------------------------------------------------- random NRRD / MetaImage header fields

NUMBER_TOKENS = (st.integers(-5, 70).map(str) | st.sampled_from(["0", "-1", "40000", "2147483648", "1e30", "nan",
                                                                   "inf", "-0", "1.5", ""])
                 | st.floats(allow_nan=True, allow_infinity=True).map(repr))
WORD_TOKENS = st.sampled_from(["MET_SHORT", "MET_FLOAT", "MET_UCHAR", "MET_DOUBLE_ARRAY", "MET_OTHER", "short", "float",
                               "uchar", "blah", "raw", "gzip", "ascii", "bzip2", "LOCAL", "other.raw", "True",
                               "False", "little", "big", "domain", "RGB-color", "(1,0,0)", "(nan,0,0)", "(0,0,0)",
                               "none"])
MHA_FIELDS = ["NDims", "BinaryDataByteOrderMSB", "CompressedData", "TransformMatrix", "Offset", "ElementSpacing",
              "DimSize", "ElementType", "ElementDataFile", "ElementNumberOfChannels", "HeaderSize"]
NRRD_FIELDS = ["type", "dimension", "space", "sizes", "space directions", "kinds", "endian", "encoding",
               "space origin", "byte skip"]


@st.composite
def text_header_mutations(draw, fields: list[str]) -> dict[str, str]:
    """Up to three header fields set to one to four random tokens (numbers or format words)."""
    names = draw(st.lists(st.sampled_from(fields), unique=True, min_size=1, max_size=3))
    return {name: " ".join(draw(st.lists(NUMBER_TOKENS | WORD_TOKENS, min_size=1, max_size=4))) for name in names}


def _set_text_fields(data: bytes, mutations: dict[str, str], separator: str) -> bytes:
    """``data`` (a MetaImage or NRRD file) with the header lines of ``mutations`` replaced (added if absent)."""
    end = data.index(b"ElementDataFile = LOCAL\n") if separator == " = " else data.index(b"\n\n")
    lines = data[:end].decode().split("\n")
    for name, value in mutations.items():
        line = f"{name}{separator}{value}"
        matches = [i for i, old in enumerate(lines) if old.startswith(name + separator)]
        if matches:
            lines[matches[0]] = line
        else:
            lines.insert(len(lines) - 1 if separator == " = " else len(lines), line)
    return "\n".join(lines).encode() + data[end:]


@fuzz(120)
@given(ending=st.sampled_from(ITK_ENDINGS), data=st.data())
def test_random_itk_header_fields(tmp_path_factory, originals, ending, data):
    """Random values of NRRD / MetaImage header fields (sizes, types, spacing, directions, encodings)."""
    mha = ending == ".mha"
    mutations = data.draw(text_header_mutations(MHA_FIELDS if mha else NRRD_FIELDS))
    content = _set_text_fields(originals[ending], mutations, " = " if mha else ": ")
    path = tmp_path_factory.mktemp("itkfields") / f"img{ending}"
    path.write_bytes(content)
    _read(path)


# -------------------------------------------------------------------------------------------------------- truncation


@fuzz(150)
@given(ending=st.sampled_from([".nii", ".nii.gz", ".nii (NIfTI-2)", *ITK_ENDINGS]), fraction=st.floats(0, 1))
@example(ending=".nii.gz", fraction=0.5)
@example(ending=".mha", fraction=0.99)
@example(ending=".nrrd", fraction=0.99)
def test_truncation_at_random_offsets(tmp_path_factory, originals, ending, fraction):
    """A file cut anywhere is refused, unless only trailing bytes the data do not need are gone (the gzip trailer)."""
    original = originals[ending]
    cut = int(fraction * (len(original) - 1))
    path = tmp_path_factory.mktemp("cut") / _file_name(ending)
    path.write_bytes(original[:cut])
    volume = _read(path)
    if volume is not None:
        _assert_original(volume, ending)


# -------------------------------------------------------------------------------------------------------- byte flips


@fuzz(150)
@given(ending=st.sampled_from([".nii", ".nii.gz", ".nii (NIfTI-2)", *ITK_ENDINGS]),
       flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=6),
       in_header=st.booleans())
def test_random_byte_flips(tmp_path_factory, originals, ending, flips, in_header):
    """Random bytes overwritten (half the examples within the header) are refused or give a sane 3D volume."""
    data = bytearray(originals[ending])
    span = min(len(data), 560) if in_header else len(data)
    for where, value in flips:
        data[int(where * (span - 1))] = value
    assume(bytes(data) != originals[ending])
    path = tmp_path_factory.mktemp("flip") / _file_name(ending)
    path.write_bytes(bytes(data))
    _read(path)


@fuzz(80)
@given(content=st.binary(max_size=600), ending=st.sampled_from([".nii", ".nii.gz", ".nrrd", ".mha", ".nhdr",
                                                                ".mhd", ".seg.nrrd"]))
def test_random_bytes(tmp_path_factory, content, ending):
    """Arbitrary bytes under any image ending are refused (or, by extreme chance, read sanely)."""
    path = tmp_path_factory.mktemp("bytes") / f"img{ending}"
    path.write_bytes(content)
    _read(path)
