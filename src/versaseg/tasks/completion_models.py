"""The models behind ``versaseg complete``: a classifier that reads the image and the interpolated shape prior and
outputs class probabilities, trained on the annotated slices of one case.

Both models share one interface - ``Model(inputs, num_classes, settings, seed)``, ``fit(train_label, iterations)``,
``predict(inputs) -> (K, T, H, W)`` - where ``inputs`` are slice-first arrays ``(C + P, S, H, W)``: image channels
(model "cnn") or image features (model "voxel") followed by the prior channels of :func:`prior_channels`.

- :class:`VoxelModel` (default): a per-voxel MLP on multi-scale 3D image features; seconds on a CPU.
- :class:`SliceNetworkModel`: a 2D network of the registry along the annotation axis; minutes on a CPU.

Both wrap their network in :class:`PriorResidualNetwork`, so an untrained model reproduces the prior.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import ndimage

from versaseg.data.augment import build_augmentation
from versaseg.data.sampling import TrainingVolume
from versaseg.inference.window import predict_volume
from versaseg.networks.registry import build_network
from versaseg.training.config import TrainConfig
from versaseg.training.run import default_patch_size
from versaseg.training.steps import segmentation_trainer
from versaseg.training.voxel import fit_voxels, predict_voxels, voxel_mlp

MODELS = ("voxel", "cnn")


@dataclass
class CompletionSettings:
    """How hard to work, and how. Fields marked 'model "cnn"' or 'model "voxel"' apply to that model only."""

    model: str = "voxel"  # "voxel": MLP on multi-scale 3D features (seconds); "cnn": 2D network (minutes)
    network: str = "unet"  # model "cnn": the registry network
    network_kwargs: dict = field(default_factory=lambda: {"depth": 4, "base_width": 8})
    iterations: int = 120  # model "cnn": batches of ``batch_size`` slices per fold model
    hidden: int = 96  # model "voxel": MLP width
    epochs: int = 12  # model "voxel": passes over the sampled voxels
    voxel_batch: int = 8192  # model "voxel": voxels per optimiser step
    max_voxels: int = 300_000  # model "voxel": training voxels sampled per model (bounds the time at small K)
    background_fraction: float = 0.3  # model "voxel": share of background voxels kept before the cap
    wide_prior_mm: float = 12.0  # model "voxel": softness of the second, wide prior channel per class
    refit: bool = True  # after the check, models on all cleansed slices predict (else the two fold models' mean)
    final_models: int = 2  # models (seeds) averaged for the dense prediction
    batch_size: int = 16  # model "cnn": slices per batch (training and prediction)
    learning_rate: float = 3e-3
    check: bool = True  # judge every annotated slice with models that did not train on it (reported)
    cleanse: bool = False  # also correct the slices judged wrong (measured: more harm than good, see the docs)
    confidence: float = 0.9
    seed: int = 0
    augmentation: str = "light"  # model "cnn"
    margin_mm: float = 15.0
    prior_softness_mm: float = 3.0
    prior_strength: float = 3.0
    perturbed_copies: int = 2
    device: str = "cpu"
    suggest: int = 0  # slices to suggest for annotation next (report "suggested")
    suggest_axes: str = "annotated"  # where suggestions may lie: "annotated" (the annotated planes), "all", "0,2"


class PriorResidualNetwork(torch.nn.Module):
    """Logits = ``prior_strength`` x prior + network(image, prior): the network learns a correction of the prior.

    The prior channels (the last K - 1 input channels, in [-1, 1]) become foreground logits (background 0), so an
    untrained model (whose logits are small) reproduces the shape interpolation and training only learns where the
    image says otherwise: a strong start with the few hundred iterations a completion can afford, and no small class
    forgotten early on.

    ``forward(x: (B, C + K - 1, *spatial)) -> (B, K, *spatial)``.
    """

    def __init__(self, network: torch.nn.Module, num_classes: int, prior_strength: float = 3.0):
        super().__init__()
        self.network, self.num_classes, self.prior_strength = network, num_classes, prior_strength
        self.required_divisor = int(getattr(network, "required_divisor", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C + K - 1, *spatial) or feature rows (N, F + K - 1) -> logits (B, K, *spatial) or (N, K)."""
        prior = x[:, x.shape[1] - (self.num_classes - 1):] * self.prior_strength
        prior_logits = torch.cat([torch.zeros_like(prior[:, :1]), prior], dim=1)
        return prior_logits + self.network(x)


class SliceNetworkModel:
    """A 2D network along S that reads the image *and* the interpolated shape prior and outputs class probabilities.

    image: (C + K - 1, S, H, W) float32: normalised image channels followed by one prior channel per foreground class.
    """

    def __init__(self, image: np.ndarray, num_classes: int, settings: CompletionSettings, seed: int):
        self.image, self.num_classes, self.settings, self.seed = image, num_classes, settings, seed
        self.network: torch.nn.Module | None = None
        self.patch_size: list[int] = []

    def fit(self, train_label: np.ndarray, iterations: int) -> None:
        """train_label: (S, H, W) class indices, ``num_classes`` where not used for training."""
        s = self.settings
        torch.manual_seed(self.seed)
        network = PriorResidualNetwork(
            build_network(s.network, 2, self.image.shape[0], self.num_classes, **s.network_kwargs), self.num_classes,
            s.prior_strength)
        self.patch_size = default_patch_size([self.image.shape[1:]], "2d", 0, network.required_divisor)
        epochs = max(1, iterations // 25)
        config = TrainConfig(network=s.network, network_kwargs=s.network_kwargs, dim="2d", axis=0,
                             patch_size=self.patch_size, batch_size=s.batch_size, epochs=epochs,
                             iterations_per_epoch=max(1, iterations // epochs), learning_rate=s.learning_rate,
                             augmentation=s.augmentation, seed=self.seed, val_fraction=0.0,
                             labels={**{f"class_{k}": k for k in range(self.num_classes)},
                                     "ignore": self.num_classes},
                             ignore_label=self.num_classes)
        volume = TrainingVolume.from_arrays("case", self.image, train_label, self.num_classes,
                                            np.random.default_rng(self.seed))
        trainer = segmentation_trainer(config, network, [volume], torch.device(s.device),
                                       build_augmentation(s.augmentation, 2))
        trainer.fit()
        self.network = trainer.network

    def predict(self, image: np.ndarray) -> torch.Tensor:
        """image: (C + K - 1, T, H, W) -> probabilities (K, T, H, W)."""
        return predict_volume(self.network, torch.from_numpy(np.ascontiguousarray(image)), "2d", 0,
                              self.patch_size, batch_size=self.settings.batch_size,
                              device=torch.device(self.settings.device))


def prior_channels(distances: np.ndarray, settings: CompletionSettings) -> np.ndarray:
    """(T, K, H, W) signed distances (mm) -> prior channels in [-1, 1] (+1 deep inside the class), class-first.

    Model "cnn": (K, T, H, W) ``tanh(-d / prior_softness_mm)``. Model "voxel": (2K, T, H, W), a wide
    ``tanh(-d / wide_prior_mm)`` per class first (where a structure roughly is, which a voxel classifier cannot see
    otherwise), then the sharp channels; the last K channels are always the sharp prior that
    :class:`PriorResidualNetwork` adds to the logits.
    """
    sharp = np.tanh(-distances / settings.prior_softness_mm).transpose(1, 0, 2, 3).astype(np.float32)
    if settings.model != "voxel":
        return sharp
    wide = np.tanh(-distances / settings.wide_prior_mm).transpose(1, 0, 2, 3).astype(np.float32)
    return np.concatenate([wide, sharp])


class VoxelModel:
    """A per-voxel MLP on the image features *and* the prior channels, as a residual of the prior.

    image: (F + P, S, H, W) float32: multi-scale image features (:func:`versaseg.data.voxel_features.image_features`)
    followed by the prior channels of :func:`prior_channels`. Same interface as :class:`SliceNetworkModel`.
    """

    def __init__(self, image: np.ndarray, num_classes: int, settings: CompletionSettings, seed: int):
        self.image, self.num_classes, self.settings, self.seed = image, num_classes, settings, seed
        self.network: torch.nn.Module | None = None

    def fit(self, train_label: np.ndarray, iterations: int | None = None) -> None:
        """train_label: (S, H, W) class indices, ``num_classes`` where not used for training. ``iterations`` is
        ignored (the voxel model counts epochs over a bounded voxel sample)."""
        rows = self.sample_rows(train_label.ravel())
        self.fit_rows(self.image.reshape(self.image.shape[0], -1)[:, rows].T, train_label.ravel()[rows])

    def sample_rows(self, labels: np.ndarray) -> np.ndarray:
        """Indices into ``labels`` (N,) to train on: every labelled foreground voxel and ``background_fraction`` of
        the labelled background, at most ``max_voxels`` (sorted; the same for a given seed)."""
        s = self.settings
        rng = np.random.default_rng(self.seed)
        keep = (labels != self.num_classes) & ((labels > 0) | (rng.random(labels.shape) < s.background_fraction))
        rows = np.flatnonzero(keep)
        if len(rows) > s.max_voxels:
            rows = np.sort(rng.choice(rows, s.max_voxels, replace=False))
        return rows

    def fit_rows(self, features: np.ndarray, labels: np.ndarray) -> None:
        """Train on feature rows (N, F + P) (image features, then the prior channels) and class indices (N,)."""
        s = self.settings
        torch.manual_seed(self.seed)
        network = PriorResidualNetwork(voxel_mlp(features.shape[1], self.num_classes, s.hidden),
                                       self.num_classes, s.prior_strength)
        self.network = fit_voxels(network, features, labels, epochs=s.epochs, batch_size=s.voxel_batch,
                                  seed=self.seed, device=s.device)

    def predict(self, image: np.ndarray) -> torch.Tensor:
        """image: (F + P, T, H, W) -> probabilities (K, T, H, W)."""
        return torch.from_numpy(predict_voxels(self.network, image, device=self.settings.device))


def perturbed_distances(distances: np.ndarray, spacing_2d: tuple, rng: np.random.Generator) -> np.ndarray:
    """The annotated slices' own signed distances (N, K, H, W) with smooth random errors: what an interpolated prior
    close to an annotated slice looks like (boundaries off by a few mm), as opposed to the leave-one-out prior from
    twice the annotation gap away. Both kinds teach the network how far to trust the prior."""
    out = distances.copy()
    sigma = 10.0 / np.asarray(spacing_2d)  # ~10 mm smooth error fields
    for n in range(out.shape[0]):
        for k in range(out.shape[1]):
            field = ndimage.gaussian_filter(rng.standard_normal(out.shape[2:]), sigma)
            field *= rng.uniform(0.5, 3.0) / max(float(field.std()), 1e-6)
            out[n, k] += (field + rng.uniform(-2.0, 2.0)).astype(np.float32)
    return out
