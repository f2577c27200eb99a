"""Run directory -> label volumes (or synthetic images) with the input's exact geometry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from versaseg.data.case import Case, load_case
from versaseg.data.normalization import normalize
from versaseg.data.pairs import FILL, intensity_range, scale_to_unit, unit_to_range
from versaseg.errors import InputError
from versaseg.inference.postprocess import keep_largest_component
from versaseg.inference.window import inference_batch_size, predict_volume
from versaseg.io.atomic import check_writable
from versaseg.io.dataset import CaseFiles, group_channel_files, load_dataset
from versaseg.io.image import IMAGE_ENDINGS, file_ending, write_volume
from versaseg.io.run_dir import load_safe, resolve_device
from versaseg.networks.pix2pix import build_generator
from versaseg.networks.registry import build_network
from versaseg.progress import progress
from versaseg.training.config import SynthConfig, TrainConfig, load_run_config


@dataclass
class Prediction:
    """labels: (X, Y, Z) int16 in the case's original axis order; probabilities: (K, X, Y, Z) float32 or None."""

    case: Case
    labels: np.ndarray
    probabilities: np.ndarray | None


def build_run_network(config: TrainConfig | SynthConfig) -> torch.nn.Module:
    """The untrained network a run's config describes: a segmentation network or a pix2pix generator."""
    if isinstance(config, SynthConfig):
        return build_generator(config.network, config.spatial_dims, config.network_kwargs)
    return build_network(config.network, config.spatial_dims, len(config.channel_names), config.num_classes,
                         **config.network_kwargs)


class Predictor:
    """Loads ``run_dir`` (config.json + model.pt, weights only) of a segmentation or a synthesis run and applies its
    network to whole volumes with :func:`versaseg.inference.window.predict_volume`.

    :attr:`output` says what the network gives: ``"probabilities"`` (a ``versaseg train`` run: :meth:`predict_case`)
    or ``"image"`` (a ``versaseg synth train`` run: :meth:`synthesize_canonical`).
    """

    def __init__(self, run_dir: str | Path, device: torch.device | str = "cpu", tta: bool = False,
                 largest_component: bool = False, batch_size: int | None = None, weights: str = "model.pt"):
        self.run_dir = Path(run_dir)
        self.config = load_run_config(self.run_dir)
        self.output = "image" if isinstance(self.config, SynthConfig) else "probabilities"
        self.device = resolve_device(device)
        self.network = build_run_network(self.config)
        path = self.run_dir / weights
        if not path.exists():
            raise InputError("weights not found; has training finished an epoch in this run?", path)
        state = load_safe(path, map_location="cpu")
        try:
            self.network.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise InputError(f"weights do not match the network in config.json ({str(exc).splitlines()[0]})",
                             path) from None
        self.network.to(self.device).eval()
        self.tta, self.largest_component = tta, largest_component
        self.batch_size = batch_size or inference_batch_size(self.config.dim, self.config.batch_size)

    def require(self, output: str) -> Predictor:
        """Self, or InputError naming config.json when the run's network gives the other kind of output."""
        if self.output != output:
            command = "`versaseg synth train`" if output == "image" else "`versaseg train`"
            raise InputError(f"this is not a {command} run (its network outputs {self.output})",
                             self.run_dir / "config.json")
        return self

    def run(self, image: np.ndarray) -> torch.Tensor:
        """The network on one preprocessed volume: (C, X, Y, Z) float32, canonical -> (K, X, Y, Z) on the CPU."""
        fill = FILL if self.output == "image" else 0.0
        return predict_volume(self.network, torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
                              self.config.dim, self.config.axis, self.config.patch_size, self.batch_size, self.tta,
                              self.device, output=self.output, fill=fill)

    def synthesize_canonical(self, source: np.ndarray) -> np.ndarray:
        """Source channel (X, Y, Z) in canonical orientation, scanner units -> synthetic target, target units.

        The source is scaled with its own percentiles; the generator's output is mapped onto the run's
        ``target_range``. Returns float32 (X, Y, Z).
        """
        config = self.require("image").config
        scaled = scale_to_unit(source, *intensity_range(source, config.percentiles))
        return unit_to_range(self.run(scaled[None])[0].numpy(), *config.target_range)

    def predict_case(self, case: Case, keep_probabilities: bool = False) -> Prediction:
        """Predict one loaded case; outputs are mapped back to the case's original orientation."""
        self.require("probabilities")
        probs = self.run(normalize(case.image, self.config.normalization))
        labels = probs.argmax(0).numpy().astype(np.int16)
        if self.largest_component:
            labels = keep_largest_component(labels, range(1, self.config.num_classes))
        original_probs = None
        if keep_probabilities:
            original_probs = case.to_original(probs.numpy().transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
        return Prediction(case, case.to_original(labels), original_probs)

    def predict_to_folder(self, cases: Sequence[CaseFiles], out_dir: str | Path, overwrite: bool = False,
                          save_probabilities: bool = False, show_progress: bool = True,
                          ending: str | None = None, hook: FolderHook | None = None) -> list[Path]:
        """Predict every case into ``out_dir/CASE<ending>``; probabilities go to ``out_dir/CASE_prob_<class>``.

        ``ending`` None keeps the input's file ending; ``.seg.nrrd`` writes 3D Slicer segmentations whose segments
        carry the class names (probability maps then go to plain ``.nrrd``). A ``hook`` replaces the per-case
        prediction and adds files of its own (instead of the probabilities). All output paths are checked before
        any work, so an existing file stops the run before anything is written; with several cases every case is
        also read and checked (:func:`versaseg.data.case.load_case`) before the first is predicted, so a bad case
        stops the run before any output exists (the price: each file is read twice).
        """
        from versaseg.io.segmentation import default_segments

        self.require("probabilities")
        if hook is not None and save_probabilities:
            raise ValueError("save_probabilities and a hook exclude each other")
        hook = hook or (ProbabilityMaps(self) if save_probabilities else FolderHook(self))
        names = {value: name for name, value in self.config.labels.items()}
        segments = default_segments([v for v in names if v != self.config.labels.get("ignore")], names)
        out_dir = Path(out_dir)
        plans = []
        for files in cases:
            if len(files.images) != len(self.config.channel_names):
                raise InputError(f"case {files.case_id} has {len(files.images)} channel file(s), the model expects "
                                 f"{len(self.config.channel_names)} ({', '.join(self.config.channel_names)})",
                                 files.images[0])
            label_ending = ending or file_ending(files.images[0]) or ".nii.gz"
            outputs = [out_dir / f"{files.case_id}{label_ending}"]
            outputs += [out_dir / name for name in hook.case_outputs(files.case_id, label_ending)]
            for path in outputs:
                check_writable(path, overwrite)
            plans.append((files, outputs))
        for name in hook.folder_outputs:
            check_writable(out_dir / name, overwrite)
        if len(plans) > 1:
            for files, _ in progress(plans, "check inputs", "case", enabled=show_progress, leave=False):
                load_case(files)
        written = []
        for files, outputs in progress(plans, hook.desc, "case", enabled=show_progress):
            prediction = hook.predict(load_case(files))
            written.append(write_volume(outputs[0], prediction.labels, prediction.case.reference, overwrite=True,
                                        segments=segments))
            hook.write(prediction, outputs[1:])
        hook.finish(out_dir)
        return written


class FolderHook:
    """What :meth:`Predictor.predict_to_folder` does per case beyond the labels; this base class does nothing more.

    A subclass (the cascade's two stages, the probability maps) predicts a loaded case its own way and writes files
    of its own: ``case_outputs`` per case and ``folder_outputs`` once (names inside the output folder; all checked
    before any work, like the labels). ``desc`` labels the progress.
    """

    desc = "predict"
    folder_outputs: tuple[str, ...] = ()

    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def case_outputs(self, case_id: str, ending: str) -> list[str]:
        """The case's files beside its labels (``ending``: the labels' file ending)."""
        return []

    def predict(self, case: Case):
        """The case's prediction: anything with ``case`` and ``labels`` (X, Y, Z) int in original axis order."""
        return self.predictor.predict_case(case)

    def write(self, prediction, paths: list[Path]) -> None:
        """Write the case's :meth:`case_outputs` (``paths``, in that order) once its labels are written."""

    def finish(self, out_dir: Path) -> None:
        """Write the :attr:`folder_outputs` once every case is done."""


class ProbabilityMaps(FolderHook):
    """``save_probabilities``: one map per class, ``CASE_prob_<class><ending>`` (``.nrrd`` beside ``.seg.nrrd``)."""

    def case_outputs(self, case_id: str, ending: str) -> list[str]:
        from versaseg.io.segmentation import SEG_ENDING

        map_ending = ".nrrd" if ending == SEG_ENDING else ending
        return [f"{case_id}_prob_{name}{map_ending}" for name in self.predictor.config.class_names]

    def predict(self, case: Case) -> Prediction:
        return self.predictor.predict_case(case, keep_probabilities=True)

    def write(self, prediction: Prediction, paths: list[Path]) -> None:
        for k, path in enumerate(paths):
            write_volume(path, prediction.probabilities[k], prediction.case.reference, overwrite=True)


def collect_inputs(inputs: Sequence[str | Path], num_channels: int) -> list[CaseFiles]:
    """Turn CLI inputs into cases: image files, folders of image files, DICOM series folders or a dataset (imagesTs).

    Files are grouped into cases by their ``_XXXX`` channel suffix (nnU-Net naming).
    """
    files: list[Path] = []
    cases: list[CaseFiles] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise InputError("input not found", path)
        if path.is_dir() and (path / "dataset.json").exists():
            test_cases = load_dataset(path).test_cases()
            if not test_cases:
                raise InputError("dataset has no imagesTs cases to predict", path)
            cases += test_cases
        elif path.is_dir():
            images = sorted(p for p in path.iterdir() if p.is_file() and file_ending(p))
            if images:
                files += images
            else:  # a DICOM series folder: one single-channel case named after the folder
                cases.append(CaseFiles(path.name, [path]))
        elif file_ending(path):
            files.append(path)
        else:
            raise InputError(f"not an image file (expected one of {', '.join(IMAGE_ENDINGS)} or a folder)", path)
    try:
        grouped = group_channel_files(files, num_channels) if files else {}
    except InputError as exc:
        raise InputError(f"{exc} (the model expects {num_channels} channel file(s) per case: CASE_0000 ...)") \
            from None
    cases += [CaseFiles(case_id, images) for case_id, images in sorted(grouped.items())]
    if not cases:
        raise InputError("no input images found")
    return cases
