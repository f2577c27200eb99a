"""Read and write 3D volumes with their geometry: NIfTI, NRRD, MHA/MHD and DICOM series.

Every volume is held as a voxel array in index order ``(I, J, K)`` (the order nibabel uses; SimpleITK's arrays are
reversed on the way in and out) plus a 4x4 ``affine`` that maps voxel indices to RAS+ millimetres. NIfTI inputs keep
their header, so an output written "like" a NIfTI input carries the input's exact qform/sform; every other output is
written through SimpleITK with the input's spacing, origin and direction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from versaseg.errors import InputError
from versaseg.io import header, header_itk, header_nifti
from versaseg.io.atomic import atomic_path, check_writable

NIFTI_ENDINGS = (".nii.gz", ".nii")
ITK_ENDINGS = (".seg.nrrd", ".nrrd", ".nhdr", ".mha", ".mhd")  # .seg.nrrd: a 3D Slicer segmentation
IMAGE_ENDINGS = NIFTI_ENDINGS + ITK_ENDINGS
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Volume:
    """A 3D volume: ``array`` of shape (I, J, K) and ``affine`` (4, 4) voxel -> RAS+ mm."""

    array: np.ndarray
    affine: np.ndarray
    path: Path | None = None
    nifti_header: object | None = field(default=None, repr=False)
    segments: tuple | None = None  # Slicer segment table (:class:`versaseg.io.segmentation.Segment`) of a .seg.nrrd

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along I, J, K."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def like(self, array: np.ndarray) -> Volume:
        """A volume with this geometry (and header) and a new array of the same spatial shape."""
        if tuple(array.shape[:3]) != self.shape[:3]:
            raise ValueError(f"array shape {array.shape} does not match volume shape {self.shape}")
        return Volume(array, self.affine.copy(), None, self.nifti_header)


def file_ending(path: str | Path) -> str:
    """The image file ending of ``path`` ('.nii.gz', '.nrrd', ...), or '' for a folder or unknown ending."""
    name = Path(path).name.lower()
    for ending in IMAGE_ENDINGS:
        if name.endswith(ending):
            return ending
    return ""


def case_name(path: str | Path) -> str:
    """The file name without its image ending ('BRAIN_001_0000.nii.gz' -> 'BRAIN_001_0000')."""
    name = Path(path).name
    ending = file_ending(path)
    return name[: len(name) - len(ending)] if ending else name


def itk_geometry_to_affine(spacing, origin, direction) -> np.ndarray:
    """SimpleITK spacing/origin/direction (LPS) -> 4x4 RAS+ affine for (I, J, K) index order."""
    direction = np.asarray(direction, dtype=float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(spacing, dtype=float)[None, :]
    affine[:3, 3] = np.asarray(origin, dtype=float)
    return _LPS_TO_RAS @ affine


def affine_to_itk_geometry(affine: np.ndarray) -> tuple[tuple, tuple, tuple]:
    """4x4 RAS+ affine -> SimpleITK (spacing, origin, direction) in LPS."""
    lps = _LPS_TO_RAS @ np.asarray(affine, dtype=float)
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    direction = lps[:3, :3] / spacing[None, :]
    return tuple(map(float, spacing)), tuple(map(float, lps[:3, 3])), tuple(map(float, direction.ravel()))


def _native_byte_order(array: np.ndarray) -> np.ndarray:
    """``array`` in the machine's byte order (big-endian NIfTI data breaks SimpleITK and torch otherwise)."""
    if not array.dtype.isnative:
        return array.astype(array.dtype.newbyteorder("="))
    return array


def _squeeze_to_3d(array: np.ndarray, path: Path) -> np.ndarray:
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise InputError(f"expected a 3D volume, got an array of shape {array.shape} (one file per channel)", path)
    return array


def _read_nifti(path: Path) -> Volume:
    """Check the raw header (:func:`versaseg.io.header_nifti.check_nifti_header`), then let nibabel read the voxels."""
    import nibabel as nib

    info = header_nifti.check_nifti_header(path)
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise header_nifti.nifti_read_error(exc, path, info) from None
    header.check_affine(img.affine, path)
    try:
        array = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel / gzip / zlib: short or corrupt voxel data
        raise header_nifti.nifti_read_error(exc, path, info) from None
    array = _native_byte_order(_squeeze_to_3d(array, path))
    return Volume(array, np.asarray(img.affine, dtype=float), path, img.header.copy())


def _read_itk(path: Path):
    """Read an NRRD/MetaImage file with SimpleITK after checking its header (size, type, geometry, data size)."""
    import SimpleITK as sitk

    header_itk.check_itk_text_header(path)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        header_itk.locate_itk_data(path)  # a clearer message for a header cut short, if that is what is wrong
        raise InputError(f"cannot read image ({header_itk.itk_reason(exc)})", path) from None
    from versaseg.io.segmentation import is_segmentation_path

    layers = reader.GetNumberOfComponents()
    if layers != 1 and (is_segmentation_path(path) or "Segment0_LabelValue" in reader.GetMetaDataKeys()):
        raise _layers_error(layers, path)
    size = header_itk.check_itk_information(reader, path)
    header_itk.check_itk_data_size(path, size, reader.GetPixelID(), reader.GetNumberOfComponents())
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"cannot read image ({header_itk.itk_reason(exc)})", path) from None
    if image.GetDimension() == 4:  # one volume (checked above): drop the fourth axis
        image = sitk.Extract(image, [*image.GetSize()[:3], 0], [0, 0, 0, 0],
                             sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOSUBMATRIX)
    return image


def _layers_error(layers: int, path: Path) -> InputError:
    return InputError(f"segmentation has {layers} layers (overlapping segments); versaseg reads one layer of "
                      "non-overlapping segments: in Slicer, make the segments not overlap (Segment Editor, masking "
                      "'overwrite all') and save again", path)


def _sitk_to_volume(image, path: Path) -> Volume:
    import SimpleITK as sitk

    from versaseg.io.segmentation import check_labels_described, is_segmentation_path, parse_segments

    keys = set(image.GetMetaDataKeys())
    segmentation = is_segmentation_path(path) or "Segment0_LabelValue" in keys
    if segmentation and image.GetNumberOfComponentsPerPixel() != 1:
        raise _layers_error(image.GetNumberOfComponentsPerPixel(), path)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError("multi-component images are not supported; store one channel per file", path)
    if image.GetDimension() != 3:
        raise InputError(f"expected a 3D image, got {image.GetDimension()}D", path)
    header.check_spacing(image.GetSpacing(), path)
    header.check_matrix(np.reshape(image.GetDirection(), (3, 3)), path, "direction matrix")
    array = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
    affine = itk_geometry_to_affine(image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    header.check_affine(affine, path)
    segments = None
    if segmentation:
        if not np.issubdtype(array.dtype, np.integer):
            raise InputError(f"segmentation voxels must be integers, got {array.dtype}", path)
        segments = parse_segments({k: image.GetMetaData(k) for k in keys}, path)
        check_labels_described(array, segments, path)
    return Volume(np.ascontiguousarray(array), affine, path, None, segments)


def _read_dicom_series(folder: Path) -> Volume:
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    series_ids = reader.GetGDCMSeriesIDs(str(folder))
    if not series_ids:
        raise InputError("folder holds no DICOM series", folder)
    files_per_series = {sid: reader.GetGDCMSeriesFileNames(str(folder), sid) for sid in series_ids}
    series = max(files_per_series, key=lambda sid: len(files_per_series[sid]))
    header_itk.check_dicom_series(list(files_per_series[series]), folder)
    reader.SetFileNames(files_per_series[series])
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"cannot read DICOM series {series} ({header_itk.itk_reason(exc)})", folder) from None
    return _sitk_to_volume(image, folder)


def read_volume(path: str | Path) -> Volume:
    """Read a 3D volume from a NIfTI/NRRD/MHA/MHD file or a folder holding one DICOM series.

    The header is checked before any voxel memory is allocated (:mod:`versaseg.io.header`: shape, voxel type,
    spacing, orientation, data size, the voxel limit). Raises :class:`InputError` naming the file and the problem for
    a missing, unreadable, corrupt or non-3D input.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        return _read_dicom_series(path)
    if path.stat().st_size == 0:
        raise InputError("file is empty", path)
    ending = file_ending(path)
    if ending in NIFTI_ENDINGS:
        return _read_nifti(path)
    return _sitk_to_volume(_read_itk(path), path)


def write_volume(path: str | Path, array: np.ndarray, like: Volume, overwrite: bool = False,
                 segments: tuple | None = None) -> Path:
    """Write ``array`` (I, J, K) with exactly the geometry of ``like``, atomically.

    NIfTI outputs of NIfTI inputs reuse the input header (qform, sform and their codes); other outputs get the input's
    spacing/origin/direction through SimpleITK. A ``.seg.nrrd`` output is a Slicer segmentation of the integer
    labelmap ``array`` with the segment table ``segments`` (:class:`versaseg.io.segmentation.Segment`; None: one
    default segment per label value present). Refuses to replace an existing file unless ``overwrite``.
    """
    from versaseg.io.segmentation import default_segments, is_segmentation_path, segment_metadata

    array = _native_byte_order(np.asarray(array))
    # free space: known for uncompressed NIfTI (header + voxels); compressed outputs are smaller than they can tell
    path = check_writable(path, overwrite, expected_bytes=array.nbytes + 352 if file_ending(path) == ".nii" else 0)
    if array.shape[:3] != like.array.shape[:3] or array.ndim != 3:
        raise ValueError(f"array shape {array.shape} does not match reference shape {like.array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8)
    if array.dtype in (np.float64, np.float16):
        array = array.astype(np.float32)
    ending = file_ending(path)
    if not ending:
        raise InputError(f"unknown output file ending; use one of {', '.join(IMAGE_ENDINGS)}", path)
    metadata = {}
    if is_segmentation_path(path):
        if not (np.issubdtype(array.dtype, np.integer) or np.all(np.mod(array, 1) == 0)):
            raise ValueError("a segmentation (.seg.nrrd) holds integer label values")
        array = array.astype(np.uint8 if array.size == 0 or (array.min() >= 0 and array.max() < 256) else np.int16)
        if segments is None:
            segments = default_segments(np.unique(array))
        metadata = segment_metadata(segments, array)
    with atomic_path(path) as tmp:
        if ending in NIFTI_ENDINGS:
            _write_nifti(tmp, array, like)
        else:
            _write_itk(tmp, array, like, metadata)
    return path


def _write_nifti(path: Path, array: np.ndarray, like: Volume) -> None:
    import nibabel as nib

    if like.nifti_header is not None:
        header = like.nifti_header.copy()
        header.set_data_dtype(array.dtype)
        header.set_data_shape(array.shape)
        img = nib.Nifti1Image(array, None, header=header)
        img.header.set_slope_inter(1.0, 0.0)
        img.set_qform(*like.nifti_header.get_qform(coded=True))
        img.set_sform(*like.nifti_header.get_sform(coded=True))
    else:
        img = nib.Nifti1Image(array, like.affine)
        img.set_qform(like.affine, code=1)
        img.set_sform(like.affine, code=1)
    nib.save(img, str(path))


def _write_itk(path: Path, array: np.ndarray, like: Volume, metadata: dict[str, str] | None = None) -> None:
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    spacing, origin, direction = affine_to_itk_geometry(like.affine)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    for key, value in (metadata or {}).items():
        image.SetMetaData(key, value)
    sitk.WriteImage(image, str(path), useCompression=True)


def to_canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorient ``array`` (I, J, K, ...) to the closest RAS+ axis order without resampling.

    Returns ``(canonical_array, canonical_affine, orientation)``; pass ``orientation`` to :func:`from_canonical`.
    """
    import nibabel.orientations as nio

    ornt = nio.io_orientation(affine)
    canonical = nio.apply_orientation(array, ornt)
    canonical_affine = affine @ nio.inv_ornt_aff(ornt, array.shape[:3])
    return np.ascontiguousarray(canonical), canonical_affine, ornt


def from_canonical(array: np.ndarray, orientation: np.ndarray) -> np.ndarray:
    """Undo :func:`to_canonical` on an array (I', J', K', ...) in canonical axis order."""
    import nibabel.orientations as nio

    back = nio.ornt_transform(nio.axcodes2ornt("RAS"), orientation)
    return np.ascontiguousarray(nio.apply_orientation(array, back))


def stored_axis(canonical_axis: int, orientation: np.ndarray) -> int:
    """The stored array axis that :func:`to_canonical` (``orientation``) moved to ``canonical_axis``."""
    return int(np.flatnonzero(orientation[:, 0] == canonical_axis)[0])


def stored_index(canonical_index: int, canonical_axis: int, orientation: np.ndarray,
                 stored_shape: tuple[int, ...]) -> int:
    """The stored array's index of slice ``canonical_index`` along ``canonical_axis`` (``stored_shape``: the
    stored array's shape; a flipped axis counts from its end)."""
    row = stored_axis(canonical_axis, orientation)
    flipped = orientation[row, 1] < 0
    size = stored_shape[row]
    return size - 1 - canonical_index if flipped else canonical_index


def orientation_of(affine: np.ndarray) -> np.ndarray:
    """The nibabel orientation of ``affine`` (what :func:`to_canonical` applies): row i = (canonical axis, flip)."""
    import nibabel.orientations as nio

    return nio.io_orientation(affine)
