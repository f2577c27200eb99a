"""Train a pix2pix synthesiser: dataset -> paired channels -> split -> generator + discriminator -> run directory.

One iteration (Isola et al. 2017): fake = G(source); the discriminator step minimises
0.5 * [adv(D(source, target), real) + adv(D(source, fake), fake)]; the generator step minimises
adv(D(source, fake), real) + lambda_l1 * |fake - target|_1 (mean over the batch's voxels). Both networks use Adam.

The run directory holds config.json, model.pt (generator state dict), checkpoint.pt (both networks, both optimizers,
epoch, history), metrics.csv (one row per epoch), curves.png and samples/epoch_NNN.png; every file is written
atomically. Randomness is re-seeded at the start of every epoch from (seed, epoch), so a resumed run continues with
the same stream an uninterrupted one would have used.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from versaseg.errors import InputError
from versaseg.io.dataset import load_dataset
from versaseg.progress import bar_enabled
from versaseg.synthesis.config import SynthConfig
from versaseg.synthesis.data import PairedVolume, PairSampler, load_pair, resolve_channel
from versaseg.synthesis.inference import inference_batch_size, synthesize_scaled
from versaseg.synthesis.metrics import image_quality
from versaseg.synthesis.networks import adversarial_loss, build_discriminator, build_generator, patchgan_min_input
from versaseg.training.checkpoint import load_safe, save_atomic
from versaseg.training.distributed import resolve_device
from versaseg.training.history import EpochLogger
from versaseg.training.run import default_patch_size, prepare_run_dir, split_cases
from versaseg.training.trainer import epoch_seed

DATA_RANGE = 2.0  # validation metrics are computed in the target's scaled units, [-1, 1]
SAMPLE_SLICES = 3


def train_synthesis(config: SynthConfig, dataset: str | Path, out: str | Path, resume: bool = False,
                    overwrite: bool = False, device: str = "auto", progress: bool = True) -> Path:
    """Train a pix2pix generator mapping channel ``config.source`` to ``config.target`` of ``dataset``.

    With ``resume`` the run's own config.json is used and training continues after the last completed epoch up to
    ``max(saved epochs, config.epochs)``. An existing non-empty ``out`` needs ``resume`` or ``overwrite``.
    Raises :class:`InputError` (naming the file) for bad input. Returns ``out``.
    """
    import monai

    import versaseg

    run_dir, root = Path(out), Path(dataset)
    torch_device = resolve_device(device)
    if resume:
        if not (run_dir / "checkpoint.pt").exists():
            raise InputError("--resume given but there is no checkpoint.pt to resume from", run_dir)
        saved = SynthConfig.load(run_dir)
        saved.epochs = max(saved.epochs, config.epochs)
        config = saved
    elif run_dir.exists() and run_dir.is_dir() and any(run_dir.iterdir()) and not overwrite:
        raise InputError("run directory exists and is not empty; pass --resume to continue or --overwrite", run_dir)
    config.fill_defaults()
    config.validate()

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

    files = spec.training_cases()
    label_values = set(spec.labels.values())
    # a context manager: the bar is closed before an error shows
    with tqdm(files, desc="load cases", leave=False, disable=not bar_enabled(progress)) as bar:
        volumes = {f.case_id: load_pair(f, source_index, target_index, config.percentiles, spec.ignore_label,
                                        label_values) for f in bar}
    if not config.train_cases:
        config.train_cases, config.val_cases = split_cases(list(volumes), config.val_fraction, config.seed)
    missing = sorted(set(config.train_cases + config.val_cases) - set(volumes))
    if missing:
        raise InputError(f"cases {missing} of the run's split are not in the dataset", root)
    train_volumes = [volumes[i] for i in config.train_cases]
    val_volumes = [volumes[i] for i in config.val_cases]
    if not config.target_range:
        config.source_range = _median_range([v.source_range for v in train_volumes])
        config.target_range = _median_range([v.target_range for v in train_volumes])

    torch.manual_seed(config.seed)
    generator = build_generator(config)
    discriminator = build_discriminator(config)
    divisor = generator.required_divisor
    if not config.patch_size:
        config.patch_size = default_patch_size([v.source.shape for v in volumes.values()], "2d", config.axis, divisor)
    bad = [p for p in config.patch_size if p % divisor]
    if bad:
        raise InputError(f"--patch values must be multiples of {divisor} for this generator, got {bad}")
    smallest = patchgan_min_input(config.disc_layers)
    if min(config.patch_size) < smallest:
        raise InputError(f"--patch {config.patch_size} is too small for the discriminator ({config.disc_layers} "
                         f"layers need at least {smallest} voxels per axis)")
    config.versions = {"versaseg": versaseg.__version__, "torch": torch.__version__, "monai": monai.__version__}

    prepare_run_dir(run_dir, resume, overwrite)
    if overwrite and not resume:
        shutil.rmtree(run_dir / "samples", ignore_errors=True)
    config.save(run_dir)
    loop = _Pix2Pix(config, generator, discriminator, train_volumes, val_volumes, run_dir, torch_device, progress)
    if resume:
        loop.resume()
    loop.fit()
    return run_dir


def _median_range(ranges: Sequence[tuple[float, float]]) -> list[float]:
    low, high = (float(v) for v in np.median(np.array(ranges, dtype=np.float64), axis=0))
    return [low, high if high > low else low + 1.0]


class _Pix2Pix:
    """The training loop of :func:`train_synthesis` (state, one epoch, validation, samples, checkpoints)."""

    def __init__(self, config: SynthConfig, generator, discriminator, train_volumes: Sequence[PairedVolume],
                 val_volumes: Sequence[PairedVolume], run_dir: Path, device: torch.device, progress: bool):
        self.config, self.run_dir, self.device, self.progress = config, run_dir, device, progress
        self.generator, self.discriminator = generator.to(device), discriminator.to(device)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=config.learning_rate, betas=betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.learning_rate, betas=betas)
        self.sampler = PairSampler(train_volumes, config.dim, config.axis, config.patch_size, config.batch_size)
        self.train_volumes, self.val_volumes = list(train_volumes), list(val_volumes)
        self.history: list[dict] = []
        self.start_epoch = 0

    def resume(self) -> None:
        checkpoint = load_safe(self.run_dir / "checkpoint.pt", map_location=self.device)
        try:
            self.generator.load_state_dict(checkpoint["generator"])
            self.discriminator.load_state_dict(checkpoint["discriminator"])
            self.opt_g.load_state_dict(checkpoint["opt_g"])
            self.opt_d.load_state_dict(checkpoint["opt_d"])
            self.history = list(checkpoint["history"])
            self.start_epoch = int(checkpoint["epoch"]) + 1
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise InputError(f"checkpoint does not match the run's config ({str(exc).splitlines()[0]})",
                             self.run_dir / "checkpoint.pt") from None

    def save(self, epoch: int) -> None:
        state = {"generator": self.generator.state_dict(), "discriminator": self.discriminator.state_dict(),
                 "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "epoch": epoch,
                 "history": self.history}
        save_atomic(state, self.run_dir / "checkpoint.pt")
        save_atomic(self.generator.state_dict(), self.run_dir / "model.pt")

    def fit(self) -> list[dict]:
        config = self.config
        logger = EpochLogger(self.run_dir, tensorboard=False)
        bar = tqdm(total=config.epochs * config.iterations_per_epoch,
                   initial=self.start_epoch * config.iterations_per_epoch, unit="it", desc="synth train",
                   disable=not bar_enabled(self.progress), dynamic_ncols=True)
        try:
            for epoch in range(self.start_epoch, config.epochs):
                started = time.perf_counter()
                row = self.train_epoch(epoch, bar)
                synthetic = {}
                if self.val_volumes:
                    scores, synthetic = self.validate()
                    row.update(scores)
                last = epoch + 1 == config.epochs
                if config.sample_every and ((epoch + 1) % config.sample_every == 0 or last):
                    self.write_samples(epoch, synthetic)
                row["seconds"] = time.perf_counter() - started
                self.history.append(row)
                self.save(epoch)
                logger.log(self.history)
                if self.progress:
                    bar.write(_format_row(row))
        finally:
            bar.close()
            logger.close()
        return self.history

    def train_epoch(self, epoch: int, bar: tqdm) -> dict:
        config = self.config
        seed = epoch_seed(config.seed, epoch, 0)
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        self.generator.train()
        self.discriminator.train()
        sums = {"g_adv": 0.0, "g_l1": 0.0, "d_loss": 0.0}
        for _ in range(config.iterations_per_epoch):
            source, target = (t.to(self.device) for t in self.sampler.batch(rng))
            fake = self.generator(source)
            # discriminator: real pairs -> 1, synthetic pairs -> 0
            d_real = self.discriminator(torch.cat([source, target], 1))
            d_fake = self.discriminator(torch.cat([source, fake.detach()], 1))
            d_loss = 0.5 * (adversarial_loss(d_real, True, config.gan_loss)
                            + adversarial_loss(d_fake, False, config.gan_loss))
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self.opt_d.step()
            # generator: fool the discriminator and stay close to the target (L1)
            g_adv = adversarial_loss(self.discriminator(torch.cat([source, fake], 1)), True, config.gan_loss)
            g_l1 = torch.nn.functional.l1_loss(fake, target)
            g_loss = g_adv + config.lambda_l1 * g_l1
            self.opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            self.opt_g.step()
            sums["g_adv"] += g_adv.item()
            sums["g_l1"] += g_l1.item()
            sums["d_loss"] += d_loss.item()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, l1=f"{g_l1.item():.3f}", d=f"{d_loss.item():.3f}")
        row = {"epoch": epoch + 1}
        row.update({k: v / config.iterations_per_epoch for k, v in sums.items()})
        return row

    def synthesize(self, volume: PairedVolume) -> np.ndarray:
        config = self.config
        return synthesize_scaled(self.generator, volume.source, config.dim, config.axis, config.patch_size,
                                 batch_size=inference_batch_size(config.dim, config.batch_size),
                                 device=self.device)

    def validate(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Mean MAE / PSNR / SSIM over the validation cases, inside each case's brain mask, in scaled units."""
        ssim_axis = self.config.axis if self.config.dim == "2d" else None
        scores, synthetic = [], {}
        for volume in self.val_volumes:
            synthetic[volume.case_id] = self.synthesize(volume)
            scores.append(image_quality(synthetic[volume.case_id], volume.target, volume.mask, DATA_RANGE,
                                        ssim_axis=ssim_axis, fill=-1.0))
        return {f"val_{k}": float(np.mean([s[k] for s in scores])) for k in ("mae", "psnr", "ssim")}, synthetic

    def write_samples(self, epoch: int, synthetic: dict[str, np.ndarray]) -> Path:
        """``samples/epoch_NNN.png``: rows of (source | synthetic | real) slices of the first validation case (or
        the first training case without validation cases)."""
        volume = (self.val_volumes or self.train_volumes)[0]
        fake = synthetic.get(volume.case_id)
        if fake is None:
            fake = self.synthesize(volume)
        axis = self.config.axis if self.config.dim == "2d" else 2
        return write_sample_png(self.run_dir / "samples" / f"epoch_{epoch + 1:03d}.png", volume, fake, axis,
                                title=f"epoch {epoch + 1}: {volume.case_id}, "
                                      f"{self.config.source_name} -> {self.config.target_name}")


def write_sample_png(path: Path, volume: PairedVolume, synthetic: np.ndarray, axis: int, title: str = "",
                     slices: int = SAMPLE_SLICES) -> Path:
    """A PNG with one row per slice (evenly spaced through the brain mask along ``axis``) and three columns:
    source | synthetic | real, all in scaled units shown on [-1, 1]."""
    from matplotlib.figure import Figure

    from versaseg.viz.overlays import save_figure, slice_positions

    positions = slice_positions(volume.mask, axis, slices)
    plane_shape = [s for a, s in enumerate(volume.source.shape) if a != axis]
    ratio = plane_shape[1] / plane_shape[0]
    panel = 2.2
    fig = Figure(figsize=(3 * panel, len(positions) * panel * ratio + 0.5))
    for row, position in enumerate(positions):
        for column, (name, array) in enumerate((("source", volume.source), ("synthetic", synthetic),
                                                ("real", volume.target))):
            ax = fig.add_subplot(len(positions), 3, row * 3 + column + 1)
            ax.imshow(np.take(array, position, axis=axis).T, cmap="gray", vmin=-1, vmax=1, origin="lower",
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
            if column == 0:
                ax.set_ylabel(f"{'xyz'[axis]}={position}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def _format_row(row: dict) -> str:
    parts = [f"epoch {row['epoch']}", f"G adv {row['g_adv']:.3f}", f"L1 {row['g_l1']:.4f}", f"D {row['d_loss']:.3f}"]
    if "val_mae" in row:
        parts.append(f"val MAE {row['val_mae']:.4f} PSNR {row['val_psnr']:.2f} SSIM {row['val_ssim']:.3f}")
    parts.append(f"{row['seconds']:.1f} s")
    return " | ".join(parts)
