"""What one training iteration does, per kind of run: a step object the shared :class:`Trainer` loop calls per batch.

A step holds its ``networks`` (name -> module; the first is the one a run exports as model.pt and in snapshots) and
its ``optimizers`` (name -> optimiser); ``step(batch, models)`` runs the forward pass, the losses and the optimiser
updates for one batch and returns the losses as floats. ``models`` are the step's networks as the loop runs them
(wrapped in DistributedDataParallel under ``torchrun``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from versaseg.data.sampling import PatchSampler, TrainingVolume
from versaseg.losses.functional import adversarial_loss
from versaseg.losses.registry import build_loss
from versaseg.training.config import SynthConfig, TrainConfig
from versaseg.training.distributed import DistInfo
from versaseg.training.trainer import Trainer


def optimise(loss: torch.Tensor, optimizer: torch.optim.Optimizer, parameters: Iterable[torch.nn.Parameter],
             grad_clip: float) -> None:
    """zero_grad -> backward -> clip the gradient norm to ``grad_clip`` (0 = no clipping) -> step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()


class SegmentationStep:
    """One batch of segmentation: masked loss of the network's logits, AdamW update.

    batch: image (B, C, *patch) float32, label (B, 1, *patch) int64, mask (B, 1, *patch) float32 and, for the
    distance-weighted losses, distance (B, K, *patch) float32.
    """

    def __init__(self, network: torch.nn.Module, config: TrainConfig):
        self.networks = {"model": network}
        self.optimizers = {"optimizer": torch.optim.AdamW(network.parameters(), lr=config.learning_rate,
                                                          weight_decay=config.weight_decay)}
        self.loss_fn = build_loss(config.loss, config.num_classes, config.loss_kwargs)
        self.needs_distance = self.loss_fn.needs_distance
        self.grad_clip = config.grad_clip

    def __call__(self, batch: dict[str, torch.Tensor], models: dict[str, torch.nn.Module]) -> dict[str, float]:
        extra = (batch["distance"],) if self.needs_distance else ()
        loss = self.loss_fn(models["model"](batch["image"]), batch["label"], batch["mask"], *extra)
        optimise(loss, self.optimizers["optimizer"], self.networks["model"].parameters(), self.grad_clip)
        return {"train_loss": loss.item()}


def segmentation_trainer(config: TrainConfig, network: torch.nn.Module, volumes: Sequence[TrainingVolume],
                         device: torch.device, augment=None, dist: DistInfo | None = None, **trainer_kwargs) -> Trainer:
    """A :class:`Trainer` of ``network`` on patches of ``volumes``; ``trainer_kwargs`` (run_dir, validator, hooks)
    go to the Trainer. Without a run_dir it trains in memory (completion's internal models)."""
    dist = dist or DistInfo()
    step = SegmentationStep(network, config)
    return Trainer(config, step, segmentation_sampler(config, volumes, step, dist, augment), device, dist,
                   **trainer_kwargs)


def segmentation_sampler(config: TrainConfig, volumes: Sequence[TrainingVolume], step: SegmentationStep,
                         dist: DistInfo, augment=None) -> PatchSampler:
    """The patch sampler for ``step``; computes the volumes' distance maps first when its loss needs them."""
    needs_distance = step.needs_distance
    if needs_distance:  # once per volume, before training; no cost for the other losses
        plane_axis = config.axis if config.spatial_dims == 2 else None
        for volume in volumes:
            volume.ensure_distance(config.num_classes, plane_axis)
    return PatchSampler(volumes, config.spatial_dims, config.axis, config.patch_size, config.batch_size,
                        config.foreground_fraction, config.ignore_label, config.seed, rank=dist.rank,
                        augment=augment, distance=needs_distance)


class Pix2PixStep:
    """One batch of pix2pix (Isola et al. 2017): fake = G(source); the discriminator step minimises
    0.5 * [adv(D(source, target), real) + adv(D(source, fake), fake)]; the generator step minimises
    adv(D(source, fake), real) + lambda_l1 * |fake - target|_1 (mean over the batch's voxels). Both use Adam.

    batch: source, target (B, 1, *patch) float32 in [-1, 1].
    """

    def __init__(self, generator: torch.nn.Module, discriminator: torch.nn.Module, config: SynthConfig):
        self.networks = {"generator": generator, "discriminator": discriminator}
        betas = (config.beta1, config.beta2)
        self.optimizers = {"opt_g": torch.optim.Adam(generator.parameters(), lr=config.learning_rate, betas=betas),
                           "opt_d": torch.optim.Adam(discriminator.parameters(), lr=config.learning_rate,
                                                     betas=betas)}
        self.gan_loss, self.lambda_l1, self.grad_clip = config.gan_loss, config.lambda_l1, config.grad_clip

    def __call__(self, batch: dict[str, torch.Tensor], models: dict[str, torch.nn.Module]) -> dict[str, float]:
        generator, discriminator = models["generator"], models["discriminator"]
        source, target = batch["source"], batch["target"]
        fake = generator(source)
        # discriminator: real pairs -> 1, synthetic pairs -> 0
        # one forward over real and synthetic pairs: DistributedDataParallel allows one forward per backward
        pairs = torch.cat([torch.cat([source, target], 1), torch.cat([source, fake.detach()], 1)])
        d_real, d_fake = discriminator(pairs).chunk(2)
        d_loss = 0.5 * (adversarial_loss(d_real, True, self.gan_loss) + adversarial_loss(d_fake, False, self.gan_loss))
        optimise(d_loss, self.optimizers["opt_d"], self.networks["discriminator"].parameters(), self.grad_clip)
        # generator: fool the discriminator and stay close to the target (L1)
        g_adv = adversarial_loss(discriminator(torch.cat([source, fake], 1)), True, self.gan_loss)
        g_l1 = torch.nn.functional.l1_loss(fake, target)
        optimise(g_adv + self.lambda_l1 * g_l1, self.optimizers["opt_g"], self.networks["generator"].parameters(),
                 self.grad_clip)
        return {"g_adv": g_adv.item(), "g_l1": g_l1.item(), "d_loss": d_loss.item()}
