"""The training loop: sample -> forward -> masked loss -> step; validate; checkpoint atomically every epoch.

Randomness is re-seeded at the start of every epoch from (seed, epoch, rank), so a run resumed from the checkpoint
of epoch e replays epoch e+1 exactly as an uninterrupted run would.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from versaseg.data.sampling import PatchSampler, TrainingVolume
from versaseg.inference.window import predict_probabilities
from versaseg.losses.registry import build_loss
from versaseg.progress import bar_enabled
from versaseg.training.checkpoint import load_safe, save_atomic, save_snapshot
from versaseg.training.config import TrainConfig
from versaseg.training.distributed import DistInfo, barrier
from versaseg.training.history import EpochLogger


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def poly_lr(epochs: int):
    """nnU-Net's polynomial decay factor per epoch."""
    return lambda epoch: (1 - min(epoch, epochs - 1) / epochs) ** 0.9


def validation_dice(probs: torch.Tensor, label: np.ndarray, ignore_label: int | None) -> np.ndarray:
    """Dice per foreground class over annotated voxels. probs: (K, X, Y, Z); label: (X, Y, Z). Returns (K-1,)."""
    from versaseg.evaluation.metrics import dice

    pred = probs.argmax(0).numpy()
    annotated = np.ones(label.shape, bool) if ignore_label is None else label != ignore_label
    return np.array([dice((pred == k) & annotated, (label == k) & annotated) for k in range(1, probs.shape[0])])


class Trainer:
    """Trains ``network`` on in-memory volumes as ``config`` says; writes the run directory on rank 0."""

    def __init__(self, config: TrainConfig, network: torch.nn.Module, train_volumes: Sequence[TrainingVolume],
                 val_volumes: Sequence[TrainingVolume], run_dir: Path, device: torch.device, dist: DistInfo,
                 augment=None, persist: bool = True):
        """``persist=False`` (for tasks that train internal models): no progress bar and no run-directory files."""
        self.config, self.run_dir, self.device, self.dist = config, Path(run_dir), device, dist
        self.persist = persist
        self.network = network.to(device)
        self.model = self.network
        if dist.enabled:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.network, device_ids=[device.index] if device.type == "cuda" else None)
        self.val_volumes = list(val_volumes)
        self.loss_fn = build_loss(config.loss, config.num_classes, config.loss_kwargs)
        self.needs_distance = self.loss_fn.needs_distance
        if self.needs_distance:  # once per volume, before training; no cost for the other losses
            plane_axis = config.axis if config.spatial_dims == 2 else None
            for volume in train_volumes:
                volume.ensure_distance(config.num_classes, plane_axis)
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, poly_lr(config.epochs))
        self.sampler = PatchSampler(train_volumes, config.spatial_dims, config.axis, config.patch_size,
                                    config.batch_size, config.foreground_fraction, config.ignore_label, config.seed,
                                    rank=dist.rank, augment=augment, distance=self.needs_distance)
        self.history: list[dict] = []
        self.start_epoch = 0

    # -- checkpointing -------------------------------------------------------------------------------------------
    def state(self, epoch: int) -> dict:
        return {"model": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": epoch, "history": self.history}

    def resume(self) -> None:
        """Continue after the last completed epoch of ``run_dir/checkpoint.pt``."""
        checkpoint = load_safe(self.run_dir / "checkpoint.pt", map_location=self.device)
        self.network.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scheduler.lr_lambdas[0] = poly_lr(self.config.epochs)
        self.history = list(checkpoint["history"])
        self.start_epoch = int(checkpoint["epoch"]) + 1

    def save(self, epoch: int) -> None:
        save_atomic(self.state(epoch), self.run_dir / "checkpoint.pt")
        save_atomic(self.network.state_dict(), self.run_dir / "model.pt")
        done, every = epoch + 1, self.config.save_every
        if every and (done % every == 0 or done == self.config.epochs):
            save_snapshot(self.network.state_dict(), self.run_dir, done)

    # -- loop ----------------------------------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        config = self.config
        write = self.dist.is_main and self.persist
        logger = EpochLogger(self.run_dir, config.tensorboard) if write else None
        total = config.epochs * config.iterations_per_epoch
        bar = tqdm(total=total, initial=self.start_epoch * config.iterations_per_epoch, unit="it",
                   desc="train", disable=not bar_enabled(write), dynamic_ncols=True)
        try:
            for epoch in range(self.start_epoch, config.epochs):
                row = self.train_epoch(epoch, bar)
                if self.val_volumes and ((epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs):
                    if self.dist.is_main:
                        row.update(self.validate())
                self.history.append(row)
                if write:
                    self.save(epoch)
                    logger.log(self.history)
                    bar.write(_format_row(row))
                barrier(self.dist)
        finally:
            bar.close()
            if logger is not None:
                logger.close()
        return self.history

    def train_epoch(self, epoch: int, bar: tqdm) -> dict:
        config = self.config
        torch.manual_seed(epoch_seed(config.seed, epoch, self.dist.rank))
        self.sampler.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(self.sampler, batch_size=None, num_workers=config.num_workers)
        self.model.train()
        started, losses = time.perf_counter(), []
        for _, batch in zip(range(config.iterations_per_epoch), loader, strict=False):
            image = batch["image"].to(self.device, non_blocking=True)
            label = batch["label"].to(self.device, non_blocking=True)
            mask = batch["mask"].to(self.device, non_blocking=True)
            if self.needs_distance:
                distance = batch["distance"].to(self.device, non_blocking=True)
                loss = self.loss_fn(self.model(image), label, mask, distance)
            else:
                loss = self.loss_fn(self.model(image), label, mask)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), 12.0)
            self.optimizer.step()
            losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{np.mean(losses[-20:]):.4f}")
        lr = self.optimizer.param_groups[0]["lr"]
        self.scheduler.step()
        seconds = time.perf_counter() - started
        samples = config.iterations_per_epoch * config.batch_size * self.dist.world_size
        return {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "lr": lr, "seconds": seconds,
                "samples_per_s": samples / seconds}

    def validate(self) -> dict:
        config = self.config
        scores = []
        for volume in self.val_volumes:
            probs = predict_probabilities(self.network, torch.from_numpy(volume.image), config.dim, config.axis,
                                          config.patch_size, batch_size=max(config.batch_size, 1),
                                          device=self.device)
            scores.append(validation_dice(probs, volume.label, config.ignore_label))
        per_class = np.nanmean(np.stack(scores), axis=0)
        row = {"val_dice_mean": float(np.nanmean(per_class))}
        row.update({f"val_dice_{name}": float(v) for name, v in zip(config.class_names[1:], per_class, strict=True)})
        return row


def _format_row(row: dict) -> str:
    parts = [f"epoch {row['epoch']}", f"loss {row['train_loss']:.4f}"]
    if "val_dice_mean" in row:
        parts.append(f"val Dice {row['val_dice_mean']:.3f}")
    parts.append(f"{row['samples_per_s']:.1f} samples/s")
    return " | ".join(parts)
