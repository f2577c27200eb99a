"""Volume I/O: every written label/probability volume has exactly the geometry of its input.

Outputs are read back with both nibabel and SimpleITK and compared with the input read by the same library, for NIfTI
(.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd) and DICOM series, including oblique and non-RAS inputs.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import nibabel as nib
import nibabel.testing
import numpy as np
import pytest
import SimpleITK as sitk

from versaseg.errors import InputError
from versaseg.io.image import (
    IMAGE_ENDINGS,
    Volume,
    affine_to_itk_geometry,
    case_name,
    file_ending,
    from_canonical,
    itk_geometry_to_affine,
    read_volume,
    to_canonical,
    write_volume,
)

SHAPE = (8, 9, 10)
NIBABEL_DATA = Path(nibabel.testing.data_path)


# ----------------------------------------------------------------------------------------------------------- helpers


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    """Rotation matrix from Euler angles in degrees (x, then y, then z)."""
    ax, ay, az = np.deg2rad([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _affine(matrix: np.ndarray, spacing, origin) -> np.ndarray:
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(matrix, dtype=float) * np.asarray(spacing, dtype=float)[None, :]
    affine[:3, 3] = origin
    return affine


# RAS+ affines (nibabel convention) of the test geometries.
GEOMETRIES = {
    # axis-aligned RAS, anisotropic spacing, non-zero origin
    "ras": _affine(np.eye(3), (0.8, 1.1, 2.5), (-10.0, 20.0, 5.5)),
    # oblique: rotated direction, anisotropic spacing, non-zero origin
    "oblique": _affine(_rotation(17.0, -23.0, 31.0), (0.7, 1.3, 2.9), (-12.5, 33.1, 7.7)),
    # non-RAS: I -> inferior, J -> left, K -> posterior (axes permuted and flipped, "ILP")
    "non_ras": _affine(np.array([[0, -1, 0], [0, 0, -1], [-1, 0, 0]]), (3.0, 0.9, 1.7), (40.0, 60.0, -30.0)),
    # non-RAS, right-handed: I -> posterior, J -> superior, K -> left ("PSL"); representable as a DICOM series
    "psl": _affine(np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]]), (0.6, 2.2, 1.4), (15.0, -25.0, 35.0)),
    # LPI: flipped, not permuted (a left-handed voxel grid)
    "lpi": _affine(np.diag([-1.0, -1.0, -1.0]), (1.2, 1.2, 4.0), (90.0, 110.0, 70.0)),
}


def _image_data(shape=SHAPE, seed: int = 0) -> np.ndarray:
    """An int16 image whose voxels are all different, so any axis permutation or flip shows."""
    rng = np.random.default_rng(seed)
    return (np.arange(np.prod(shape)).reshape(shape) * 3 + rng.integers(0, 3, size=shape) - 500).astype(np.int16)


def _label_data(shape=SHAPE) -> np.ndarray:
    i, j, k = np.indices(shape)
    return ((i + 2 * j + 3 * k) % 4).astype(np.uint8)


def _prob_data(shape=SHAPE) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.random(shape, dtype=np.float32)


def _write_nifti_input(path: Path, affine: np.ndarray, qform_code: int = 1, sform_code: int = 2) -> Path:
    img = nib.Nifti1Image(_image_data(), affine)
    img.set_qform(affine, code=qform_code)
    img.set_sform(affine, code=sform_code)
    nib.save(img, str(path))
    return path


def _write_itk_input(path: Path, affine: np.ndarray) -> Path:
    spacing, origin, direction = affine_to_itk_geometry(affine)
    image = sitk.GetImageFromArray(_image_data().transpose(2, 1, 0))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    sitk.WriteImage(image, str(path))
    return path


def _sitk_geometry(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    image = sitk.ReadImage(str(path))
    return (np.array(image.GetSpacing()), np.array(image.GetOrigin()), np.array(image.GetDirection()),
            image.GetSize())


def _assert_same_sitk_geometry(out: Path, ref: Path, atol: float) -> None:
    """``out`` read by SimpleITK has the spacing, origin, direction and size of ``ref`` read by SimpleITK."""
    o_spacing, o_origin, o_direction, o_size = _sitk_geometry(out)
    r_spacing, r_origin, r_direction, r_size = _sitk_geometry(ref)
    assert o_size == r_size
    np.testing.assert_allclose(o_spacing, r_spacing, rtol=0, atol=atol)
    np.testing.assert_allclose(o_origin, r_origin, rtol=0, atol=atol)
    np.testing.assert_allclose(o_direction, r_direction, rtol=0, atol=atol)


def _assert_same_nifti_header_geometry(out: Path, ref: Path) -> None:
    """``out`` read by nibabel has exactly the affine, qform/sform and their codes of ``ref`` read by nibabel."""
    o, r = nib.load(str(out)), nib.load(str(ref))
    assert o.shape[:3] == r.shape[:3]
    np.testing.assert_array_equal(o.affine, r.affine)
    assert int(o.header["qform_code"]) == int(r.header["qform_code"])
    assert int(o.header["sform_code"]) == int(r.header["sform_code"])
    np.testing.assert_array_equal(o.header.get_qform(), r.header.get_qform())
    np.testing.assert_array_equal(o.header.get_sform(), r.header.get_sform())
    np.testing.assert_array_equal(o.header.get_zooms()[:3], r.header.get_zooms()[:3])
    assert o.header.get_xyzt_units() == r.header.get_xyzt_units()


def _read_back_nibabel(path: Path) -> np.ndarray:
    return np.asanyarray(nib.load(str(path)).dataobj)


def _read_back_sitk(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).transpose(2, 1, 0)


def _check_arrays(path: Path, label: np.ndarray, prob_path: Path, prob: np.ndarray) -> None:
    """Labels come back as the same integers, probabilities as the same float32 values, with both readers."""
    readers = [_read_back_sitk] + ([_read_back_nibabel] if file_ending(path) in (".nii", ".nii.gz") else [])
    for reader in readers:
        back = reader(path)
        assert np.issubdtype(back.dtype, np.integer), (reader.__name__, back.dtype)
        np.testing.assert_array_equal(back, label)
        back_prob = reader(prob_path)
        # float32 (in the input header's byte order for NIfTI outputs of big-endian NIfTI inputs)
        assert back_prob.dtype.newbyteorder("=") == np.float32, (reader.__name__, back_prob.dtype)
        np.testing.assert_array_equal(back_prob, prob)


# ------------------------------------------------------------------------------------------- NIfTI inputs and outputs


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("in_ending", [".nii", ".nii.gz"])
def test_nifti_input_roundtrip(tmp_path, geometry, in_ending):
    src = _write_nifti_input(tmp_path / f"img{in_ending}", GEOMETRIES[geometry])
    volume = read_volume(src)
    assert volume.shape == SHAPE
    assert volume.path == src
    np.testing.assert_array_equal(volume.array, _image_data())
    np.testing.assert_allclose(volume.affine, nib.load(str(src)).affine, rtol=0, atol=1e-6)
    np.testing.assert_allclose(volume.spacing, np.linalg.norm(GEOMETRIES[geometry][:3, :3], axis=0), atol=1e-5)

    label, prob = _label_data(), _prob_data()
    for out_ending in (".nii", ".nii.gz"):
        out = write_volume(tmp_path / f"label{out_ending}", label, volume)
        out_prob = write_volume(tmp_path / f"prob{out_ending}", prob, volume)
        for path in (out, out_prob):
            _assert_same_nifti_header_geometry(path, src)
            _assert_same_sitk_geometry(path, src, atol=1e-9)
        _check_arrays(out, label, out_prob, prob)


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("out_ending", [".nrrd", ".nhdr", ".mha", ".mhd"])
def test_nifti_input_written_as_itk_format(tmp_path, geometry, out_ending):
    src = _write_nifti_input(tmp_path / "img.nii.gz", GEOMETRIES[geometry])
    volume = read_volume(src)
    label, prob = _label_data(), _prob_data()
    out = write_volume(tmp_path / f"label{out_ending}", label, volume)
    out_prob = write_volume(tmp_path / f"prob{out_ending}", prob, volume)
    for path in (out, out_prob):
        _assert_same_sitk_geometry(path, src, atol=1e-5)  # the NIfTI header stores float32
        np.testing.assert_allclose(read_volume(path).affine, volume.affine, rtol=0, atol=1e-5)
    _check_arrays(out, label, out_prob, prob)


@pytest.mark.parametrize(("qform_code", "sform_code"), [(1, 0), (0, 2), (2, 4), (1, 1)])
def test_nifti_xform_codes_are_kept(tmp_path, qform_code, sform_code):
    src = _write_nifti_input(tmp_path / "img.nii.gz", GEOMETRIES["oblique"], qform_code, sform_code)
    volume = read_volume(src)
    out = write_volume(tmp_path / "label.nii.gz", _label_data(), volume)
    _assert_same_nifti_header_geometry(out, src)
    _assert_same_sitk_geometry(out, src, atol=1e-9)


def test_nifti_with_different_qform_and_sform(tmp_path):
    """When qform and sform differ, both are carried over unchanged (each reader keeps seeing what it saw)."""
    img = nib.Nifti1Image(_image_data(), GEOMETRIES["oblique"])
    img.set_qform(GEOMETRIES["ras"], code=1)
    img.set_sform(GEOMETRIES["oblique"], code=2)
    src = tmp_path / "img.nii.gz"
    nib.save(img, str(src))
    out = write_volume(tmp_path / "label.nii.gz", _label_data(), read_volume(src))
    _assert_same_nifti_header_geometry(out, src)
    _assert_same_sitk_geometry(out, src, atol=1e-9)


def test_scaled_nifti_input_does_not_pass_scaling_to_outputs(tmp_path):
    raw = _image_data()
    img = nib.Nifti1Image(raw, GEOMETRIES["oblique"])
    img.set_qform(GEOMETRIES["oblique"], code=1)
    img.set_sform(GEOMETRIES["oblique"], code=1)
    img.header.set_slope_inter(2.5, -3.0)
    src = tmp_path / "scaled.nii.gz"
    nib.save(img, str(src))
    assert nib.load(str(src)).dataobj.slope == 2.5  # the input really is scaled

    volume = read_volume(src)
    np.testing.assert_allclose(volume.array, raw * 2.5 - 3.0)  # the reader applies the scaling

    label, prob = _label_data(), _prob_data()
    out = write_volume(tmp_path / "label.nii.gz", label, volume)
    out_prob = write_volume(tmp_path / "prob.nii.gz", prob, volume)
    for path, dtype in ((out, np.uint8), (out_prob, np.float32)):
        back = nib.load(str(path))
        assert back.get_data_dtype() == dtype
        assert back.dataobj.slope == 1.0
        assert back.dataobj.inter == 0.0
        _assert_same_nifti_header_geometry(path, src)
        _assert_same_sitk_geometry(path, src, atol=1e-9)
    _check_arrays(out, label, out_prob, prob)
    assert np.asarray(nib.load(str(out)).dataobj.get_unscaled()).dtype == np.uint8


def test_written_dtypes(tmp_path):
    volume = read_volume(_write_nifti_input(tmp_path / "img.nii.gz", GEOMETRIES["ras"]))
    cases = {
        "bool": (_label_data() > 1, np.uint8),
        "float64": (_prob_data().astype(np.float64), np.float32),
        "int64": (_label_data().astype(np.int64), np.int64),
        "int16": (_label_data().astype(np.int16), np.int16),
    }
    for name, (array, dtype) in cases.items():
        for ending in (".nii.gz", ".nrrd"):
            out = write_volume(tmp_path / f"{name}{ending}", array, volume)
            back = read_volume(out).array
            assert back.dtype == dtype, (name, ending, back.dtype)
            np.testing.assert_array_equal(back, array.astype(dtype))


# ----------------------------------------------------------------------------------------------- ITK format inputs


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
@pytest.mark.parametrize("in_ending", [".nrrd", ".nhdr", ".mha", ".mhd"])
def test_itk_input_roundtrip(tmp_path, geometry, in_ending):
    src = _write_itk_input(tmp_path / f"img{in_ending}", GEOMETRIES[geometry])
    volume = read_volume(src)
    assert volume.shape == SHAPE
    assert volume.nifti_header is None
    np.testing.assert_array_equal(volume.array, _image_data())
    np.testing.assert_allclose(volume.affine, GEOMETRIES[geometry], rtol=0, atol=1e-9)

    label, prob = _label_data(), _prob_data()
    out = write_volume(tmp_path / f"label{in_ending}", label, volume)
    out_prob = write_volume(tmp_path / f"prob{in_ending}", prob, volume)
    for path in (out, out_prob):
        _assert_same_sitk_geometry(path, src, atol=1e-9)
    _check_arrays(out, label, out_prob, prob)

    # a NIfTI output of an ITK input: SimpleITK sees the input geometry, nibabel sees the same RAS affine
    out_nii = write_volume(tmp_path / "label.nii.gz", label, volume)
    prob_nii = write_volume(tmp_path / "prob.nii.gz", prob, volume)
    for path in (out_nii, prob_nii):
        _assert_same_sitk_geometry(path, src, atol=1e-5)
        back = nib.load(str(path))
        np.testing.assert_allclose(back.affine, GEOMETRIES[geometry], rtol=0, atol=1e-5)
        assert int(back.header["qform_code"]) > 0 and int(back.header["sform_code"]) > 0
        np.testing.assert_allclose(back.header.get_qform(), back.header.get_sform(), rtol=0, atol=1e-5)
    _check_arrays(out_nii, label, prob_nii, prob)


def test_itk_and_nibabel_agree_on_orientation(tmp_path):
    """The same voxel grid stored as NIfTI (by nibabel) and as MHA (by SimpleITK) reads back to the same Volume."""
    affine = GEOMETRIES["non_ras"]
    a = read_volume(_write_nifti_input(tmp_path / "a.nii.gz", affine))
    b = read_volume(_write_itk_input(tmp_path / "b.mha", affine))
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.affine, b.affine, rtol=0, atol=1e-5)
    assert nib.aff2axcodes(a.affine) == ("I", "L", "P")


def test_itk_geometry_conversion_inverts():
    for affine in GEOMETRIES.values():
        spacing, origin, direction = affine_to_itk_geometry(affine)
        np.testing.assert_allclose(itk_geometry_to_affine(spacing, origin, direction), affine, atol=1e-12)
        # LPS: x and y flip sign relative to RAS
        np.testing.assert_allclose(origin, affine[:3, 3] * [-1, -1, 1])


# ------------------------------------------------------------------------------------------- real files (no download)


@pytest.mark.parametrize("name", ["anatomical.nii", "reoriented_anat_moved.nii", "standard.nii.gz"])
def test_real_nibabel_files(tmp_path, name):
    """nibabel's test data: LAS big-endian int16, big-endian float, qform_code 0 with sform only."""
    src = NIBABEL_DATA / name
    if not src.exists():
        pytest.skip(f"{src} not shipped with this nibabel")
    volume = read_volume(src)
    ref = nib.load(str(src))
    np.testing.assert_array_equal(volume.array, np.asanyarray(ref.dataobj))
    assert volume.array.dtype.isnative  # SimpleITK and torch need native byte order
    label = (volume.array > np.median(volume.array)).astype(np.uint8)
    prob = (volume.array / max(float(np.abs(volume.array).max()), 1.0)).astype(np.float32)
    for ending in (".nii.gz", ".nii"):
        out = write_volume(tmp_path / f"label{ending}", label, volume)
        out_prob = write_volume(tmp_path / f"prob{ending}", prob, volume)
        for path in (out, out_prob):
            _assert_same_nifti_header_geometry(path, src)
            _assert_same_sitk_geometry(path, src, atol=1e-9)
        _check_arrays(out, label, out_prob, prob)
    for ending in (".nrrd", ".mha"):
        out = write_volume(tmp_path / f"label{ending}", label, volume)
        _assert_same_sitk_geometry(out, src, atol=1e-5)
        np.testing.assert_array_equal(_read_back_sitk(out), label)


def test_real_4d_nifti_is_refused(tmp_path):
    src = NIBABEL_DATA / "example_nifti2.nii.gz"
    if not src.exists():
        pytest.skip(f"{src} not shipped with this nibabel")
    with pytest.raises(InputError, match="3D") as info:
        read_volume(src)
    assert str(src) in str(info.value)
    assert info.value.path == src


def test_trailing_singleton_dimension_is_dropped(tmp_path):
    src = tmp_path / "img.nii.gz"
    nib.save(nib.Nifti1Image(_image_data()[..., None], GEOMETRIES["oblique"]), str(src))
    volume = read_volume(src)
    assert volume.shape == SHAPE
    out = write_volume(tmp_path / "label.nii.gz", _label_data(), volume)
    assert nib.load(str(out)).shape == SHAPE
    _assert_same_sitk_geometry(out, src, atol=1e-9)


# ------------------------------------------------------------------------------------------------------ DICOM series


def _write_dicom_series(folder: Path, affine: np.ndarray) -> tuple[np.ndarray, tuple, tuple, tuple]:
    """Write a CT series slice by slice, as in SimpleITK's DicomSeriesFromArray example.

    Returns the (I, J, K) array and the SimpleITK spacing, origin and direction that were written.
    """
    folder.mkdir()
    array = _image_data()
    spacing, origin, direction = affine_to_itk_geometry(affine)
    image = sitk.GetImageFromArray(array.transpose(2, 1, 0))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    uid_root = "1.2.826.0.1.3680043.2.1125"
    series_tags = [
        ("0008|0031", "120000"),  # series time
        ("0008|0021", "20240101"),  # series date
        ("0008|0008", "DERIVED\\SECONDARY"),
        ("0020|000d", f"{uid_root}.1.1"),  # study instance UID
        ("0020|000e", f"{uid_root}.1.2"),  # series instance UID
        # image orientation (patient): row direction (first column of direction), then column direction
        ("0020|0037", "\\".join(f"{direction[i]:.10f}" for i in (0, 3, 6, 1, 4, 7))),
        ("0008|103e", "versaseg test series"),
        ("0008|0060", "CT"),
        ("0028|1050", "0"),
        ("0028|1051", "1000"),
    ]
    for k in range(array.shape[2]):
        slice_image = image[:, :, k]
        for tag, value in series_tags:
            slice_image.SetMetaData(tag, value)
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        slice_image.SetMetaData("0020|0032", "\\".join(f"{p:.10f}" for p in position))  # image position (patient)
        slice_image.SetMetaData("0020|0013", str(k + 1))  # instance number
        slice_image.SetMetaData("0008|0018", f"{uid_root}.1.3.{k + 1}")  # SOP instance UID
        writer.SetFileName(str(folder / f"slice_{(k * 7) % 10:03d}.dcm"))  # file order differs from slice order
        writer.Execute(slice_image)
    return array, spacing, origin, direction


@pytest.mark.parametrize("geometry", ["ras", "oblique", "psl"])  # DICOM slice normals are row x column: right-handed
def test_dicom_series_folder(tmp_path, geometry):
    affine = GEOMETRIES[geometry]
    folder = tmp_path / "series"
    array, spacing, origin, direction = _write_dicom_series(folder, affine)
    volume = read_volume(folder)
    assert volume.shape == SHAPE
    assert volume.path == folder
    np.testing.assert_array_equal(volume.array, array)
    np.testing.assert_allclose(volume.spacing, spacing, rtol=0, atol=1e-5)
    np.testing.assert_allclose(volume.affine, affine, rtol=0, atol=1e-5)
    got_spacing, got_origin, got_direction = affine_to_itk_geometry(volume.affine)
    np.testing.assert_allclose(got_spacing, spacing, atol=1e-5)
    np.testing.assert_allclose(got_origin, origin, atol=1e-5)
    np.testing.assert_allclose(got_direction, direction, atol=1e-6)

    # SimpleITK's own series reading of the folder, for the read-back comparison
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    dicom = reader.Execute()

    label, prob = _label_data(), _prob_data()
    out = write_volume(tmp_path / "pred.nii.gz", label, volume)
    out_prob = write_volume(tmp_path / "prob.nii.gz", prob, volume)
    for path in (out, out_prob):
        back = sitk.ReadImage(str(path))
        assert back.GetSize() == dicom.GetSize()
        np.testing.assert_allclose(back.GetSpacing(), dicom.GetSpacing(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(back.GetOrigin(), dicom.GetOrigin(), rtol=0, atol=1e-4)
        np.testing.assert_allclose(back.GetDirection(), dicom.GetDirection(), rtol=0, atol=1e-5)
        back_nib = nib.load(str(path))
        np.testing.assert_allclose(back_nib.affine, volume.affine, rtol=0, atol=1e-4)
        np.testing.assert_allclose(back_nib.affine, affine, rtol=0, atol=1e-4)
    _check_arrays(out, label, out_prob, prob)
    # and an ITK output of the same series
    out_mha = write_volume(tmp_path / "pred.mha", label, volume)
    back = sitk.ReadImage(str(out_mha))
    np.testing.assert_allclose(back.GetOrigin(), dicom.GetOrigin(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.GetDirection(), dicom.GetDirection(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.GetSpacing(), dicom.GetSpacing(), rtol=0, atol=1e-9)


def test_dicom_folder_picks_the_largest_series(tmp_path):
    folder = tmp_path / "series"
    _write_dicom_series(folder, GEOMETRIES["ras"])
    other = sitk.GetImageFromArray(np.zeros((4, 4), dtype=np.int16))
    other.SetMetaData("0020|000e", "1.2.826.0.1.3680043.2.1125.9.9")
    other.SetMetaData("0008|0060", "CT")
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(folder / "other.dcm"))
    writer.Execute(other)
    assert read_volume(folder).shape == SHAPE


def test_real_pydicom_file(tmp_path):
    pydicom_data = pytest.importorskip("pydicom.data")
    pydicom = pytest.importorskip("pydicom")
    src = Path(pydicom_data.get_testdata_file("CT_small.dcm"))
    folder = tmp_path / "ct"
    folder.mkdir()
    shutil.copy(src, folder / src.name)
    ds = pydicom.dcmread(str(src))

    volume = read_volume(folder)
    assert volume.shape == (int(ds.Columns), int(ds.Rows), 1)
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(volume.array[:, :, 0].T, expected)  # (I, J) = (column, row)
    np.testing.assert_allclose(volume.spacing[:2], [float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0])])
    lps_origin = np.array([float(v) for v in ds.ImagePositionPatient])
    np.testing.assert_allclose(volume.affine[:3, 3], lps_origin * [-1, -1, 1], atol=1e-5)

    label = (volume.array > -500).astype(np.uint8)
    out = write_volume(tmp_path / "pred.nii.gz", label, volume)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    dicom = reader.Execute()
    back = sitk.ReadImage(str(out))
    np.testing.assert_allclose(back.GetOrigin(), dicom.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(back.GetSpacing(), dicom.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(back.GetDirection(), dicom.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(nib.load(str(out)).affine, volume.affine, atol=1e-4)
    np.testing.assert_array_equal(_read_back_nibabel(out), label)


# ------------------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize("ending", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_corrupt_file_is_an_input_error_naming_it(tmp_path, ending):
    path = tmp_path / f"corrupt{ending}"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError) as info:
        read_volume(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert info.value.path == path


def test_truncated_nifti_is_an_input_error(tmp_path):
    src = _write_nifti_input(tmp_path / "img.nii.gz", GEOMETRIES["ras"])
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as info:
        read_volume(src)
    assert str(src) in str(info.value)


def test_missing_file_is_an_input_error_naming_it(tmp_path):
    path = tmp_path / "nope" / "missing_0000.nii.gz"
    with pytest.raises(InputError, match="not found") as info:
        read_volume(path)
    assert str(path) in str(info.value)


def test_folder_without_dicom_is_an_input_error(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "notes.txt").write_text("not dicom")
    with pytest.raises(InputError, match="DICOM") as info:
        read_volume(folder)
    assert str(folder) in str(info.value)


def test_write_checks(tmp_path):
    volume = read_volume(_write_nifti_input(tmp_path / "img.nii.gz", GEOMETRIES["ras"]))
    with pytest.raises(InputError, match="ending") as info:
        write_volume(tmp_path / "out.png", _label_data(), volume)
    assert "out.png" in str(info.value)
    with pytest.raises(ValueError, match="shape"):
        write_volume(tmp_path / "out.nii.gz", np.zeros((8, 9, 11), np.uint8), volume)
    with pytest.raises(ValueError, match="shape"):
        write_volume(tmp_path / "out.nii.gz", np.zeros(SHAPE + (2,), np.uint8), volume)
    assert not (tmp_path / "out.nii.gz").exists()


# --------------------------------------------------------------------------------------------------------- helpers


def test_file_ending_and_case_name():
    assert file_ending("a/BRAIN_001_0000.nii.gz") == ".nii.gz"
    assert file_ending("X.NII") == ".nii"
    assert file_ending("x.mhd") == ".mhd"
    assert file_ending("folder") == ""
    assert case_name("a/BRAIN_001_0000.nii.gz") == "BRAIN_001_0000"
    assert case_name("b.v2.nrrd") == "b.v2"
    assert case_name("dicom_dir") == "dicom_dir"
    assert set(IMAGE_ENDINGS) >= {".nii.gz", ".nii", ".nrrd", ".mha", ".mhd"}


def test_volume_like_and_spacing():
    volume = Volume(np.zeros(SHAPE, np.int16), GEOMETRIES["non_ras"].copy())
    np.testing.assert_allclose(volume.spacing, (3.0, 0.9, 1.7))
    other = volume.like(np.ones(SHAPE, np.uint8))
    np.testing.assert_array_equal(other.affine, volume.affine)
    assert other.affine is not volume.affine
    with pytest.raises(ValueError):
        volume.like(np.ones((2, 2, 2)))


# ------------------------------------------------------------------------------------------- canonical orientation


def _all_orientations():
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            yield perm, signs


def _assert_same_world_positions(array, affine, canonical, canonical_affine) -> None:
    """Every voxel of ``array`` sits, in ``canonical``, at an integer index with the same world position and value."""
    for index in itertools.product(*(range(n) for n in array.shape[:3])):
        world = affine @ np.array([*index, 1.0])
        cidx = np.linalg.solve(canonical_affine, world)[:3]
        cidx_int = tuple(int(round(c)) for c in cidx)
        np.testing.assert_allclose(cidx, cidx_int, atol=1e-6)
        assert canonical[cidx_int] == array[index]


@pytest.mark.parametrize(("perm", "signs"), list(_all_orientations()))
def test_canonical_roundtrip_all_48_orientations(perm, signs):
    shape = (2, 3, 4)
    matrix = np.zeros((3, 3))
    for axis, (world, sign) in enumerate(zip(perm, signs, strict=True)):
        matrix[world, axis] = sign
    affine = _affine(matrix, (1.5, 2.0, 2.5), (5.0, -7.0, 9.0))
    array = np.arange(np.prod(shape)).reshape(shape)

    canonical, canonical_affine, orientation = to_canonical(array, affine)
    assert nib.aff2axcodes(canonical_affine) == ("R", "A", "S")
    assert np.all(np.diag(canonical_affine)[:3] > 0)
    np.testing.assert_allclose(np.linalg.norm(canonical_affine[:3, :3], axis=0),
                               [(1.5, 2.0, 2.5)[list(perm).index(w)] for w in range(3)])
    back = from_canonical(canonical, orientation)
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)

    _assert_same_world_positions(array, affine, canonical, canonical_affine)

    # trailing channel axes follow along
    stacked = np.stack([array, -array], axis=-1)
    canonical_stacked = to_canonical(stacked, affine)[0]
    np.testing.assert_array_equal(canonical_stacked[..., 0], canonical)
    np.testing.assert_array_equal(from_canonical(canonical_stacked, orientation), stacked)


def test_canonical_of_oblique_affine_is_closest_ras():
    affine = GEOMETRIES["oblique"]
    array = _image_data()
    canonical, canonical_affine, orientation = to_canonical(array, affine)
    assert nib.aff2axcodes(canonical_affine) == ("R", "A", "S")
    np.testing.assert_array_equal(from_canonical(canonical, orientation), array)
    _assert_same_world_positions(array, affine, canonical, canonical_affine)
