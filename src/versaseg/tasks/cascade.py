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
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from versaseg.data.case import Case, load_case
from versaseg.errors import InputError
from versaseg.io.atomic import write_text_atomic
from versaseg.io.dataset import CaseFiles, DatasetSpec, load_dataset
from versaseg.io.image import Volume, file_ending, to_canonical, write_volume
from versaseg.io.resample import coarse_grid, resample_image, resample_label
from versaseg.training.config import TrainConfig

STAGE1_CLASSES = ("merged", "all")
ROI_RULES = ("major", "all", "largest")
MAJOR_FRACTION = 0.1  # 'major': components with at least this fraction of the largest component's voxels
CASCADE_FILES = ("cascade.json", "stage1", "stage2", "work")
MERGED_NAME = "target"
OVERSIZED_ROI = 1.5  # warn when the ROI is this many times the largest stage-2 training crop along an axis


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


# -- geometry helpers ----------------------------------------------------------------------------------------------
def canonical_affine(case: Case) -> np.ndarray:
    """The voxel -> RAS+ mm affine of ``case.image`` (canonical axis order)."""
    import nibabel.orientations as nio

    return case.reference.affine @ nio.inv_ornt_aff(case.orientation, case.reference.shape)


def case_from_arrays(case_id: str, image: np.ndarray, affine: np.ndarray, label: np.ndarray | None = None) -> Case:
    """A :class:`Case` from canonical arrays ``image (C, X, Y, Z)``, ``label (X, Y, Z)`` with ``affine``."""
    _, _, orientation = to_canonical(np.zeros((1, 1, 1), np.uint8), affine)
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    image = np.ascontiguousarray(image, dtype=np.float32)
    return Case(case_id, image, label, Volume(image[0], np.asarray(affine, float)), orientation, spacing)


def stage1_spacing(spacing: Sequence[float], coarse: float) -> list[float]:
    """Stage-1 voxel size per axis: ``coarse`` mm, or the input's where that is already coarser."""
    return [float(max(s, coarse)) for s in spacing]


def downsample_case(image: np.ndarray, affine: np.ndarray, spacing: Sequence[float], label: np.ndarray | None = None,
                    multiple: int = 1) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Resample canonical ``image (C, X, Y, Z)`` (linear) and ``label`` (one-hot linear) to ``spacing``.

    Returns ``(image, label, affine)`` of the coarse grid (same field of view, its size rounded up to a ``multiple``
    of voxels; see :func:`coarse_grid`).
    """
    shape, target = coarse_grid(image.shape[1:], affine, spacing, multiple)
    coarse = np.stack([resample_image(channel, affine, shape, target) for channel in image])
    coarse_label = None if label is None else resample_label(label, affine, shape, target)
    return coarse, coarse_label, target


def crop_box(mask: np.ndarray, spacing: Sequence[float], margin_mm: float | Sequence[float] | np.ndarray = 0.0
             ) -> tuple[slice, ...] | None:
    """The bounding box of ``mask`` (X, Y, Z) grown by ``margin_mm`` (per axis or per face) and clipped; or None.

    ``margin_mm``: one number, three (per axis) or an array (2, 3) of (low faces, high faces).
    """
    if not mask.any():
        return None
    coords = np.argwhere(mask)
    margins = np.broadcast_to(np.asarray(margin_mm, dtype=float), (2, 3))
    voxels = np.ceil(margins / np.asarray(spacing, dtype=float)[None, :] - 1e-6).astype(int)
    low = np.maximum(coords.min(0) - voxels[0], 0)
    high = np.minimum(coords.max(0) + 1 + voxels[1], mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))


def round_box(box: tuple[slice, ...], shape: Sequence[int], multiple: int) -> tuple[slice, ...]:
    """Grow ``box`` about its centre to a ``multiple`` of voxels per axis, shifted to stay inside ``shape`` (an axis
    shorter than that is taken whole)."""
    out = []
    for b, n in zip(box, shape, strict=True):
        length = b.stop - b.start
        target = min(-(-length // multiple) * multiple, int(n))
        start = min(max(b.start - (target - length) // 2, 0), int(n) - target)
        out.append(slice(int(start), int(start + target)))
    return tuple(out)


def smallest_patch(shapes: Sequence[Sequence[int]], config: TrainConfig, divisor: int) -> list[int]:
    """The smallest of ``shapes`` per axis (without the slicing axis for 2D), rounded down to ``divisor`` and capped
    at 256 (2D) / 96 (3D) like :func:`versaseg.training.run.default_patch_size`."""
    smallest = np.min(np.asarray(shapes), axis=0)
    cap = 256 if config.dim == "2d" else 96
    if config.dim == "2d":
        smallest = np.delete(smallest, config.axis)
    return [int(max(divisor, min(int(v), cap) // divisor * divisor)) for v in smallest]


def box_to_grid(box: tuple[slice, ...], affine: np.ndarray, shape: Sequence[int], target_affine: np.ndarray
                ) -> tuple[slice, ...]:
    """Map a voxel box of the grid ``affine`` onto the grid ``(shape, target_affine)``: every target voxel whose centre
    lies inside the box's physical extent (outer voxel faces), at least one voxel per axis, clipped."""
    corners = np.array([[b.start - 0.5 if c == 0 else b.stop - 0.5 for b, c in zip(box, bits, strict=True)]
                        for bits in np.ndindex(2, 2, 2)], dtype=float)
    world = corners @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]
    target = (world - np.asarray(target_affine)[:3, 3]) @ np.linalg.inv(np.asarray(target_affine)[:3, :3]).T
    low = np.clip(np.ceil(target.min(0) - 1e-6), 0, np.asarray(shape) - 1).astype(int)
    high = np.clip(np.floor(target.max(0) + 1e-6) + 1, low + 1, np.asarray(shape)).astype(int)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high, strict=True))


def select_components(mask: np.ndarray, rule: str) -> np.ndarray:
    """Keep the 26-connected components of ``mask`` that ``rule`` (:data:`ROI_RULES`) selects."""
    if rule == "all" or not mask.any():
        return mask
    components, count = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(components.ravel())[1:]
    if rule == "largest":
        keep = [int(np.argmax(sizes)) + 1]
    else:
        keep = [i + 1 for i, size in enumerate(sizes) if size >= MAJOR_FRACTION * sizes.max()]
    return np.isin(components, keep)


# -- training ------------------------------------------------------------------------------------------------------
def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputError("cascade run directory exists and is not empty; pass --overwrite to replace it", out)
        if not any((out / name).exists() for name in CASCADE_FILES):
            raise InputError("refusing to --overwrite a non-empty folder that is not a versaseg cascade run", out)
        for name in CASCADE_FILES:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _stage1_labels(spec: DatasetSpec, mode: str) -> dict[str, int]:
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
    stage1_labels = _stage1_labels(spec, settings.stage1_classes)
    allowed = set(spec.labels.values())
    rng = np.random.default_rng(seed)
    crops: dict[str, list[str]] = {}
    spacings, shapes1, shapes2, extents = [], [], [], []
    for files in progress(spec.training_cases(), "derive stage data", "case", enabled=show_progress, leave=False):
        case = load_case(files, allowed)
        affine = canonical_affine(case)
        target = _target_mask(case.label, spec.ignore_label)
        # stage 1: coarse copy
        if settings.stage1_classes == "merged":
            label1 = target.astype(np.int16)
            if spec.ignore_label is not None:
                label1[case.label == spec.ignore_label] = stage1_labels["ignore"]
        else:
            label1 = case.label
        spacing1 = stage1_spacing(case.spacing, settings.coarse_spacing)
        spacings.append(spacing1)
        image1, label1, affine1 = downsample_case(case.image, affine, spacing1, label1, multiples[0])
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
            start = np.array([b.start for b in box], dtype=float)
            crop_affine = affine.copy()
            crop_affine[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
            crop_id = f"{case.case_id}_crop{index}"
            _write_case(stage2_root, crop_id, case.image[(slice(None), *box)], case.label[box], crop_affine)
            crops[case.case_id].append(crop_id)
    _write_derived_dataset(stage1_root, spec, stage1_labels, "versaseg cascade stage 1: coarse copy")
    _write_derived_dataset(stage2_root, spec, dict(spec.labels), "versaseg cascade stage 2: crops around the targets")
    return DerivedData(stage1_root, stage2_root, crops, [float(s) for s in np.median(spacings, axis=0)], shapes1,
                       shapes2, [float(e) for e in np.max(extents, axis=0)])


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
    from versaseg.training.run import split_cases

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
    _prepare_out(out, overwrite)
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
                _stage1_labels(spec, settings.stage1_classes), derived.stage1_spacing, str(dataset_root),
                derived.stage2_crop_mm).save(out)
    return out


# -- prediction ----------------------------------------------------------------------------------------------------
@dataclass
class CascadePrediction:
    """One case through both stages, in the case's canonical (RAS+) order as ``case.image`` holds it:
    canonical_labels (X, Y, Z) int16; canonical_roi: the stage-2 box (the whole volume after a fallback);
    canonical_stage1: stage-1 foreground on the input grid; fallback: stage 1 found nothing; oversized: the ROI is
    more than :data:`OVERSIZED_ROI` times the largest training crop along some axis (stage 1 found structures far
    apart: likely false positives). ``labels``, ``stage1`` and ``roi`` are the same in the case's original axis
    order (what is written to files)."""

    case: Case
    canonical_labels: np.ndarray
    canonical_roi: tuple[slice, ...]
    canonical_stage1: np.ndarray
    fallback: bool
    stage1_voxels: int
    oversized: bool = False

    @functools.cached_property
    def labels(self) -> np.ndarray:
        return self.case.to_original(self.canonical_labels)

    @functools.cached_property
    def stage1(self) -> np.ndarray:
        return self.case.to_original(self.canonical_stage1)

    @functools.cached_property
    def roi(self) -> tuple[slice, ...]:
        return crop_box(self.case.to_original(_box_mask(self.canonical_roi, self.case.spatial_shape)), np.ones(3))

    def roi_record(self) -> dict:
        return {"case": self.case.case_id, "roi_start": [s.start for s in self.roi],
                "roi_stop": [s.stop for s in self.roi], "fallback_whole_volume": self.fallback,
                "stage1_coarse_voxels": self.stage1_voxels, "roi_larger_than_training_crops": self.oversized,
                "roi_fraction": float(np.prod([s.stop - s.start for s in self.roi]) / self.labels.size)}


class CascadePredictor:
    """Loads a cascade run (``cascade.json``, ``stage1/``, ``stage2/``) and predicts cases."""

    def __init__(self, run_dir: str | Path, device="cpu", roi: str | None = None, margin_mm: float | None = None,
                 batch_size: int | None = None, tta: bool = False):
        from versaseg.inference.predictor import Predictor

        self.run_dir = Path(run_dir)
        self.info = CascadeInfo.load(self.run_dir)
        self.roi = check_roi_rule(roi or self.info.settings.roi)
        self.margin_mm = self.info.settings.margin_mm if margin_mm is None else float(margin_mm)
        if self.margin_mm < 0:
            raise InputError(f"--margin-mm must be >= 0, got {self.margin_mm}")
        self.stage1 = Predictor(self.run_dir / "stage1", device=device, batch_size=batch_size, tta=tta)
        self.stage2 = Predictor(self.run_dir / "stage2", device=device, batch_size=batch_size, tta=tta)
        self.channel_names = self.stage2.config.channel_names
        self.ignore_label = self.stage2.config.ignore_label
        self.stage1_multiple = int(getattr(self.stage1.network, "required_divisor", 1))
        self.stage2_multiple = int(getattr(self.stage2.network, "required_divisor", 1))

    def stage1_foreground(self, case: Case, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1 on the coarse copy of ``case``: ``(foreground (X', Y', Z') bool, coarse affine)``, canonical."""
        spacing = stage1_spacing(case.spacing, self.info.settings.coarse_spacing)
        image, _, coarse_affine = downsample_case(case.image, affine, spacing, multiple=self.stage1_multiple)
        coarse = case_from_arrays(case.case_id, image, coarse_affine)
        labels = self.stage1.predict_case(coarse).labels
        return labels > 0, coarse_affine

    def check_roi_size(self, case: Case, box: tuple[slice, ...]) -> bool:
        """Warn (and return True) when ``box`` (canonical) exceeds the largest stage-2 training crop by more than
        :data:`OVERSIZED_ROI` along an axis: stage 2 then sees far more than it learned on."""
        crop_mm = self.info.stage2_crop_mm
        if not crop_mm:  # a run from before the crop sizes were recorded
            return False
        extent = [(b.stop - b.start) * s for b, s in zip(box, case.spacing, strict=True)]
        if all(e <= OVERSIZED_ROI * c for e, c in zip(extent, crop_mm, strict=True)):
            return False
        warnings.warn(f"case {case.case_id}: the region of interest ({' x '.join(f'{e:.0f}' for e in extent)} mm) is "
                      f"over {OVERSIZED_ROI:g}x the largest stage-2 training crop "
                      f"({' x '.join(f'{c:.0f}' for c in crop_mm)} mm): stage 1 found structures far apart, likely "
                      "false positives (an undertrained stage 1?); check --figures or --save-stage1", stacklevel=2)
        return True

    def predict_case(self, case: Case) -> CascadePrediction:
        """Both stages on one loaded case; outputs are mapped back to the case's original orientation."""
        affine = canonical_affine(case)
        foreground, coarse_affine = self.stage1_foreground(case, affine)
        selected = select_components(foreground, self.roi)
        box1 = crop_box(selected, np.ones(3))
        shape = case.spatial_shape
        if box1 is None:
            warnings.warn(f"case {case.case_id}: stage 1 found no target structure; running stage 2 on the whole "
                          "volume", stacklevel=2)
            box = tuple(slice(0, n) for n in shape)
        else:
            box = box_to_grid(box1, coarse_affine, shape, affine)
            box = crop_box(_box_mask(box, shape), case.spacing, self.margin_mm)
            box = round_box(box, shape, self.stage2_multiple)
        oversized = box1 is not None and self.check_roi_size(case, box)
        start = np.array([b.start for b in box], dtype=float)
        crop_affine = affine.copy()
        crop_affine[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
        crop = case_from_arrays(case.case_id, case.image[(slice(None), *box)], crop_affine)
        labels = np.zeros(shape, np.int16)
        labels[box] = self.stage2.predict_case(crop).labels
        stage1_full = resample_label(foreground.astype(np.int16), coarse_affine, shape, affine, "nearest")
        return CascadePrediction(case, labels, box, stage1_full, box1 is None, int(foreground.sum()), oversized)

    def predict_to_folder(self, cases: Sequence[CaseFiles], out_dir: str | Path, overwrite: bool = False,
                          save_stage1: bool = False, figures: bool = False, show_progress: bool = True) -> list[Path]:
        """Predict every case into ``out_dir/CASE<ending>`` (input geometry) and write ``out_dir/cascade_rois.json``
        (per case: the stage-2 box in the input's voxel indices, whether stage 2 fell back to the whole volume);
        with ``save_stage1`` also ``out_dir/CASE_stage1<ending>`` (stage-1 foreground on the input grid); with
        ``figures`` also ``out_dir/figures/CASE.png`` (:func:`versaseg.viz.cascade.cascade_figure`: stage 1's region,
        the ROI and the labels inside it, with the case's label file as ground truth when it has one).

        All output paths are checked before any work.
        """
        from versaseg.progress import progress

        out_dir = Path(out_dir)
        plans = []
        for files in cases:
            if len(files.images) != len(self.channel_names):
                raise InputError(f"case {files.case_id} has {len(files.images)} channel file(s), the model expects "
                                 f"{len(self.channel_names)} ({', '.join(self.channel_names)})", files.images[0])
            ending = file_ending(files.images[0]) or ".nii.gz"
            outputs = [out_dir / f"{files.case_id}{ending}"]
            if save_stage1:
                outputs.append(out_dir / f"{files.case_id}_stage1{ending}")
            if figures:
                outputs.append(out_dir / "figures" / f"{files.case_id}.png")
            plans.append((files, outputs))
        for path in [p for _, outputs in plans for p in outputs] + [out_dir / "cascade_rois.json"]:
            if path.exists() and not overwrite:
                raise InputError("output exists; pass --overwrite to replace it", path)
        written, records = [], []
        for files, outputs in progress(plans, "cascade predict", "case", enabled=show_progress):
            prediction = self.predict_case(load_case(files))
            written.append(write_volume(outputs[0], prediction.labels, prediction.case.reference, overwrite=True))
            if save_stage1:
                write_volume(outputs[1], prediction.stage1.astype(np.uint8), prediction.case.reference,
                             overwrite=True)
            if figures:
                outputs[-1].parent.mkdir(parents=True, exist_ok=True)
                self.figure(prediction, outputs[-1])
            records.append(prediction.roi_record())
        write_text_atomic(out_dir / "cascade_rois.json", json.dumps({"cases": records}, indent=2) + "\n")
        return written

    def figure(self, prediction: CascadePrediction, out_png: str | Path) -> Path:
        """:func:`versaseg.viz.cascade.cascade_figure` of one prediction over its first channel (canonical order)."""
        from versaseg.viz.cascade import cascade_figure

        case = prediction.case
        note = "stage 1 found nothing: stage 2 ran on the whole volume" if prediction.fallback else (
            f"ROI {prediction.roi_record()['roi_fraction'] * 100:.1f} % of the volume")
        if prediction.oversized:
            note += "; far larger than the training crops: check stage 1"
        names = {value: name for name, value in self.info.labels.items() if value > 0 and name != "ignore"}
        truth = case.label
        if truth is not None and self.ignore_label is not None:
            truth = np.where(truth == self.ignore_label, 0, truth)
        return cascade_figure(case.image[0], prediction.canonical_stage1, prediction.canonical_roi,
                              prediction.canonical_labels, out_png, truth=truth, spacing=case.spacing,
                              class_names=names, title=f"{case.case_id}: cascade ({note})")


def _box_mask(box: tuple[slice, ...], shape: Sequence[int]) -> np.ndarray:
    mask = np.zeros(tuple(shape), bool)
    mask[box] = True
    return mask


def predict_cascade(run_dir: str | Path, inputs: Sequence[str | Path], out_dir: str | Path, device: str = "auto",
                    roi: str | None = None, margin_mm: float | None = None, save_stage1: bool = False,
                    figures: bool = False, overwrite: bool = False, batch_size: int | None = None, tta: bool = False,
                    show_progress: bool = True) -> list[Path]:
    """Predict image files / folders / a dataset (its imagesTs) with a cascade run; see :class:`CascadePredictor`."""
    from versaseg.inference.predictor import collect_inputs
    from versaseg.io.run_dir import resolve_device

    predictor = CascadePredictor(run_dir, device=resolve_device(device), roi=roi, margin_mm=margin_mm,
                                 batch_size=batch_size, tta=tta)
    cases = collect_inputs(inputs, len(predictor.channel_names))
    return predictor.predict_to_folder(cases, out_dir, overwrite=overwrite, save_stage1=save_stage1, figures=figures,
                                       show_progress=show_progress)
