"""Training samplers: random 2D slices along an axis or 3D patches, centred on annotated voxels.

A sample's centre is a random *annotated* voxel (label != ignore), or, with probability ``foreground_fraction``, a
random foreground voxel — so sparse labels (a few annotated slices) are sampled where they carry information.
Each sample carries a ``mask`` of voxels that count in the loss: annotated and inside the image, and, for the
distance-based losses, the per-class signed distance maps (``distance``, mm) cropped and augmented with the label.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from versaseg.data import distance as distance_maps
from versaseg.errors import InputError

_MAX_CANDIDATES = 200_000


@dataclass
class TrainingVolume:
    """A normalised case held in memory. image: (C, X, Y, Z) float32; label: (X, Y, Z) int16.

    ``distance`` is None until :meth:`ensure_distance` computes the (K, X, Y, Z) float32 signed distance maps (mm)
    once, for the losses that need them.
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    annotated: np.ndarray  # (N, 3) int32 coordinates of annotated voxels (subsampled)
    foreground: np.ndarray  # (M, 3) int32 coordinates of annotated foreground voxels (subsampled)
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)  # mm along X, Y, Z
    ignore_label: int | None = None
    distance: np.ndarray | None = None
    distance_key: tuple | None = None  # (num_classes, plane_axis) the maps were computed for

    @classmethod
    def from_arrays(cls, case_id: str, image: np.ndarray, label: np.ndarray, ignore_label: int | None,
                    rng: np.random.Generator, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
                    ) -> TrainingVolume:
        annotated_mask = np.ones(label.shape, bool) if ignore_label is None else label != ignore_label
        if not annotated_mask.any():
            raise InputError(f"case {case_id} has no annotated voxels (every voxel is the ignore label)")
        foreground_mask = annotated_mask & (label > 0)
        return cls(case_id, image, label, _subsample(np.argwhere(annotated_mask), rng),
                   _subsample(np.argwhere(foreground_mask), rng), tuple(float(s) for s in spacing), ignore_label)

    def ensure_distance(self, num_classes: int, plane_axis: int | None) -> np.ndarray:
        """The per-class signed distance maps (K, X, Y, Z), computed on the first call and kept (see
        :mod:`versaseg.data.distance`); ``plane_axis``: in-plane distances for 2D training along that axis."""
        key = (num_classes, plane_axis)
        if self.distance is None or self.distance_key != key:
            self.distance = distance_maps.signed_distance_maps(self.label, num_classes, self.spacing,
                                                               self.ignore_label, plane_axis)
            self.distance_key = key
        return self.distance


def _subsample(coords: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(coords) > _MAX_CANDIDATES:
        coords = coords[np.sort(rng.choice(len(coords), _MAX_CANDIDATES, replace=False))]
    return coords.astype(np.int32)


def patch_start(center: Sequence[int], size: Sequence[int], spatial: Sequence[int]) -> list[int]:
    """Start index of a patch of ``size`` holding ``center``: kept inside the volume where the volume is larger than
    the patch, centred on the volume (padded both sides) where it is smaller."""
    starts = []
    for c, s, n in zip(center, size, spatial, strict=True):
        start = int(c) - s // 2
        starts.append(min(max(start, 0), n - s) if n >= s else -((s - n) // 2))
    return starts


def crop(array: np.ndarray, start: Sequence[int], size: Sequence[int], fill: float) -> np.ndarray:
    """Crop ``array`` (C, *spatial) to ``size`` from ``start`` (may be negative), padding with ``fill`` outside."""
    spatial = array.shape[1:]
    out = np.full((array.shape[0], *size), fill, dtype=array.dtype)
    src, dst = [], []
    for first, s, n in zip(start, size, spatial, strict=True):
        lo, hi = max(first, 0), min(first + s, n)
        src.append(slice(lo, hi))
        dst.append(slice(lo - first, hi - first))
    out[(slice(None), *dst)] = array[(slice(None), *src)]
    return out


def inside_mask(start: Sequence[int], size: Sequence[int], spatial: Sequence[int]) -> np.ndarray:
    """(1, *size) bool: the voxels of a patch from ``start`` (may be negative) that lie inside a volume of shape
    ``spatial`` - what :func:`crop` copies rather than pads."""
    out = np.zeros((1, *size), bool)
    out[(slice(None), *(slice(max(-first, 0), max(min(n - first, s), 0))
                        for first, s, n in zip(start, size, spatial, strict=True)))] = True
    return out


class PatchSampler(torch.utils.data.IterableDataset):
    """Yields training batches forever: dicts of image (B, C, *patch) float32, label (B, 1, *patch) int64 and
    mask (B, 1, *patch) float32 (1 where the voxel counts in the loss); with ``distance=True`` also distance
    (B, K, *patch) float32, the volumes' signed distance maps (call ``TrainingVolume.ensure_distance`` first).

    dim 2: patches are (H, W) slices perpendicular to ``axis`` (0, 1 or 2 of the canonical X, Y, Z); dim 3: (X, Y, Z).
    Randomness comes from ``seed``; call :meth:`set_epoch` so each epoch (and each DDP rank and loader worker)
    draws its own reproducible stream.
    """

    def __init__(self, volumes: Sequence[TrainingVolume], dim: int, axis: int, patch_size: Sequence[int],
                 batch_size: int, foreground_fraction: float, ignore_label: int | None, seed: int,
                 rank: int = 0, augment=None, distance: bool = False):
        super().__init__()
        self.volumes = list(volumes)
        self.dim, self.axis = dim, axis
        self.patch_size = tuple(int(p) for p in patch_size)
        self.batch_size = batch_size
        self.foreground_fraction = foreground_fraction
        self.ignore_label = ignore_label
        self.seed, self.rank, self.epoch = seed, rank, 0
        self.augment = augment
        self.distance = distance
        self.keys = ("image", "label", "mask", "distance") if distance else ("image", "label", "mask")
        if distance and any(v.distance is None for v in self.volumes):
            raise ValueError("distance=True needs every volume's distance maps (TrainingVolume.ensure_distance)")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _stream_seed(self) -> list[int]:
        info = torch.utils.data.get_worker_info()
        return [self.seed, self.epoch, self.rank, 0 if info is None else info.id]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        stream = self._stream_seed()
        rng = np.random.default_rng(stream)
        if self.augment is not None:
            self.augment.set_random_state(seed=int(np.random.SeedSequence(stream).generate_state(1)[0]))
        while True:
            samples = [self.sample(rng) for _ in range(self.batch_size)]
            yield {key: torch.from_numpy(np.stack([s[key] for s in samples])) for key in self.keys}

    def sample(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        volume = self.volumes[rng.integers(len(self.volumes))]
        pool = volume.foreground if len(volume.foreground) and rng.random() < self.foreground_fraction \
            else volume.annotated
        center = pool[rng.integers(len(pool))]
        label = volume.label[None]
        distance = volume.distance if self.distance else None
        if self.dim == 2:
            index = int(center[self.axis])
            image = np.take(volume.image, index, axis=self.axis + 1)
            label = np.take(label, index, axis=self.axis + 1)
            if distance is not None:
                distance = np.take(distance, index, axis=self.axis + 1)
            center = np.delete(center, self.axis)
        else:
            image = volume.image
        jitter = rng.integers(-(np.asarray(self.patch_size) // 4), np.asarray(self.patch_size) // 4 + 1)
        start = patch_start(center + jitter, self.patch_size, image.shape[1:])
        image = crop(image, start, self.patch_size, 0.0)
        # the loss mask is built on the patch only (never on the whole volume: that cost grows with the case):
        # voxels outside the image (padding) and ignore-label voxels do not count
        inside = inside_mask(start, self.patch_size, label.shape[1:])
        label = crop(label, start, self.patch_size, 0).astype(np.int64)
        mask = inside if self.ignore_label is None else inside & (label != self.ignore_label)
        label[~mask] = 0
        mask = mask.astype(np.float32)
        sample = {"image": image, "label": label, "mask": mask}
        if distance is not None:
            sample["distance"] = crop(distance, start, self.patch_size, 0.0)
        if self.augment is not None:
            sample = self.augment(sample)
            sample = {k: np.asarray(v) for k, v in sample.items()}
            sample["label"] = np.rint(sample["label"]).astype(np.int64)
            sample["mask"] = (sample["mask"] > 0.5).astype(np.float32)
            sample["image"] = sample["image"].astype(np.float32)
            if distance is not None:
                sample["distance"] = sample["distance"].astype(np.float32)
        return sample
