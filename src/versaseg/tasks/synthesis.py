"""``versaseg synth train | apply | augment``: pix2pix (Isola et al. 2017) composed from the stages.

Training: dataset -> paired channels (:mod:`versaseg.data.pairs`) -> split -> generator + discriminator
(:mod:`versaseg.networks.pix2pix`) -> the shared loop (:class:`~versaseg.training.trainer.Trainer` with a
:class:`~versaseg.training.steps.Pix2PixStep` and a :class:`~versaseg.evaluation.validation.SynthesisValidator`) ->
run directory: config.json, model.pt (generator), checkpoint.pt (both networks, both optimisers, schedules, epoch,
history), metrics.csv, curves.png, samples/epoch_NNN.png and, with ``save_every``, checkpoints/. Use:
:class:`~versaseg.inference.predictor.Predictor` (an image run) on an image or on every case of a dataset.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from versaseg.data.case import load_case
from versaseg.data.pairs import PairedVolume, PairSampler, load_pair, resolve_channel
from versaseg.errors import InputError
from versaseg.evaluation.validation import SynthesisValidator, synthesize_scaled
from versaseg.inference.predictor import Predictor
from versaseg.io.atomic import atomic_folder, check_writable
from versaseg.io.checks import image_values
from versaseg.io.dataset import load_dataset
from versaseg.io.image import Volume, from_canonical, read_volume, to_canonical, write_volume
from versaseg.io.run_dir import prepare_run_dir
from versaseg.networks.pix2pix import build_discriminator, build_generator, patchgan_min_input
from versaseg.progress import progress
from versaseg.training.config import SynthConfig
from versaseg.training.distributed import barrier, distributed_run
from versaseg.training.run import default_patch_size, split_cases
from versaseg.training.steps import Pix2PixStep
from versaseg.training.trainer import Trainer, load_checkpoint

DATASET_FOLDERS = ("imagesTr", "labelsTr", "imagesTs", "labelsTs")


def train_synthesis(config: SynthConfig, dataset: str | Path, out: str | Path, resume: bool = False,
                    overwrite: bool = False, device: str | torch.device = "auto",
                    show_progress: bool = True) -> Trainer:
    """Train a pix2pix generator mapping channel ``config.source`` to ``config.target`` of ``dataset``.

    With ``resume`` the run's own config.json is used and training continues after the last completed epoch up to
    ``max(saved epochs, config.epochs)``. An existing non-empty ``out`` needs ``resume`` or ``overwrite``. Works as
    one process or under ``torchrun``. Raises :class:`InputError` (naming the file) for bad input; the run directory
    is created only once the input has been checked. Returns the trainer (``trainer.network`` is the generator).
    """
    run_dir, root = Path(out), Path(dataset)
    with distributed_run(run_dir, resume, overwrite, device) as (torch_device, dist):
        checkpoint = load_checkpoint(run_dir) if resume else None  # a bad file fails before the data loads
        if resume:
            saved = SynthConfig.load(run_dir)
            saved.epochs = max(saved.epochs, config.epochs)
            config = saved
        config.fill_defaults()
        config.validate()
        train_volumes, val_volumes = _load_pairs(config, root, resume, show_progress and dist.is_main)
        torch.manual_seed(config.seed)
        generator = build_generator(config.network, config.spatial_dims, config.network_kwargs)
        discriminator = build_discriminator(config.spatial_dims, config.disc_layers, config.disc_channels)
        divisor = generator.required_divisor
        if not config.patch_size:
            config.patch_size = default_patch_size([v.source.shape for v in train_volumes + val_volumes], "2d",
                                                   config.axis, divisor)
        bad = [p for p in config.patch_size if p % divisor]
        if bad:
            raise InputError(f"--patch-size values must be multiples of {divisor} for this generator, got {bad}")
        smallest = patchgan_min_input(config.disc_layers)
        if min(config.patch_size) < smallest:
            raise InputError(f"--patch-size {config.patch_size} is too small for the discriminator "
                             f"({config.disc_layers} layers need at least {smallest} voxels per axis)")
        config.stamp_versions()
        if dist.is_main:
            prepare_run_dir(run_dir, resume, overwrite)
            config.save(run_dir)
        validator = SynthesisValidator(generator, val_volumes, config, torch_device) if val_volumes else None
        hooks = [_sample_writer(config, run_dir, generator, train_volumes, validator, torch_device)] \
            if config.sample_every else []
        sampler = PairSampler(train_volumes, config.dim, config.axis, config.patch_size, config.batch_size,
                              config.seed, dist.rank)
        trainer = Trainer(config, Pix2PixStep(generator, discriminator, config), sampler, torch_device, dist,
                          run_dir, validator, hooks)
        barrier(dist)
        if resume:
            trainer.resume(checkpoint)
        trainer.fit()
        return trainer


def _load_pairs(config: SynthConfig, root: Path, resume: bool,
                show_progress: bool) -> tuple[list[PairedVolume], list[PairedVolume]]:
    """Resolve the channels, load and check every training case, split them; fills the dataset facts of
    ``config`` (channels, split, intensity ranges). Returns (train, validation) pairs."""
    spec = load_dataset(root)
    source_index, source_name = resolve_channel(spec, config.source, "--source")
    target_index, target_name = resolve_channel(spec, config.target, "--target")
    if source_index == target_index:
        raise InputError(f"--source and --target are the same channel ({source_index} {source_name}); pix2pix needs "
                         "two different channels", root / "dataset.json")
    if resume and (source_name, target_name) != (config.source_name, config.target_name):
        raise InputError(f"the run maps {config.source_name} -> {config.target_name}, but the dataset's channels "
                         f"resolve to {source_name} -> {target_name}", root / "dataset.json")
    config.source_index, config.source_name = source_index, source_name
    config.target_index, config.target_name = target_index, target_name
    config.dataset = str(root)
    label_values = set(spec.labels.values())
    volumes = {f.case_id: load_pair(f, source_index, target_index, config.percentiles, spec.ignore_label,
                                    label_values)
               for f in progress(spec.training_cases(), "load cases", "case", enabled=show_progress, leave=False)}
    if not config.train_cases:
        config.train_cases, config.val_cases = split_cases(list(volumes), config.val_fraction, config.seed)
    missing = sorted(set(config.train_cases + config.val_cases) - set(volumes))
    if missing:
        raise InputError(f"cases {missing} of the run's split are not in the dataset", root)
    train_volumes = [volumes[i] for i in config.train_cases]
    if not config.target_range:
        config.source_range = _median_range([v.source_range for v in train_volumes])
        config.target_range = _median_range([v.target_range for v in train_volumes])
    return train_volumes, [volumes[i] for i in config.val_cases]


def _median_range(ranges: Sequence[tuple[float, float]]) -> list[float]:
    low, high = (float(v) for v in np.median(np.array(ranges, dtype=np.float64), axis=0))
    return [low, high if high > low else low + 1.0]


def _sample_writer(config: SynthConfig, run_dir: Path, generator: torch.nn.Module,
                   train_volumes: Sequence[PairedVolume],
                   validator: SynthesisValidator | None, device: torch.device):
    """The epoch hook writing ``samples/epoch_NNN.png`` every ``sample_every`` epochs and after the last: the first
    validation case (the first training case without validation cases), from the validation's own synthesis when
    that ran this epoch."""
    from versaseg.viz.synthesis import write_sample_png

    def write(epoch: int, row: dict) -> None:
        done = epoch + 1
        if done % config.sample_every and done != config.epochs:
            return
        volume = validator.volumes[0] if validator is not None else train_volumes[0]
        fake = validator.outputs.get(volume.case_id) if validator is not None and "val_mae" in row else None
        if fake is None:
            fake = synthesize_scaled(generator, volume.source, config, device)
        axis = config.axis if config.dim == "2d" else 2
        write_sample_png(run_dir / "samples" / f"epoch_{done:03d}.png", volume, fake, axis,
                         title=f"epoch {done}: {volume.case_id}, {config.source_name} -> {config.target_name}")

    return write


def synthesize(run_or_model: str | Path | Predictor, image: Volume | str | Path,
               device: str | torch.device = "cpu") -> Volume:
    """Synthesise the run's target modality from a source image (a :class:`Volume` or a file path).

    Returns a Volume with the input's exact geometry (and NIfTI header) holding float32 target-like intensities.
    """
    model = run_or_model if isinstance(run_or_model, Predictor) else Predictor(run_or_model, device)
    model.require("image")
    volume = image if isinstance(image, Volume) else read_volume(image)
    data = image_values(volume)
    canonical, _, orientation = to_canonical(data, volume.affine)
    out = from_canonical(model.synthesize_canonical(canonical), orientation)
    return volume.like(out)


def apply_to_file(run: str | Path, image: str | Path, out: str | Path, overwrite: bool = False,
                  device: str | torch.device = "auto") -> Path:
    """``versaseg synth apply``: synthesise from ``image`` and write ``out`` with the input's geometry."""
    check_writable(out, overwrite)
    model = Predictor(run, device).require("image")
    volume = read_volume(image)
    return write_volume(out, synthesize(model, volume).array, volume, overwrite=overwrite)


def augment_dataset(dataset: str | Path, run: str | Path, out: str | Path, overwrite: bool = False,
                    device: str | torch.device = "auto", show_progress: bool = True,
                    channel_name: str | None = None) -> Path:
    """Copy ``dataset`` to ``out`` and add the run's synthetic target as a new last channel of every case.

    The source channel is found in ``dataset`` by the run's source channel name (else its index). Every case of
    imagesTr and imagesTs is read and checked first (geometry, NaN, labels); the new channel ``CASE_000N`` is written
    with the case's geometry; dataset.json gets ``channel_names[N]`` = ``channel_name`` (default
    ``"synthetic <target>"``) and a ``synthesis`` entry recording the run, source and target. The new dataset is built
    in a hidden temporary sibling folder and renamed onto ``out`` at the end, so a failure leaves nothing behind.
    Returns ``out``.
    """
    root, out = Path(dataset), Path(out)
    spec = load_dataset(root)
    if out.resolve() == root.resolve():
        raise InputError("--out must differ from the input dataset", out)
    if out.exists() and not overwrite:
        raise InputError("output exists; pass --overwrite to replace it", out)
    model = Predictor(run, device).require("image")
    config = model.config
    try:
        source_index, source_name = resolve_channel(spec, config.source_name, "the run's source channel")
    except InputError:
        source_index, source_name = resolve_channel(spec, config.source_index, "the run's source channel")
    cases = [(c, True) for c in spec.training_cases()] + [(c, False) for c in spec.test_cases()]
    new_index = spec.num_channels
    new_name = channel_name or f"synthetic {config.target_name}"
    label_values = set(spec.labels.values())

    with atomic_folder(out, overwrite=overwrite) as tmp:
        for folder in DATASET_FOLDERS:
            if (root / folder).is_dir():
                shutil.copytree(root / folder, tmp / folder)
        for files, training in progress(cases, "synthesize", "case", enabled=show_progress, leave=False):
            case = load_case(files, label_values if training else None)
            synthetic = model.synthesize_canonical(case.image[source_index])
            folder = "imagesTr" if training else "imagesTs"
            write_volume(tmp / folder / f"{files.case_id}_{new_index:04d}{spec.file_ending}",
                         case.to_original(synthetic), case.reference)
        spec.root = tmp
        spec.channel_names = {**spec.channel_names, new_index: new_name}
        spec.extra = {**spec.extra, "synthesis": {
            "run": str(Path(run).resolve()), "source_channel": source_name, "source_index": source_index,
            "target_channel": config.target_name, "channel": new_index, "channel_name": new_name,
            "from_dataset": str(root.resolve())}}
        spec.save()
    return out
