"""Set up and run training: dataset -> cases -> split -> normalisation -> network -> Trainer -> run directory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import torch

from versaseg.data.augment import build_augmentation
from versaseg.data.case import load_case
from versaseg.data.normalization import fit_normalization, normalize
from versaseg.data.sampling import TrainingVolume
from versaseg.errors import InputError
from versaseg.io.atomic import remove_stale_temporaries
from versaseg.io.dataset import load_dataset
from versaseg.networks.registry import build_network
from versaseg.progress import progress
from versaseg.training.config import TrainConfig
from versaseg.training.distributed import barrier, broadcast_flag, cleanup, init_distributed, resolve_device
from versaseg.training.trainer import Trainer

RUN_FILES = ("config.json", "model.pt", "checkpoint.pt", "metrics.csv", "curves.png", "tensorboard", "checkpoints",
             "checkpoints.json")


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


def prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber an existing run unless --overwrite (then clear only versaseg's own files)."""
    if resume:
        if not (run_dir / "checkpoint.pt").exists():
            raise InputError("--resume given but there is no checkpoint.pt to resume from", run_dir)
        remove_stale_temporaries(run_dir)
        return
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise InputError("run directory exists and is not empty; pass --resume to continue or --overwrite", run_dir)
        if not (run_dir / "config.json").exists():
            raise InputError("refusing to --overwrite a non-empty folder that is not a versaseg run", run_dir)
        for name in RUN_FILES:
            path = run_dir / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    run_dir.mkdir(parents=True, exist_ok=True)


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


def train(config: TrainConfig, dataset_root: str | Path, run_dir: str | Path, resume: bool = False,
          overwrite: bool = False, device: str = "auto") -> Trainer:
    """Train a network as ``config`` says; with ``resume`` the run's own config.json is used (``epochs`` may grow).

    Works as one process or under ``torchrun`` (DistributedDataParallel; rank 0 writes the run directory).
    Returns the trainer (its ``network`` holds the final weights).
    """
    import monai

    import versaseg

    run_dir, dataset_root = Path(run_dir), Path(dataset_root)
    torch_device = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0")))
    dist = init_distributed(torch_device)
    try:
        ok = True
        if dist.is_main:
            try:
                prepare_run_dir(run_dir, resume, overwrite)
            except InputError:
                ok = False
                broadcast_flag(False, dist)
                raise
        if not broadcast_flag(ok, dist):
            raise InputError("rank 0 rejected the run directory", run_dir)
        if resume:
            epochs = config.epochs
            config = TrainConfig.load(run_dir)
            config.epochs = max(config.epochs, epochs)
        config.validate()
        config.dataset = str(dataset_root)
        volumes, shapes = load_training_volumes(config, dataset_root, dist.is_main)
        if not config.train_cases:
            config.train_cases, config.val_cases = split_cases(list(volumes), config.val_fraction, config.seed)
        missing = sorted(set(config.train_cases + config.val_cases) - set(volumes))
        if missing:
            raise InputError(f"cases {missing} of the run's split are not in the dataset", dataset_root)
        torch.manual_seed(config.seed)
        network = build_network(config.network, config.spatial_dims, len(config.channel_names), config.num_classes,
                                **config.network_kwargs)
        divisor = int(getattr(network, "required_divisor", 1))
        if not config.patch_size:
            config.patch_size = default_patch_size(shapes, config.dim, config.axis, divisor)
        bad = [p for p in config.patch_size if p % divisor]
        if bad:
            raise InputError(f"--patch-size values must be multiples of {divisor} for this network, got {bad}")
        if not config.batch_size:
            config.batch_size = 16 if config.dim == "2d" else 2
        config.versions = {"versaseg": versaseg.__version__, "torch": torch.__version__, "monai": monai.__version__}
        if dist.is_main:
            config.save(run_dir)
        trainer = Trainer(config, network, [volumes[i] for i in config.train_cases],
                          [volumes[i] for i in config.val_cases], run_dir, torch_device, dist,
                          augment=build_augmentation(config.augmentation, config.spatial_dims))
        if resume:
            trainer.resume()
        barrier(dist)
        trainer.fit()
        return trainer
    finally:
        cleanup(dist)
