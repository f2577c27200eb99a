"""Two-stage coarse-to-fine segmentation of small structures (``versaseg cascade``).

Stage 1 is a normal versaseg run trained on a copy of the dataset resampled to a coarse voxel size
(``coarse_spacing`` mm; axes already coarser keep theirs), with the target structures merged into one region
(``stage1_classes="merged"``) or kept apart (``"all"``). Stage 2 is a normal run trained at the dataset's own
resolution on crops around each case's ground-truth structures plus ``margin_mm``; every face of the box is moved by a
random amount in ``[-jitter_mm, +jitter_mm]`` (``crops_per_case`` crops per case), so stage 2 learns on boxes like the
ones stage 1 will give it.

Prediction: stage 1 on the input resampled to its coarse grid -> foreground components kept by the ROI rule -> their
bounding box (in mm, mapped onto the input grid) plus the margin -> stage 2 on that crop -> labels pasted into a zero
volume with the input's geometry. If stage 1 finds nothing, a warning is issued and stage 2 runs on the whole volume.

A cascade run directory::

    RUN/cascade.json      settings, labels, channels; written last (its presence marks a finished run)
    RUN/stage1/           a normal run (config.json, model.pt, ...) on RUN/work/stage1_data
    RUN/stage2/           a normal run on RUN/work/stage2_data
    RUN/work/             the derived datasets (nnU-Net layout)

Both stage directories work with ``versaseg predict`` on their own (stage 1 expects coarse inputs, stage 2 crops).

Sizes: stage-1 grids are rounded up to a multiple of the stage-1 network's divisor (the grid stays centred on the
volume) and stage-2 boxes grow to a multiple of the stage-2 network's divisor where the volume allows; unless a
stage's ``patch_size`` is given, it is the smallest case (crop) size rounded down to the divisor. Training then never
pads a sample, and prediction never pads a volume, so both see the same borders.

This module composes the stages: the settings, ``cascade.json`` and the derived datasets are
:mod:`versaseg.training.cascade`, the two-stage prediction :mod:`versaseg.inference.cascade`, the box geometry
:mod:`versaseg.io.resample`, the run directory :func:`versaseg.io.run_dir.prepare_run_dir`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from versaseg.inference.cascade import CascadePredictor
from versaseg.io.dataset import load_dataset
from versaseg.io.run_dir import prepare_run_dir, resolve_device
from versaseg.training.cascade import CASCADE_RUN, CascadeInfo, CascadeSettings, build_derived_datasets, stage1_labels
from versaseg.training.config import TrainConfig

__all__ = ["CascadePredictor", "CascadeSettings", "predict_cascade", "train_cascade"]


def train_cascade(dataset_root: str | Path, out: str | Path, stage1: TrainConfig, stage2: TrainConfig,
                  settings: CascadeSettings | None = None, device: str = "auto", overwrite: bool = False,
                  show_progress: bool = True, log: Callable[[str], None] | None = None) -> Path:
    """Train both stages into ``out`` (see the module docstring); returns ``out``.

    ``stage1`` and ``stage2`` are templates of each stage's training settings (network, loss, epochs, ...); their
    ``train_cases``/``val_cases`` are set here so both stages hold out the same original cases (all crops of a case
    go to the same side). Raises :class:`InputError` for bad settings, a bad dataset or an occupied ``out``.
    """
    from versaseg.networks.registry import build_network
    from versaseg.tasks.training import train as run_training
    from versaseg.training.run import smallest_patch, split_cases

    settings = settings or CascadeSettings()
    settings.validate()
    divisors = []
    for config in (stage1, stage2):  # fail on a bad network or option before any data is derived
        config.validate()
        network = build_network(config.network, config.spatial_dims, 1, 2, **config.network_kwargs)
        divisors.append(int(getattr(network, "required_divisor", 1)))
    out, dataset_root = Path(out), Path(dataset_root)
    spec = load_dataset(dataset_root)
    case_ids = [c.case_id for c in spec.training_cases()]
    prepare_run_dir(out, resume=False, overwrite=overwrite, kind=CASCADE_RUN)
    say = log or (lambda _msg: None)
    say("building the stage datasets in " + str(out / "work"))
    derived = build_derived_datasets(dataset_root, out / "work", settings, stage1.seed, show_progress,
                                     (divisors[0], divisors[1]))
    crops = derived.crops
    train_ids, val_ids = split_cases(case_ids, stage1.val_fraction, stage1.seed)
    stage1 = dataclasses.replace(stage1, train_cases=list(train_ids), val_cases=list(val_ids),
                                 patch_size=list(stage1.patch_size) or smallest_patch(derived.stage1_shapes, stage1,
                                                                                      divisors[0]))
    stage2 = dataclasses.replace(stage2, train_cases=[c for i in train_ids for c in crops[i]],
                                 val_cases=[c for i in val_ids for c in crops[i]],
                                 patch_size=list(stage2.patch_size) or smallest_patch(derived.stage2_shapes, stage2,
                                                                                      divisors[1]))
    say("stage 1: coarse segmentation")
    run_training(stage1, derived.stage1_root, out / "stage1", device=device)
    say("stage 2: full resolution inside the region of interest")
    run_training(stage2, derived.stage2_root, out / "stage2", device=device)
    CascadeInfo(settings, dict(spec.labels), [spec.channel_names[i] for i in range(spec.num_channels)],
                stage1_labels(spec, settings.stage1_classes), derived.stage1_spacing, str(dataset_root),
                derived.stage2_crop_mm).save(out)
    return out


def predict_cascade(run_dir: str | Path, inputs: Sequence[str | Path], out_dir: str | Path, device: str = "auto",
                    roi: str | None = None, margin_mm: float | None = None, save_stage1: bool = False,
                    figures: bool = False, overwrite: bool = False, batch_size: int | None = None, tta: bool = False,
                    show_progress: bool = True) -> list[Path]:
    """Predict image files / folders / a dataset (its imagesTs) with a cascade run; see :class:`CascadePredictor`."""
    from versaseg.inference.predictor import collect_inputs

    predictor = CascadePredictor(run_dir, device=resolve_device(device), roi=roi, margin_mm=margin_mm,
                                 batch_size=batch_size, tta=tta)
    cases = collect_inputs(inputs, len(predictor.channel_names))
    return predictor.predict_to_folder(cases, out_dir, overwrite=overwrite, save_stage1=save_stage1, figures=figures,
                                       show_progress=show_progress)
