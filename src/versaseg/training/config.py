"""The run configuration: everything needed to rebuild the network and preprocessing, stored as ``config.json``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from versaseg.errors import InputError
from versaseg.io.atomic import write_text_atomic

DIMS = ("2d", "3d")


def validate_schedule(dim: str, axis: int, epochs: int, iterations: int, val_fraction: float) -> None:
    """The option checks every trainer shares (segmentation and synthesis): InputError naming the option."""
    if dim not in DIMS:
        raise InputError(f"unknown --dim '{dim}'; valid: {', '.join(DIMS)}")
    if axis not in (0, 1, 2):
        raise InputError(f"--axis must be 0, 1 or 2, got {axis}")
    if epochs < 1 or iterations < 1:
        raise InputError("--epochs and --iterations must be at least 1")
    if not 0 <= val_fraction < 1:
        raise InputError(f"--val-fraction must be in [0, 1), got {val_fraction}")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Training settings plus the dataset facts a predictor needs (channels, labels, normalisation)."""

    dataset: str = ""
    network: str = "unet"
    network_kwargs: dict = field(default_factory=dict)
    dim: str = "2d"
    axis: int = 2
    patch_size: list[int] = field(default_factory=list)
    batch_size: int = 0
    epochs: int = 50
    iterations_per_epoch: int = 50
    learning_rate: float = 2e-3
    weight_decay: float = 3e-5
    loss: str = "dice_ce"
    loss_kwargs: dict = field(default_factory=dict)
    augmentation: str = "default"
    foreground_fraction: float = 0.33
    val_fraction: float = 0.2
    val_every: int = 1
    seed: int = 0
    num_workers: int = 0
    tensorboard: bool = False
    save_every: int = 0  # keep the network's weights every N epochs (and the last) in checkpoints/; 0 = off
    # Filled from the dataset when training starts:
    channel_names: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    ignore_label: int | None = None
    normalization: list[dict] = field(default_factory=list)
    spacing: list[float] = field(default_factory=list)
    train_cases: list[str] = field(default_factory=list)
    val_cases: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def spatial_dims(self) -> int:
        return 2 if self.dim == "2d" else 3

    @property
    def class_names(self) -> list[str]:
        """Class names ordered by value (background first); the network's output channels."""
        return [name for name, _ in sorted(self.labels.items(), key=lambda kv: kv[1]) if name != "ignore"]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def validate(self) -> None:
        """Raise InputError for option values out of range."""
        validate_schedule(self.dim, self.axis, self.epochs, self.iterations_per_epoch, self.val_fraction)
        if self.save_every < 0:
            raise InputError(f"--save-every must be 0 (off) or a positive number of epochs, got {self.save_every}")
        from versaseg.losses.registry import available_losses, loss_options

        if self.loss not in available_losses():
            raise InputError(f"unknown --loss '{self.loss}'; valid: {', '.join(available_losses())}")
        loss_options(self.loss, self.loss_kwargs)
        if self.patch_size and len(self.patch_size) != self.spatial_dims:
            raise InputError(f"--patch-size needs {self.spatial_dims} values for --dim {self.dim}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    def save(self, run_dir: Path) -> None:
        write_text_atomic(Path(run_dir) / "config.json", self.to_json())

    @classmethod
    def load(cls, run_dir: str | Path) -> TrainConfig:
        """Read ``run_dir/config.json``; raises InputError for a missing or invalid file."""
        path = Path(run_dir) / "config.json"
        if not path.exists():
            raise InputError("config.json not found; is this a versaseg run directory?", path)
        from versaseg.io.dataset import read_json_object

        data = read_json_object(path)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown config keys {unknown}", path)
        return cls(**data)
