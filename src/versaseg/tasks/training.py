"""``versaseg train``: dataset -> cases -> split -> normalisation -> network -> shared Trainer loop -> run directory."""

from __future__ import annotations

from pathlib import Path

import torch

from versaseg.data.augment import build_augmentation
from versaseg.errors import InputError
from versaseg.evaluation.validation import SegmentationValidator
from versaseg.io.run_dir import prepare_run_dir
from versaseg.networks.registry import build_network
from versaseg.training.config import TrainConfig
from versaseg.training.distributed import barrier, distributed_run
from versaseg.training.run import default_patch_size, load_training_volumes, split_cases
from versaseg.training.steps import segmentation_trainer
from versaseg.training.trainer import Trainer, load_checkpoint


def train(config: TrainConfig, dataset_root: str | Path, run_dir: str | Path, resume: bool = False,
          overwrite: bool = False, device: str | torch.device = "auto") -> Trainer:
    """Train a segmentation network as ``config`` says; with ``resume`` the run's own config.json is used
    (``epochs`` may grow).

    Works as one process or under ``torchrun`` (DistributedDataParallel; rank 0 writes the run directory). The run
    directory is created only once the dataset has been read and checked. Returns the trainer (its ``network``
    holds the final weights).
    """
    run_dir, dataset_root = Path(run_dir), Path(dataset_root)
    with distributed_run(run_dir, resume, overwrite, device) as (torch_device, dist):
        checkpoint = load_checkpoint(run_dir) if resume else None  # a bad file fails before the data loads
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
        config.stamp_versions()
        if dist.is_main:
            prepare_run_dir(run_dir, resume, overwrite)
            config.save(run_dir)
        val_volumes = [volumes[i] for i in config.val_cases]
        validator = SegmentationValidator(network, val_volumes, config, torch_device) if val_volumes else None
        trainer = segmentation_trainer(config, network, [volumes[i] for i in config.train_cases], torch_device,
                                       build_augmentation(config.augmentation, config.spatial_dims), dist,
                                       run_dir=run_dir, validator=validator)
        barrier(dist)
        if resume:
            trainer.resume(checkpoint)
        trainer.fit()
        return trainer
