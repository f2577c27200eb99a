"""What a training run derives from its dataset: the cases (loaded, checked, normalised), the split, the patch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from versaseg.data.case import load_case
from versaseg.data.normalization import fit_normalization, normalize
from versaseg.data.sampling import TrainingVolume
from versaseg.io.dataset import load_dataset
from versaseg.progress import progress
from versaseg.training.config import TrainConfig


def split_cases(case_ids: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic train/validation split; at least one case of each when there are two or more cases."""
    ids = sorted(case_ids)
    if len(ids) < 2 or val_fraction == 0:
        return ids, []
    order = np.random.default_rng(seed).permutation(len(ids))
    n_val = min(max(1, round(val_fraction * len(ids))), len(ids) - 1)
    val = sorted(ids[i] for i in order[:n_val])
    return [i for i in ids if i not in val], val


def default_patch_size(shapes: list[tuple[int, int, int]], dim: str, axis: int, divisor: int) -> list[int]:
    """Median case shape (the slice for 2D), rounded up to the network's divisor, capped at 256 (2D) / 96 (3D)."""
    median = np.median(np.array(shapes), axis=0).astype(int)
    if dim == "2d":
        median, cap = np.delete(median, axis), 256
    else:
        cap = 96
    return [int(min(-(-m // divisor) * divisor, cap)) for m in median]


def smallest_patch(shapes: list[tuple[int, int, int]], config: TrainConfig, divisor: int) -> list[int]:
    """The smallest of ``shapes`` (X, Y, Z) per axis (without the slicing axis for 2D), rounded down to ``divisor``
    and capped like :func:`default_patch_size`: a patch that never needs padding (the cascade's stages)."""
    smallest = np.min(np.asarray(shapes), axis=0)
    cap = 256 if config.dim == "2d" else 96
    if config.dim == "2d":
        smallest = np.delete(smallest, config.axis)
    return [int(max(divisor, min(int(v), cap) // divisor * divisor)) for v in smallest]


def load_training_volumes(config: TrainConfig, dataset_root: Path, show_progress: bool):
    """Load, check and normalise every training case. Returns ({case_id: TrainingVolume}, [shapes], [spacings])."""
    spec = load_dataset(dataset_root)
    files = spec.training_cases()
    allowed = set(spec.labels.values())
    cases = [load_case(f, allowed) for f in progress(files, "load cases", "case", enabled=show_progress, leave=False)]
    if not config.normalization:
        config.channel_names = [spec.channel_names[i] for i in range(spec.num_channels)]
        config.labels = dict(spec.labels)
        config.ignore_label = spec.ignore_label
        train_ids = set(config.train_cases) or {c.case_id for c in cases}
        fit_on = [c for c in cases if c.case_id in train_ids]
        config.normalization = fit_normalization([c.image for c in fit_on], [c.label for c in fit_on],
                                                 config.channel_names, config.ignore_label)
        config.spacing = [float(s) for s in np.median([c.spacing for c in cases], axis=0)]
    rng = np.random.default_rng(config.seed)
    volumes = {c.case_id: TrainingVolume.from_arrays(c.case_id, normalize(c.image, config.normalization), c.label,
                                                     config.ignore_label, rng, spacing=c.spacing) for c in cases}
    return volumes, [c.spatial_shape for c in cases]
