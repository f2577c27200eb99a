"""The training loop every run shares: sample -> step -> schedule; validate; log; checkpoint atomically every epoch.

What differs between kinds of runs is a step object (:mod:`versaseg.training.steps`: the losses and optimiser updates
of one batch) and an optional validator (a callable returning the validation scores, e.g.
:mod:`versaseg.evaluation.validation`). The loop owns seeding, resume, DistributedDataParallel, the learning-rate
schedule, validation every ``val_every`` epochs, metrics.csv/curves.png, checkpoint.pt, model.pt and the
``save_every`` snapshots.

Randomness is re-seeded at the start of every epoch from (seed, epoch, rank), so a run resumed from the checkpoint
of epoch e replays epoch e+1 exactly as an uninterrupted run would.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from versaseg.errors import InputError
from versaseg.io.run_dir import load_safe, save_atomic
from versaseg.progress import bar_enabled
from versaseg.training.checkpoint import save_snapshot
from versaseg.training.config import RunConfig
from versaseg.training.distributed import DistInfo, barrier
from versaseg.training.history import EpochLogger

Validator = Callable[[], dict]
EpochHook = Callable[[int, dict], None]


def load_checkpoint(run_dir: str | Path) -> dict:
    """``run_dir/checkpoint.pt`` loaded safely (:func:`versaseg.io.run_dir.load_safe`, on the CPU); InputError naming
    it when it is not a checkpoint. The training commands load it before the dataset, so a bad file fails at once."""
    path = Path(run_dir) / "checkpoint.pt"
    checkpoint = load_safe(path)
    if not isinstance(checkpoint, dict) or not {"epoch", "history"} <= checkpoint.keys():
        raise InputError("not a versaseg checkpoint (a dict with the epoch, history and states)", path)
    return checkpoint


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def schedule_factor(name: str, epochs: int) -> Callable[[int], float]:
    """The learning-rate factor per epoch (0-based). ``poly``: nnU-Net's (1 - e/E)^0.9; ``linear``: pix2pix's,
    1 for the first ceil(E/2) epochs, then linearly down towards 0; ``constant``: 1."""
    if name == "poly":
        return lambda epoch: (1 - min(epoch, epochs - 1) / epochs) ** 0.9
    if name == "linear":
        constant = math.ceil(epochs / 2)
        return lambda epoch: 1.0 - max(0, epoch + 1 - constant) / (epochs - constant + 1)
    if name == "constant":
        return lambda epoch: 1.0
    raise ValueError(f"unknown schedule {name!r}")


class Trainer:
    """Runs ``step`` on batches from ``sampler`` for ``config.epochs`` x ``config.iterations_per_epoch``.

    sampler: an iterable dataset of batch dicts (tensors) with ``set_epoch(epoch)``. ``validator()`` is called on
    rank 0 after every ``config.val_every``-th epoch and after the last; its scores join the epoch's row. With a
    ``run_dir`` rank 0 writes the run there (metrics.csv, curves.png, checkpoint.pt, model.pt = the step's first
    network, snapshots) and calls every ``hooks(epoch, row)`` after each epoch; without one nothing is written and no
    progress bar is drawn (for tasks that train internal models).
    """

    def __init__(self, config: RunConfig, step, sampler, device: torch.device, dist: DistInfo | None = None,
                 run_dir: str | Path | None = None, validator: Validator | None = None,
                 hooks: Sequence[EpochHook] = ()):
        self.config, self.step, self.sampler, self.device = config, step, sampler, device
        self.dist = dist or DistInfo()
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.validator, self.hooks = validator, list(hooks)
        self.networks: dict[str, torch.nn.Module] = {n: net.to(device) for n, net in step.networks.items()}
        self.models = dict(self.networks)
        if self.dist.enabled:
            self.models = {name: torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[device.index] if device.type == "cuda" else None)
                for name, net in self.networks.items()}
        self.schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, schedule_factor(config.schedule,
                                                                                         config.epochs))
                           for name, opt in step.optimizers.items()}
        self.history: list[dict] = []
        self.start_epoch = 0

    @property
    def network(self) -> torch.nn.Module:
        """The network a run exports (model.pt): the step's first."""
        return next(iter(self.networks.values()))

    # -- checkpointing -------------------------------------------------------------------------------------------
    def state(self, epoch: int) -> dict:
        state = {name: net.state_dict() for name, net in self.networks.items()}
        state.update({name: opt.state_dict() for name, opt in self.step.optimizers.items()})
        state.update(schedulers={name: s.state_dict() for name, s in self.schedulers.items()}, epoch=epoch,
                     history=self.history)
        return state

    def resume(self, checkpoint: dict | None = None) -> None:
        """Continue after the last completed epoch of ``run_dir/checkpoint.pt`` (``config.epochs`` may have grown).

        ``checkpoint``: its content, when the caller has loaded it already (:func:`load_checkpoint`)."""
        path = self.run_dir / "checkpoint.pt"
        if checkpoint is None:
            checkpoint = load_checkpoint(self.run_dir)
        try:
            for name, net in self.networks.items():
                net.load_state_dict(checkpoint[name])
            for name, opt in self.step.optimizers.items():
                opt.load_state_dict(checkpoint[name])
            self.history = list(checkpoint["history"])
            self.start_epoch = int(checkpoint["epoch"]) + 1
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise InputError(f"checkpoint does not match the run's config ({str(exc).splitlines()[0]})",
                             path) from None
        saved = checkpoint.get("schedulers", {})
        factor = schedule_factor(self.config.schedule, self.config.epochs)
        for name, scheduler in self.schedulers.items():
            if name in saved:  # its epoch and step counts as the killed run left them
                scheduler.load_state_dict(saved[name])
            scheduler.last_epoch = self.start_epoch
            # the schedule follows the (possibly grown) epoch count; the learning rate of the next epoch is set as
            # LambdaLR.step() sets it, without a step (which would count one more than the unkilled run did)
            scheduler.lr_lambdas = [factor]
            scheduler._last_lr = [base * factor(self.start_epoch) for base in scheduler.base_lrs]
            for group, lr in zip(scheduler.optimizer.param_groups, scheduler._last_lr, strict=True):
                group["lr"] = lr

    def save(self, epoch: int, logger: EpochLogger | None = None) -> None:
        """Write the files of a finished epoch, each atomically, checkpoint.pt last: it is what ``--resume``
        continues from, so a kill before its rename repeats the epoch (rewriting the same files: model.pt, the
        snapshot, metrics.csv, curves.png) and a kill after it finds every file of the epoch written."""
        save_atomic(self.network.state_dict(), self.run_dir / "model.pt")
        done, every = epoch + 1, self.config.save_every
        if every and (done % every == 0 or done == self.config.epochs):
            save_snapshot(self.network.state_dict(), self.run_dir, done)
        if logger is not None:
            logger.log(self.history)
        save_atomic(self.state(epoch), self.run_dir / "checkpoint.pt")

    # -- loop ----------------------------------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        config = self.config
        write = self.dist.is_main and self.run_dir is not None
        logger = EpochLogger(self.run_dir, config.tensorboard) if write else None
        bar = tqdm(total=config.epochs * config.iterations_per_epoch,
                   initial=self.start_epoch * config.iterations_per_epoch, unit="it", desc="train",
                   disable=not bar_enabled(write), dynamic_ncols=True)
        try:
            for epoch in range(self.start_epoch, config.epochs):
                row = self.train_epoch(epoch, bar)
                due = (epoch + 1) % config.val_every == 0 or epoch + 1 == config.epochs
                if self.validator is not None and due and self.dist.is_main:
                    started = time.perf_counter()
                    row.update(self.validator())
                    row["val_seconds"] = time.perf_counter() - started
                self.history.append(row)
                if write:
                    for hook in self.hooks:
                        hook(epoch, row)
                    self.save(epoch, logger)
                    bar.write(format_row(row))
                barrier(self.dist)
        finally:
            bar.close()
            if logger is not None:
                logger.close()
        return self.history

    def train_epoch(self, epoch: int, bar: tqdm) -> dict:
        """One epoch: ``iterations_per_epoch`` steps, then one schedule step. Returns the epoch's row: the step's
        mean losses, the learning rate used, seconds and samples/s."""
        config = self.config
        torch.manual_seed(epoch_seed(config.seed, epoch, self.dist.rank))
        self.sampler.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(self.sampler, batch_size=None, num_workers=config.num_workers)
        for model in self.models.values():
            model.train()
        started, sums, recent = time.perf_counter(), {}, []
        for _, batch in zip(range(config.iterations_per_epoch), loader, strict=False):
            batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
            losses = self.step(batch, self.models)
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value
            first = next(iter(losses))
            recent = (recent + [losses[first]])[-20:]
            bar.update(1)
            bar.set_postfix({"epoch": epoch + 1, first: f"{np.mean(recent):.4f}"})
        lr = next(iter(self.step.optimizers.values())).param_groups[0]["lr"]
        for scheduler in self.schedulers.values():
            scheduler.step()
        seconds = time.perf_counter() - started
        samples = config.iterations_per_epoch * config.batch_size * self.dist.world_size
        row = {"epoch": epoch + 1}
        row.update({key: total / config.iterations_per_epoch for key, total in sums.items()})
        row.update(lr=lr, seconds=seconds, samples_per_s=samples / seconds)
        return row


def format_row(row: dict) -> str:
    """One log line per epoch: the losses, the validation scores, the speed."""
    skip = {"epoch", "lr", "seconds", "samples_per_s", "val_seconds"}
    losses = [f"{key} {value:.4f}" for key, value in row.items()
              if key not in skip and not key.startswith("val_") and isinstance(value, float)]
    scores = [f"{key[4:]} {value:.4f}" for key, value in row.items()
              if key.startswith("val_") and key != "val_seconds" and "_dice_" not in key]
    parts = [f"epoch {row['epoch']}", *losses]
    if scores:
        parts.append("val " + " ".join(scores))
    parts.append(f"{row['samples_per_s']:.1f} samples/s")
    return " | ".join(parts)
