"""A loaded case: its channels stacked in canonical (RAS+) orientation, its label, and what is needed to write back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from versaseg.io.checks import GEOMETRY_TOLERANCE_MM, check_label_set, check_same_geometry, image_values
from versaseg.io.checks import label_values as checked_label_values
from versaseg.io.dataset import CaseFiles
from versaseg.io.image import Volume, from_canonical, read_volume, to_canonical


@dataclass
class Case:
    """One case in canonical orientation.

    image: (C, X, Y, Z) float32, channels in dataset order, not yet normalised.
    label: (X, Y, Z) int16 or None.
    reference: the first channel as read (original orientation), the geometry every output is written with.
    orientation: the nibabel orientation that maps the original axes to canonical; used by :meth:`to_original`.
    spacing: voxel size in mm along canonical X, Y, Z.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray | None
    reference: Volume
    orientation: np.ndarray
    spacing: tuple[float, float, float]
    label_segments: tuple | None = None  # the label's Slicer segment table when it was read from a .seg.nrrd

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        return tuple(self.image.shape[1:])

    @property
    def affine(self) -> np.ndarray:
        """The voxel -> RAS+ mm affine (4, 4) of :attr:`image` (canonical axis order)."""
        import nibabel.orientations as nio

        return self.reference.affine @ nio.inv_ornt_aff(self.orientation, self.reference.shape)

    def to_original(self, array: np.ndarray) -> np.ndarray:
        """Map a canonical array (X, Y, Z[, ...]) back to the reference volume's axis order."""
        return from_canonical(array, self.orientation)


def case_from_arrays(case_id: str, image: np.ndarray, affine: np.ndarray, label: np.ndarray | None = None) -> Case:
    """A :class:`Case` of canonical arrays ``image (C, X, Y, Z)`` and ``label (X, Y, Z)`` on the grid ``affine``
    (a derived volume: a coarse copy or a crop; its reference is its first channel)."""
    _, _, orientation = to_canonical(np.zeros((1, 1, 1), np.uint8), affine)
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    image = np.ascontiguousarray(image, dtype=np.float32)
    return Case(case_id, image, label, Volume(image[0], np.asarray(affine, float)), orientation, spacing)


def load_case(files: CaseFiles, label_values: set[int] | None = None) -> Case:
    """Read and check a case's channel files and optional label.

    Raises InputError (naming the file) for unreadable files, shape or geometry mismatch between channels and label,
    NaN/Inf in an image, non-integer labels, or label values not in ``label_values``.
    """
    volumes = [read_volume(p) for p in files.images]
    reference = volumes[0]
    channels = []
    for volume in volumes:
        check_same_geometry(volume, reference, "channel")
        channels.append(image_values(volume))
    image = np.stack(channels)
    canonical_first, canonical_affine, orientation = to_canonical(image[0], reference.affine)
    image = np.stack([canonical_first] + [to_canonical(c, reference.affine)[0] for c in image[1:]])
    spacing = tuple(float(s) for s in np.linalg.norm(canonical_affine[:3, :3], axis=0))
    label = segments = None
    if files.label is not None:
        label, segments = load_label(files.label, reference, label_values)
        label = to_canonical(label, reference.affine)[0]
    return Case(files.case_id, np.ascontiguousarray(image), label, reference, orientation, spacing, segments)


def embed_in_reference(volume: Volume, reference: Volume) -> Volume:
    """A segmentation stored on a sub-grid of ``reference`` (3D Slicer can crop a .seg.nrrd to its segments' extent:
    same spacing and directions, origin on a voxel of the reference grid) padded with 0 to the reference grid; any
    other volume is returned unchanged (the geometry check then names the mismatch)."""
    if volume.segments is None or volume.shape == reference.shape:
        return volume
    if not np.allclose(volume.affine[:3, :3], reference.affine[:3, :3], atol=GEOMETRY_TOLERANCE_MM, rtol=0):
        return volume
    offset = (np.linalg.inv(reference.affine) @ volume.affine[:, 3])[:3]
    start = np.round(offset).astype(int)
    stop = start + np.asarray(volume.shape)
    on_grid = np.allclose(offset, start, atol=1e-3)
    if not on_grid or (start < 0).any() or (stop > np.asarray(reference.shape)).any():
        return volume
    padded = np.zeros(reference.shape, volume.array.dtype)
    padded[tuple(slice(a, b) for a, b in zip(start, stop, strict=True))] = volume.array
    return Volume(padded, reference.affine.copy(), volume.path, None, volume.segments)


def load_label(path: Path, reference: Volume, label_values: set[int] | None) -> tuple[np.ndarray, tuple | None]:
    """Read a label volume, check it against ``reference`` and the allowed values; returns (I, J, K) int16 and the
    segment table of a Slicer segmentation (None for other files)."""
    volume = embed_in_reference(read_volume(path), reference)
    check_same_geometry(volume, reference, "label")
    data = checked_label_values(volume)
    if label_values is not None:
        check_label_set(data, label_values, volume)
    return data, volume.segments
