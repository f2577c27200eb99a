"""The settings of a pix2pix synthesis run, stored as ``RUN/config.json`` (everything ``synth apply`` needs)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from versaseg.errors import InputError
from versaseg.io.atomic import write_text_atomic
from versaseg.io.dataset import read_json_object
from versaseg.training.config import validate_schedule

GAN_LOSSES = ("bce", "lsgan")
DEFAULT_NETWORK_KWARGS = {"2d": {"depth": 5, "base_width": 32}, "3d": {"depth": 4, "base_width": 16}}
DEFAULT_BATCH_SIZE = {"2d": 4, "3d": 2}
DEFAULT_PATCH_3D = (64, 64, 64)


@dataclass
class SynthConfig:
    """pix2pix settings plus the dataset facts ``apply`` needs (channels, intensity ranges).

    ``source``/``target`` are channel names or indices as given; training resolves them against dataset.json and
    records ``source_index``/``source_name`` and ``target_index``/``target_name``. ``target_range`` is the target's
    typical (low, high) intensity in scanner units: the medians over the training cases of their per-case
    ``percentiles``; ``apply`` maps the generator's [-1, 1] output onto it.
    """

    dataset: str = ""
    source: str = ""
    target: str = ""
    dim: str = "2d"
    axis: int = 2
    patch_size: list[int] = field(default_factory=list)
    batch_size: int = 0
    epochs: int = 50
    iterations_per_epoch: int = 50
    network: str = "unet"
    network_kwargs: dict = field(default_factory=dict)
    disc_layers: int = 3
    disc_channels: int = 64
    gan_loss: str = "bce"
    lambda_l1: float = 100.0
    learning_rate: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    percentiles: list[float] = field(default_factory=lambda: [0.5, 99.9])
    val_fraction: float = 0.2
    sample_every: int = 5
    seed: int = 0
    # Filled from the dataset when training starts:
    source_index: int = -1
    source_name: str = ""
    target_index: int = -1
    target_name: str = ""
    source_range: list[float] = field(default_factory=list)
    target_range: list[float] = field(default_factory=list)
    spacing: list[float] = field(default_factory=list)
    train_cases: list[str] = field(default_factory=list)
    val_cases: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def spatial_dims(self) -> int:
        return 2 if self.dim == "2d" else 3

    def fill_defaults(self) -> None:
        """Dimension-dependent defaults: network size, batch size, 3D patch size (2D patches come from the data)."""
        if not self.network_kwargs and self.network == "unet":
            self.network_kwargs = dict(DEFAULT_NETWORK_KWARGS[self.dim])
        if not self.batch_size:
            self.batch_size = DEFAULT_BATCH_SIZE[self.dim]
        if self.dim == "3d" and not self.patch_size:
            self.patch_size = list(DEFAULT_PATCH_3D)

    def validate(self) -> None:
        """Raise InputError for option values out of range."""
        validate_schedule(self.dim, self.axis, self.epochs, self.iterations_per_epoch, self.val_fraction)
        if self.batch_size < 0:
            raise InputError(f"--batch-size must be positive, got {self.batch_size}")
        if self.gan_loss not in GAN_LOSSES:
            raise InputError(f"unknown --gan-loss '{self.gan_loss}'; valid: {', '.join(GAN_LOSSES)}")
        if self.lambda_l1 < 0:
            raise InputError(f"--lambda-l1 must be >= 0, got {self.lambda_l1}")
        if self.learning_rate <= 0:
            raise InputError(f"--lr must be positive, got {self.learning_rate}")
        if self.sample_every < 0:
            raise InputError(f"--sample-every must be >= 0, got {self.sample_every}")
        if self.disc_layers < 1 or self.disc_channels < 1:
            raise InputError("the discriminator needs at least one layer and one channel")
        if len(self.percentiles) != 2 or not 0 <= self.percentiles[0] < self.percentiles[1] <= 100:
            raise InputError(f"--percentiles must be LOW,HIGH with 0 <= LOW < HIGH <= 100, got {self.percentiles}")
        if self.patch_size and len(self.patch_size) != self.spatial_dims:
            raise InputError(f"--patch needs {self.spatial_dims} values for --dim {self.dim}, got {self.patch_size}")
        if any(p < 1 for p in self.patch_size):
            raise InputError(f"--patch values must be positive, got {self.patch_size}")
        if str(self.source) == "" or str(self.target) == "":
            raise InputError("--source and --target channels are required")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    def save(self, run_dir: str | Path) -> None:
        write_text_atomic(Path(run_dir) / "config.json", self.to_json())

    @classmethod
    def load(cls, run_dir: str | Path) -> SynthConfig:
        """Read ``run_dir/config.json``; InputError for a missing, invalid or non-synthesis file."""
        path = Path(run_dir) / "config.json"
        if not Path(run_dir).is_dir():
            raise InputError("run directory not found", run_dir)
        if not path.exists():
            raise InputError("config.json not found; is this a `versaseg synth train` run directory?", path)
        data = read_json_object(path)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown or "target_range" not in data:
            raise InputError(f"not a synthesis run config (unknown keys {unknown[:5]}); was it written by "
                             "`versaseg synth train`?", path)
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"invalid config ({exc})", path) from None
