"""Use a trained synthesiser: one image -> synthetic target image; a dataset -> the dataset plus a synthetic channel."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from versaseg.data.case import load_case
from versaseg.errors import InputError
from versaseg.io.atomic import check_writable, replace_folder
from versaseg.io.dataset import load_dataset
from versaseg.io.image import Volume, from_canonical, read_volume, to_canonical, write_volume
from versaseg.progress import bar_enabled
from versaseg.synthesis.config import SynthConfig
from versaseg.synthesis.data import intensity_range, resolve_channel, scale_to_unit, unit_to_range
from versaseg.synthesis.inference import inference_batch_size, synthesize_scaled
from versaseg.synthesis.networks import Generator, build_generator
from versaseg.training.checkpoint import load_safe
from versaseg.training.distributed import resolve_device

DATASET_FOLDERS = ("imagesTr", "labelsTr", "imagesTs", "labelsTs")


@dataclass
class Synthesizer:
    """A loaded run: its config and its generator (eval mode, on ``device``)."""

    run_dir: Path
    config: SynthConfig
    generator: Generator
    device: torch.device

    def synthesize_canonical(self, source: np.ndarray) -> np.ndarray:
        """Source channel (X, Y, Z) in canonical orientation, scanner units -> synthetic target, target units.

        The source is scaled with its own percentiles; the generator's output is mapped onto the run's
        ``target_range``. Returns float32 (X, Y, Z).
        """
        config = self.config
        scaled = scale_to_unit(source, *intensity_range(source, config.percentiles))
        out = synthesize_scaled(self.generator, scaled, config.dim, config.axis, config.patch_size,
                                batch_size=inference_batch_size(config.dim, config.batch_size), device=self.device)
        return unit_to_range(out, *config.target_range)


def load_synthesizer(run: str | Path, device: str | torch.device = "cpu") -> Synthesizer:
    """Load ``run/config.json`` and ``run/model.pt`` (weights only); InputError naming the missing or bad file."""
    run = Path(run)
    config = SynthConfig.load(run)
    weights = run / "model.pt"
    if not weights.exists():
        raise InputError("model.pt not found; has `versaseg synth train` finished an epoch in this run?", weights)
    state = load_safe(weights, map_location="cpu")
    torch_device = device if isinstance(device, torch.device) else resolve_device(device)
    generator = build_generator(config)
    try:
        generator.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise InputError(f"weights do not match the generator in config.json ({str(exc).splitlines()[0]})",
                         weights) from None
    return Synthesizer(run, config, generator.to(torch_device).eval(), torch_device)


def synthesize(run_or_model: str | Path | Synthesizer, image: Volume | str | Path,
               device: str | torch.device = "cpu") -> Volume:
    """Synthesise the run's target modality from a source image (a :class:`Volume` or a file path).

    Returns a Volume with the input's exact geometry (and NIfTI header) holding float32 target-like intensities.
    """
    model = run_or_model if isinstance(run_or_model, Synthesizer) else load_synthesizer(run_or_model, device)
    volume = image if isinstance(image, Volume) else read_volume(image)
    data = np.asarray(volume.array, dtype=np.float32)
    if not np.isfinite(data).all():
        raise InputError("image contains NaN or Inf values", volume.path)
    canonical, _, orientation = to_canonical(data, volume.affine)
    out = from_canonical(model.synthesize_canonical(canonical), orientation)
    return volume.like(out)


def apply_to_file(run: str | Path, image: str | Path, out: str | Path, overwrite: bool = False,
                  device: str = "auto") -> Path:
    """``versaseg synth apply``: synthesise from ``image`` and write ``out`` with the input's geometry."""
    check_writable(out, overwrite)
    model = load_synthesizer(run, device)
    volume = read_volume(image)
    result = synthesize(model, volume)
    return write_volume(out, result.array, volume, overwrite=overwrite)


def augment_dataset(dataset: str | Path, run: str | Path, out: str | Path, overwrite: bool = False,
                    device: str = "auto", progress: bool = True, channel_name: str | None = None) -> Path:
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
    model = load_synthesizer(run, device)
    config = model.config
    try:
        source_index, source_name = resolve_channel(spec, config.source_name, "the run's source channel")
    except InputError:
        source_index, source_name = resolve_channel(spec, config.source_index, "the run's source channel")
    cases = [(c, True) for c in spec.training_cases()] + [(c, False) for c in spec.test_cases()]
    new_index = spec.num_channels
    new_name = channel_name or f"synthetic {config.target_name}"
    label_values = set(spec.labels.values())

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for folder in DATASET_FOLDERS:
            if (root / folder).is_dir():
                shutil.copytree(root / folder, tmp / folder)
        with tqdm(cases, desc="synthesize", unit="case", leave=False, disable=not bar_enabled(progress)) as bar:
            for files, training in bar:
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
        replace_folder(tmp, out, overwrite=overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
