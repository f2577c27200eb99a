"""Paired (source, target) channels of a dataset: channel lookup, intensity scaling, brain masks, batch sampling.

Intensities: every image is clipped to its own ``percentiles`` (default 0.5 and 99.9, over the whole volume) and
mapped linearly to [-1, 1] (:func:`scale_to_unit`). The generator's [-1, 1] output goes back to scanner units through
the target's typical range stored in the run (:func:`unit_to_range`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from versaseg.data.case import Case, load_case
from versaseg.data.sampling import crop, patch_start
from versaseg.errors import InputError
from versaseg.io.dataset import CaseFiles, DatasetSpec

FILL = -1.0  # the scaled value of the darkest intensity; padding outside the image


def resolve_channel(spec: DatasetSpec, value: str | int, option: str) -> tuple[int, str]:
    """A channel given by name (as in dataset.json ``channel_names``, case-insensitive) or index -> (index, name)."""
    text = str(value).strip()
    for index, name in spec.channel_names.items():
        if name == text:
            return index, name
    for index, name in spec.channel_names.items():
        if name.lower() == text.lower():
            return index, name
    if text.lstrip("-").isdigit() and int(text) in spec.channel_names:
        return int(text), spec.channel_names[int(text)]
    valid = ", ".join(f"{i} {n}" for i, n in sorted(spec.channel_names.items()))
    raise InputError(f"{option} '{text}' is not a channel of the dataset; valid: {valid}", spec.root / "dataset.json")


def intensity_range(image: np.ndarray, percentiles: Sequence[float]) -> tuple[float, float]:
    """The (low, high) percentiles of ``image``; high > low (a flat image gets high = low + 1)."""
    low, high = (float(v) for v in np.percentile(image, list(percentiles)))
    return (low, high) if high > low else (low, low + 1.0)


def scale_to_unit(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip to [low, high] and map linearly to [-1, 1] (float32)."""
    return (2.0 * (np.clip(image, low, high) - low) / (high - low) - 1.0).astype(np.float32)


def unit_to_range(scaled: np.ndarray, low: float, high: float) -> np.ndarray:
    """Inverse of :func:`scale_to_unit` inside the range: [-1, 1] -> [low, high] (float32)."""
    return (low + (np.clip(scaled, -1.0, 1.0) + 1.0) * 0.5 * (high - low)).astype(np.float32)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1D sample: maximum between-class variance over a histogram; where the maximum is a
    plateau (an empty gap between the classes), the middle of the plateau."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = np.cumsum(hist).astype(np.float64)
    weight1 = weight0[-1] - weight0
    sum0 = np.cumsum(hist * centres)
    mean0 = sum0 / np.maximum(weight0, 1)
    mean1 = (sum0[-1] - sum0) / np.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    if len(centres) < 2:
        return float(centres[0])
    between = between[:-1]
    best = np.flatnonzero(between >= between.max() * (1 - 1e-9))
    return float((edges[best[0] + 1] + edges[best[-1] + 1]) / 2)


def foreground_mask(image: np.ndarray) -> np.ndarray:
    """Head/brain foreground of an image: above Otsu's threshold, largest connected component, holes filled."""
    from scipy import ndimage

    mask = image > otsu_threshold(image.ravel())
    components, count = ndimage.label(mask)
    if count > 1:
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        mask = components == int(np.argmax(sizes))
    mask = ndimage.binary_fill_holes(mask)
    return mask if mask.any() else np.ones(image.shape, bool)


def brain_mask(label: np.ndarray | None, source: np.ndarray, ignore_label: int | None) -> np.ndarray:
    """Voxels the metrics count: the label's non-background voxels; without a (fully annotated) label, or when it
    has no foreground, the Otsu foreground of the source image."""
    if label is not None and not (ignore_label is not None and (label == ignore_label).any()):
        mask = label > 0
        if mask.any():
            return mask
    return foreground_mask(source)


@dataclass
class PairedVolume:
    """One case's source and target, scaled to [-1, 1], in canonical (X, Y, Z) orientation.

    source, target: (X, Y, Z) float32; mask: (X, Y, Z) bool brain mask; coords: (N, 3) int32 mask voxels (samples
    are centred on them); source_range/target_range: the case's own (low, high) percentiles in scanner units.
    """

    case_id: str
    source: np.ndarray
    target: np.ndarray
    mask: np.ndarray
    coords: np.ndarray
    source_range: tuple[float, float]
    target_range: tuple[float, float]


def load_pair(files: CaseFiles, source_index: int, target_index: int, percentiles: Sequence[float],
              ignore_label: int | None, label_values: set[int] | None) -> PairedVolume:
    """Read a case's source and target channel (and label), check them (geometry, NaN, label values), scale them."""
    pair = CaseFiles(files.case_id, [files.images[source_index], files.images[target_index]], files.label)
    case: Case = load_case(pair, label_values)
    source, target = case.image[0], case.image[1]
    source_range = intensity_range(source, percentiles)
    target_range = intensity_range(target, percentiles)
    mask = brain_mask(case.label, source, ignore_label)
    coords = np.argwhere(mask).astype(np.int32)
    return PairedVolume(case.case_id, scale_to_unit(source, *source_range), scale_to_unit(target, *target_range),
                        mask, coords, source_range, target_range)


class PairSampler(torch.utils.data.IterableDataset):
    """Yields random training batches of (source, target) pairs forever: dicts of source, target (B, 1, *patch)
    float32, as 2D slices perpendicular to ``axis`` or 3D patches.

    Each sample is centred (with a random jitter of up to a quarter patch) on a random brain-mask voxel of a random
    case, so 2D slices are drawn in proportion to their brain area. Patches larger than the image are padded with
    :data:`FILL` (the darkest value). Randomness comes from ``seed``; call :meth:`set_epoch` so each epoch (and each
    DDP rank and loader worker) draws its own reproducible stream.
    """

    def __init__(self, volumes: Sequence[PairedVolume], dim: str, axis: int, patch_size: Sequence[int],
                 batch_size: int, seed: int = 0, rank: int = 0):
        super().__init__()
        self.volumes = list(volumes)
        self.dim, self.axis = dim, axis
        self.patch_size = tuple(int(p) for p in patch_size)
        self.batch_size = batch_size
        self.seed, self.rank, self.epoch = seed, rank, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, 0 if info is None else info.id])
        while True:
            samples = [self.sample(rng) for _ in range(self.batch_size)]
            yield {"source": torch.from_numpy(np.stack([s for s, _ in samples])),
                   "target": torch.from_numpy(np.stack([t for _, t in samples]))}

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One (source, target) pair, each (1, *patch) float32."""
        volume = self.volumes[rng.integers(len(self.volumes))]
        centre = volume.coords[rng.integers(len(volume.coords))]
        stack = np.stack([volume.source, volume.target])  # (2, X, Y, Z)
        if self.dim == "2d":
            stack = np.take(stack, int(centre[self.axis]), axis=self.axis + 1)
            centre = np.delete(centre, self.axis)
        size = np.asarray(self.patch_size)
        jitter = rng.integers(-(size // 4), size // 4 + 1)
        start = patch_start(centre + jitter, self.patch_size, stack.shape[1:])
        patch = crop(stack, start, self.patch_size, FILL)
        return patch[0:1], patch[1:2]
