"""What a two-stage cascade trains on: its settings, ``RUN/cascade.json`` and the two derived datasets.

Stage 1 learns on a copy of the dataset resampled to a coarse voxel size, the target structures merged into one region
(``"merged"``) or kept apart (``"all"``); stage 2 learns at the dataset's own resolution on jittered crops around each
case's ground-truth structures (:func:`build_derived_datasets`). :mod:`versaseg.tasks.cascade` trains both.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from versaseg.data.case import load_case
from versaseg.errors import InputError
from versaseg.io.atomic import write_text_atomic
from versaseg.io.dataset import DatasetSpec, load_dataset
from versaseg.io.image import Volume, write_volume
from versaseg.io.resample import box_affine, crop_box, resample_to_spacing, round_box
from versaseg.io.run_dir import RunKind

STAGE1_CLASSES = ("merged", "all")
ROI_RULES = ("major", "all", "largest")  # see versaseg.inference.postprocess.select_components
MERGED_NAME = "target"
CASCADE_FILES = ("cascade.json", "stage1", "stage2", "work")
CASCADE_RUN = RunKind("cascade run", CASCADE_FILES, CASCADE_FILES, resumable=False)  # any of its files marks one


@dataclass
class CascadeSettings:
    """How the two stages are derived from the dataset; stored in ``RUN/cascade.json``.

    coarse_spacing: stage-1 voxel size in mm (isotropic; an axis whose voxels are already larger keeps its size).
    stage1_classes: ``"merged"`` (all target classes as one region) or ``"all"`` (the dataset's classes).
    margin_mm: margin added on every side of the region of interest (training crops and prediction).
    jitter_mm: training crops move each face of the box by a uniform random amount in ``[-jitter, +jitter]`` mm
        (never inside the ground-truth box); ``None`` = the stage-1 voxel size along that axis.
    crops_per_case: jittered stage-2 training crops per case.
    roi: the prediction-time rule for stage-1 components: ``"major"`` (components of at least 10 % of the largest
        one's size; keeps both sides of bilateral structures, drops specks), ``"all"`` or ``"largest"``.
    """

    coarse_spacing: float = 4.0
    stage1_classes: str = "merged"
    margin_mm: float = 12.0
    jitter_mm: float | None = None
    crops_per_case: int = 2
    roi: str = "major"

    def validate(self) -> None:
        if not self.coarse_spacing > 0:
            raise InputError(f"--coarse-spacing must be positive, got {self.coarse_spacing}")
        if self.stage1_classes not in STAGE1_CLASSES:
            raise InputError(f"unknown --stage1-classes '{self.stage1_classes}'; valid: {', '.join(STAGE1_CLASSES)}")
        if self.margin_mm < 0:
            raise InputError(f"--margin-mm must be >= 0, got {self.margin_mm}")
        if self.jitter_mm is not None and self.jitter_mm < 0:
            raise InputError(f"--jitter-mm must be >= 0, got {self.jitter_mm}")
        if self.crops_per_case < 1:
            raise InputError(f"--crops-per-case must be at least 1, got {self.crops_per_case}")
        check_roi_rule(self.roi)


def check_roi_rule(rule: str) -> str:
    """``rule`` if it is one of :data:`ROI_RULES`; InputError naming ``--roi`` otherwise."""
    if rule not in ROI_RULES:
        raise InputError(f"unknown --roi '{rule}'; valid: {', '.join(ROI_RULES)}")
    return rule


@dataclass
class CascadeInfo:
    """The content of ``RUN/cascade.json``."""

    settings: CascadeSettings
    labels: dict[str, int]
    channel_names: list[str]
    stage1_labels: dict[str, int]
    stage1_spacing: list[float] = field(default_factory=list)
    dataset: str = ""
    stage2_crop_mm: list[float] = field(default_factory=list)  # largest training crop per canonical axis (mm)

    def save(self, run_dir: Path) -> None:
        write_text_atomic(Path(run_dir) / "cascade.json", json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: str | Path) -> CascadeInfo:
        path = Path(run_dir) / "cascade.json"
        if not path.exists():
            raise InputError("cascade.json not found; is this a finished `versaseg cascade train` run?", path)
        try:
            data = json.loads(path.read_text())
            data["settings"] = CascadeSettings(**data["settings"])
            return cls(**data)
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise InputError(f"invalid cascade.json ({type(exc).__name__}: {exc})", path) from None


def stage1_spacing(spacing: Sequence[float], coarse: float) -> list[float]:
    """Stage-1 voxel size per axis: ``coarse`` mm, or the input's where that is already coarser."""
    return [float(max(s, coarse)) for s in spacing]


def stage1_labels(spec: DatasetSpec, mode: str) -> dict[str, int]:
    """Stage 1's label table: the dataset's (``"all"``) or background / target (/ ignore) (``"merged"``)."""
    if mode == "all":
        return dict(spec.labels)
    labels = {"background": 0, MERGED_NAME: 1}
    if spec.ignore_label is not None:
        labels["ignore"] = 2
    return labels


def _write_derived_dataset(root: Path, spec: DatasetSpec, labels: dict[str, int], description: str) -> None:
    for folder in ("imagesTr", "labelsTr"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    count = len(list((root / "labelsTr").glob("*.nii.gz")))
    DatasetSpec(root, dict(spec.channel_names), labels, ".nii.gz", count, {"description": description}).save()


def _write_case(root: Path, case_id: str, image: np.ndarray, label: np.ndarray, affine: np.ndarray) -> None:
    """Canonical ``image (C, X, Y, Z)`` and ``label (X, Y, Z)`` on the grid ``affine`` as one nnU-Net case."""
    for channel, data in enumerate(image):
        write_volume(root / "imagesTr" / f"{case_id}_{channel:04d}.nii.gz", data.astype(np.float32),
                     Volume(data, affine), overwrite=True)
    write_volume(root / "labelsTr" / f"{case_id}.nii.gz", label.astype(np.uint8 if label.max() < 256 else np.int16),
                 Volume(label, affine), overwrite=True)


def _target_mask(label: np.ndarray, ignore_label: int | None) -> np.ndarray:
    mask = label > 0
    if ignore_label is not None:
        mask &= label != ignore_label
    return mask


@dataclass
class DerivedData:
    """What :func:`build_derived_datasets` wrote: the two dataset roots, ``crops`` = {case id: [stage-2 crop ids]},
    the stage-1 median spacing, the (X, Y, Z) shapes of the stage-1 cases and the stage-2 crops, and the largest
    crop extent per axis in mm."""

    stage1_root: Path
    stage2_root: Path
    crops: dict[str, list[str]]
    stage1_spacing: list[float]
    stage1_shapes: list[tuple[int, int, int]]
    stage2_shapes: list[tuple[int, int, int]]
    stage2_crop_mm: list[float] = field(default_factory=list)


def build_derived_datasets(dataset_root: str | Path, work: str | Path, settings: CascadeSettings, seed: int = 0,
                           show_progress: bool = True, multiples: tuple[int, int] = (1, 1)) -> DerivedData:
    """Write ``work/stage1_data`` (coarse, merged or all classes) and ``work/stage2_data`` (jittered crops).

    ``multiples``: stage-1 grid sizes and stage-2 crop sizes are rounded up to these (the networks' divisors).
    """
    from versaseg.progress import progress

    spec = load_dataset(dataset_root)
    work = Path(work)
    stage1_root, stage2_root = work / "stage1_data", work / "stage2_data"
    labels1 = stage1_labels(spec, settings.stage1_classes)
    allowed = set(spec.labels.values())
    rng = np.random.default_rng(seed)
    crops: dict[str, list[str]] = {}
    spacings, shapes1, shapes2, extents = [], [], [], []
    for files in progress(spec.training_cases(), "derive stage data", "case", enabled=show_progress, leave=False):
        case = load_case(files, allowed)
        target = _target_mask(case.label, spec.ignore_label)
        # stage 1: coarse copy
        if settings.stage1_classes == "merged":
            label1 = target.astype(np.int16)
            if spec.ignore_label is not None:
                label1[case.label == spec.ignore_label] = labels1["ignore"]
        else:
            label1 = case.label
        spacing1 = stage1_spacing(case.spacing, settings.coarse_spacing)
        spacings.append(spacing1)
        image1, label1, affine1 = resample_to_spacing(case.image, case.affine, spacing1, label1, multiples[0])
        _write_case(stage1_root, case.case_id, image1, label1, affine1)
        shapes1.append(tuple(label1.shape))
        # stage 2: jittered crops around the ground truth
        jitter = np.asarray(spacing1 if settings.jitter_mm is None else [settings.jitter_mm] * 3, dtype=float)
        crops[case.case_id] = []
        for index in range(settings.crops_per_case):
            margins = settings.margin_mm + rng.uniform(-1.0, 1.0, (2, 3)) * jitter[None, :]
            box = crop_box(target, case.spacing, np.maximum(margins, 0.0))
            if box is None:  # no target structure in this case: the whole volume
                box = tuple(slice(0, n) for n in target.shape)
            box = round_box(box, target.shape, multiples[1])
            shapes2.append(tuple(b.stop - b.start for b in box))
            extents.append([(b.stop - b.start) * s for b, s in zip(box, case.spacing, strict=True)])
            crop_id = f"{case.case_id}_crop{index}"
            _write_case(stage2_root, crop_id, case.image[(slice(None), *box)], case.label[box],
                        box_affine(case.affine, box))
            crops[case.case_id].append(crop_id)
    _write_derived_dataset(stage1_root, spec, labels1, "versaseg cascade stage 1: coarse copy")
    _write_derived_dataset(stage2_root, spec, dict(spec.labels), "versaseg cascade stage 2: crops around the targets")
    return DerivedData(stage1_root, stage2_root, crops, [float(s) for s in np.median(spacings, axis=0)], shapes1,
                       shapes2, [float(e) for e in np.max(extents, axis=0)])
