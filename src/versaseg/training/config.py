"""Run configurations, stored as ``RUN/config.json``: everything needed to rebuild a network and its preprocessing.

:class:`RunConfig` holds what every training run shares (schedule, split, patching, seeding); :class:`TrainConfig`
adds the segmentation settings and dataset facts a predictor needs, :class:`SynthConfig` the pix2pix settings and the
intensity ranges ``synth apply`` needs. :func:`load_run_config` tells the two apart.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from versaseg.errors import InputError, short_repr
from versaseg.io.atomic import write_text_atomic

DIMS = ("2d", "3d")
SCHEDULES = ("poly", "linear", "constant")
GAN_LOSSES = ("bce", "lsgan")


_TYPE_NAMES = {int: "an integer", float: "a finite number", str: "a string", bool: "true or false",
               dict: "a JSON object", list: "a list"}


def _type_problem(value, expected) -> str | None:
    """None if the JSON ``value`` fits the field type ``expected`` (int, float, str, bool, dict[K, V], list[T],
    T | None); else what it should be. Booleans are not integers here, an integer is a number."""
    origin, args = typing.get_origin(expected), typing.get_args(expected)
    if origin in (typing.Union, types.UnionType):
        problems = [_type_problem(value, arg) for arg in args]
        if any(p is None for p in problems):
            return None
        return " or ".join("null" if a is type(None) else _TYPE_NAMES.get(typing.get_origin(a) or a, str(a))
                           for a in args)
    if expected is type(None):
        return None if value is None else "null"
    if expected is bool:
        return None if isinstance(value, bool) else _TYPE_NAMES[bool]
    if expected is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else _TYPE_NAMES[int]
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok else _TYPE_NAMES[float]
    if expected is str:
        return None if isinstance(value, str) else _TYPE_NAMES[str]
    if (origin or expected) is list:
        if not isinstance(value, list):
            return _TYPE_NAMES[list]
        for item in value:
            problem = args and _type_problem(item, args[0])
            if problem:
                return f"a list of {_plural(problem)}"
        return None
    if (origin or expected) is dict:
        if not isinstance(value, dict):
            return _TYPE_NAMES[dict]
        for item in value.values():
            problem = args and _type_problem(item, args[1])
            if problem:
                return f"a JSON object of {_plural(problem)}"
        return None
    return None


def _plural(problem: str) -> str:
    return {"an integer": "integers", "a finite number": "finite numbers", "a string": "strings",
            "true or false": "booleans", "a JSON object": "JSON objects", "a list": "lists"}.get(problem, problem)


@dataclass
class RunConfig:
    """The settings every trainer shares: the loop (:class:`versaseg.training.trainer.Trainer`) reads these."""

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
    schedule: str = "poly"  # poly: nnU-Net's (1 - e/E)^0.9; linear: constant, then linear to 0 over the second half
    grad_clip: float = 12.0  # the gradient norm is clipped to this per optimiser step; 0 = off
    val_fraction: float = 0.2
    val_every: int = 1
    save_every: int = 0  # keep the network's weights every N epochs (and the last) in checkpoints/; 0 = off
    seed: int = 0
    num_workers: int = 0
    tensorboard: bool = False
    # Filled from the dataset when training starts:
    spacing: list[float] = field(default_factory=list)
    train_cases: list[str] = field(default_factory=list)
    val_cases: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def spatial_dims(self) -> int:
        return 2 if self.dim == "2d" else 3

    def validate(self) -> None:
        """Raise InputError naming the option for values out of range."""
        if self.dim not in DIMS:
            raise InputError(f"unknown --dim '{self.dim}'; valid: {', '.join(DIMS)}")
        if self.axis not in (0, 1, 2):
            raise InputError(f"--axis must be 0, 1 or 2, got {self.axis}")
        if self.epochs < 1 or self.iterations_per_epoch < 1:
            raise InputError("--epochs and --iterations must be at least 1")
        if not 0 <= self.val_fraction < 1:
            raise InputError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.val_every < 1:
            raise InputError(f"--val-every must be a positive number of epochs, got {self.val_every}")
        if self.save_every < 0:
            raise InputError(f"--save-every must be 0 (off) or a positive number of epochs, got {self.save_every}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown --schedule '{self.schedule}'; valid: {', '.join(SCHEDULES)}")
        if self.grad_clip < 0:
            raise InputError(f"--grad-clip must be >= 0 (0 = off), got {self.grad_clip}")
        if self.batch_size < 0:
            raise InputError(f"--batch-size must be positive, got {self.batch_size}")
        if self.learning_rate <= 0:
            raise InputError(f"--lr must be positive, got {self.learning_rate}")
        if self.num_workers < 0:
            raise InputError(f"--workers must be >= 0, got {self.num_workers}")
        if self.patch_size and len(self.patch_size) != self.spatial_dims:
            raise InputError(f"--patch-size needs {self.spatial_dims} values for --dim {self.dim}, "
                             f"got {self.patch_size}")
        if any(p < 1 for p in self.patch_size):
            raise InputError(f"--patch-size values must be positive, got {self.patch_size}")

    def stamp_versions(self) -> None:
        """Record the versions of versaseg, torch and MONAI the run trains with."""
        import monai
        import torch

        import versaseg

        self.versions = {"versaseg": versaseg.__version__, "torch": torch.__version__, "monai": monai.__version__}

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    def save(self, run_dir: str | Path) -> None:
        write_text_atomic(Path(run_dir) / "config.json", self.to_json())

    @classmethod
    def from_dict(cls, data: dict, path: Path):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown config keys {unknown[:5]}; was it written by another kind of run?", path)
        hints = typing.get_type_hints(cls)
        for key, value in data.items():
            problem = _type_problem(value, hints[key])
            if problem:
                raise InputError(f"config key '{key}' must be {problem}, got {short_repr(value)}", path)
        try:
            return cls(**data)
        except TypeError as exc:
            raise InputError(f"invalid config ({exc})", path) from None

    @classmethod
    def load(cls, run_dir: str | Path):
        """Read ``run_dir/config.json`` as this kind of run; InputError for a missing, invalid or other-kind file."""
        config = load_run_config(run_dir)
        if not isinstance(config, cls):
            raise InputError(f"config.json is a {type(config).__name__} run, not a {cls.__name__} run "
                             f"({'`versaseg synth train`' if cls is SynthConfig else '`versaseg train`'} writes "
                             "those)", Path(run_dir) / "config.json")
        return config


@dataclass
class TrainConfig(RunConfig):
    """Segmentation settings plus the dataset facts a predictor needs (channels, labels, normalisation)."""

    weight_decay: float = 3e-5
    loss: str = "dice_ce"
    loss_kwargs: dict = field(default_factory=dict)
    augmentation: str = "default"
    foreground_fraction: float = 0.33
    # Filled from the dataset when training starts:
    channel_names: list[str] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)
    ignore_label: int | None = None
    normalization: list[dict] = field(default_factory=list)

    @property
    def class_names(self) -> list[str]:
        """Class names ordered by value (background first); the network's output channels."""
        return [name for name, _ in sorted(self.labels.items(), key=lambda kv: kv[1]) if name != "ignore"]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def validate(self) -> None:
        super().validate()
        from versaseg.losses.registry import available_losses, loss_options

        if self.loss not in available_losses():
            raise InputError(f"unknown --loss '{self.loss}'; valid: {', '.join(available_losses())}")
        loss_options(self.loss, self.loss_kwargs)


SYNTH_NETWORK_KWARGS = {"2d": {"depth": 5, "base_width": 32}, "3d": {"depth": 4, "base_width": 16}}
SYNTH_BATCH_SIZE = {"2d": 4, "3d": 2}
SYNTH_PATCH_3D = (64, 64, 64)


@dataclass
class SynthConfig(RunConfig):
    """pix2pix settings plus the dataset facts ``synth apply`` needs (channels, intensity ranges).

    ``source``/``target`` are channel names or indices as given; training resolves them against dataset.json and
    records ``source_index``/``source_name`` and ``target_index``/``target_name``. ``target_range`` is the target's
    typical (low, high) intensity in scanner units: the medians over the training cases of their per-case
    ``percentiles``; ``apply`` maps the generator's [-1, 1] output onto it. The defaults follow Isola et al.: Adam
    (lr 2e-4, beta1 0.5), a constant rate for the first half of the epochs then a linear decay, no clipping.
    """

    learning_rate: float = 2e-4
    schedule: str = "linear"
    grad_clip: float = 0.0
    source: str = ""
    target: str = ""
    disc_layers: int = 3
    disc_channels: int = 64
    gan_loss: str = "bce"
    lambda_l1: float = 100.0
    beta1: float = 0.5
    beta2: float = 0.999
    percentiles: list[float] = field(default_factory=lambda: [0.5, 99.9])
    sample_every: int = 5
    # Filled from the dataset when training starts:
    source_index: int = -1
    source_name: str = ""
    target_index: int = -1
    target_name: str = ""
    source_range: list[float] = field(default_factory=list)
    target_range: list[float] = field(default_factory=list)

    def fill_defaults(self) -> None:
        """Dimension-dependent defaults: network size, batch size, 3D patch size (2D patches come from the data)."""
        if not self.network_kwargs and self.network == "unet":
            self.network_kwargs = dict(SYNTH_NETWORK_KWARGS[self.dim])
        if not self.batch_size:
            self.batch_size = SYNTH_BATCH_SIZE[self.dim]
        if self.dim == "3d" and not self.patch_size:
            self.patch_size = list(SYNTH_PATCH_3D)

    def validate(self) -> None:
        super().validate()
        if self.gan_loss not in GAN_LOSSES:
            raise InputError(f"unknown --gan-loss '{self.gan_loss}'; valid: {', '.join(GAN_LOSSES)}")
        if self.lambda_l1 < 0:
            raise InputError(f"--lambda-l1 must be >= 0, got {self.lambda_l1}")
        if self.sample_every < 0:
            raise InputError(f"--sample-every must be >= 0, got {self.sample_every}")
        if self.disc_layers < 1 or self.disc_channels < 1:
            raise InputError("the discriminator needs at least one layer and one channel")
        if len(self.percentiles) != 2 or not 0 <= self.percentiles[0] < self.percentiles[1] <= 100:
            raise InputError(f"--percentiles must be LOW,HIGH with 0 <= LOW < HIGH <= 100, got {self.percentiles}")
        if str(self.source) == "" or str(self.target) == "":
            raise InputError("--source and --target channels are required")


def load_run_config(run_dir: str | Path) -> TrainConfig | SynthConfig:
    """``run_dir/config.json`` as the kind of run that wrote it (a synthesis run records ``target_range``)."""
    from versaseg.io.dataset import read_json_object

    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise InputError("run directory not found", run_dir)
    if not path.exists():
        raise InputError("config.json not found; is this a versaseg run directory (`versaseg train` or "
                         "`versaseg synth train`)?", path)
    data = read_json_object(path)
    kind = SynthConfig if "target_range" in data else TrainConfig
    return kind.from_dict(data, path)
