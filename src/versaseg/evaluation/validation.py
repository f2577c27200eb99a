"""Validators for the training loop: whole-volume inference on the validation cases, scored per epoch.

A validator is a callable with no arguments returning ``{"val_<name>": float}``;
:class:`versaseg.training.trainer.Trainer` calls it on rank 0 every ``val_every`` epochs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from versaseg.data.pairs import FILL, PairedVolume
from versaseg.data.sampling import TrainingVolume
from versaseg.evaluation.image_quality import image_quality
from versaseg.evaluation.metrics import dice
from versaseg.inference.window import inference_batch_size, predict_volume
from versaseg.training.config import SynthConfig, TrainConfig

DATA_RANGE = 2.0  # synthesis metrics are computed in the target's scaled units, [-1, 1]


def validation_dice(probs: torch.Tensor, label: np.ndarray, ignore_label: int | None) -> np.ndarray:
    """Dice per foreground class over annotated voxels. probs: (K, X, Y, Z); label: (X, Y, Z). Returns (K-1,)."""
    pred = probs.argmax(0).numpy()
    annotated = np.ones(label.shape, bool) if ignore_label is None else label != ignore_label
    return np.array([dice((pred == k) & annotated, (label == k) & annotated) for k in range(1, probs.shape[0])])


class SegmentationValidator:
    """Mean Dice per class over the validation volumes: ``val_dice_mean`` and ``val_dice_<class>``."""

    def __init__(self, network: torch.nn.Module, volumes: Sequence[TrainingVolume], config: TrainConfig,
                 device: torch.device):
        self.network, self.volumes, self.config, self.device = network, list(volumes), config, device

    def __call__(self) -> dict:
        config = self.config
        scores = []
        for volume in self.volumes:
            probs = predict_volume(self.network, torch.from_numpy(volume.image), config.dim, config.axis,
                                   config.patch_size, batch_size=inference_batch_size(config.dim, config.batch_size),
                                   device=self.device)
            scores.append(validation_dice(probs, volume.label, config.ignore_label))
        per_class = np.nanmean(np.stack(scores), axis=0)
        row = {"val_dice_mean": float(np.nanmean(per_class))}
        row.update({f"val_dice_{name}": float(v) for name, v in zip(config.class_names[1:], per_class, strict=True)})
        return row


def synthesize_scaled(generator: torch.nn.Module, source: np.ndarray, config: SynthConfig,
                      device: torch.device | str = "cpu") -> np.ndarray:
    """The generator's output for a whole scaled source volume: (X, Y, Z) in [-1, 1] -> (X, Y, Z) in [-1, 1]."""
    out = predict_volume(generator, torch.from_numpy(np.ascontiguousarray(source, dtype=np.float32))[None],
                         config.dim, config.axis, config.patch_size,
                         batch_size=inference_batch_size(config.dim, config.batch_size), device=device,
                         output="image", fill=FILL)
    return out[0].numpy()


class SynthesisValidator:
    """Mean MAE / PSNR / SSIM over the validation pairs inside each case's brain mask, in scaled units:
    ``val_mae``, ``val_psnr``, ``val_ssim``. The last synthetic volumes stay in :attr:`outputs` (case id ->
    (X, Y, Z)) for the epoch's sample figure."""

    def __init__(self, generator: torch.nn.Module, volumes: Sequence[PairedVolume], config: SynthConfig,
                 device: torch.device):
        self.generator, self.volumes, self.config, self.device = generator, list(volumes), config, device
        self.outputs: dict[str, np.ndarray] = {}

    def __call__(self) -> dict:
        ssim_axis = self.config.axis if self.config.dim == "2d" else None
        self.outputs, scores = {}, []
        for volume in self.volumes:
            fake = synthesize_scaled(self.generator, volume.source, self.config, self.device)
            self.outputs[volume.case_id] = fake
            scores.append(image_quality(fake, volume.target, volume.mask, DATA_RANGE, ssim_axis=ssim_axis,
                                        fill=FILL))
        return {f"val_{k}": float(np.mean([s[k] for s in scores])) for k in ("mae", "psnr", "ssim")}
