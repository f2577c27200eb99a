"""Evaluate predicted label maps against ground truth: two files, or two folders matched by case name.

For every case and class the metrics of :mod:`versaseg.evaluation.metrics` are computed (Dice, IoU, sensitivity,
precision, signed relative volume difference, HD95 and ASSD in mm from the voxel spacing), then aggregated per class
and metric over cases: mean, sample standard deviation, median (all skipping NaN = undefined values), ``n`` (cases)
and ``n_nan`` (cases where the value is undefined). The pseudo-class ``mean foreground`` holds, per case, the mean
over the classes with a defined value, and is aggregated the same way.

Folders: each ground-truth file with an image ending (``.nii.gz``, ``.nii``, ``.nrrd``, ``.nhdr``, ``.mha``,
``.mhd``) needs a prediction of the same case name (file name without the ending; the endings may differ). A missing
prediction is an error; extra predictions are ignored with a warning.

Labels: from a ``dataset.json`` (class names, and the ``ignore`` label whose voxels are excluded); without one, every
non-zero value found in any ground truth or prediction is a class named ``label_<value>``. Background (0) is not
reported.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from versaseg.data.case import embed_in_reference
from versaseg.errors import InputError
from versaseg.evaluation.metrics import METRICS, case_metrics, empty_metrics
from versaseg.io.atomic import check_writable, write_text_atomic
from versaseg.io.checks import check_label_set, check_same_geometry, label_values
from versaseg.io.dataset import IGNORE_NAME, parse_labels, read_json_object
from versaseg.io.image import IMAGE_ENDINGS, case_name, read_volume

MEAN_FOREGROUND = "mean foreground"
"""Name of the pseudo-class holding, per case, the mean over classes."""

STATISTICS = ("mean", "std", "median", "n", "n_nan")
UNITS = {"dice": "1", "iou": "1", "sensitivity": "1", "precision": "1", "rvd": "1", "hd95": "mm", "assd": "mm"}
LABEL_PREFIX = "label_"
"""Class names without a labels file: ``label_<value>``."""

CaseMetrics = dict[str, dict[str, float]]
"""class name -> metric name -> value."""


@dataclass
class EvaluationResult:
    """Per-case and aggregated metrics of one evaluation.

    ``cases``: case -> class -> metric -> value (NaN = undefined); ``classes``: evaluated class name -> label value
    (background excluded); ``aggregates``: class (and :data:`MEAN_FOREGROUND`) -> metric -> statistic -> value.
    """

    prediction: Path
    ground_truth: Path
    labels_json: Path | None
    classes: dict[str, int]
    ignore_label: int | None
    cases: dict[str, CaseMetrics]
    files: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    spacings: dict[str, tuple[float, ...]] = field(default_factory=dict)
    aggregates: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.aggregates:
            self.aggregates = aggregate(self.cases, list(self.classes))

    def to_json(self) -> dict:
        """A JSON-serialisable dict; undefined (NaN) values become ``null``."""
        return {
            "prediction": str(self.prediction),
            "ground_truth": str(self.ground_truth),
            "labels": None if self.labels_json is None else str(self.labels_json),
            "classes": self.classes,
            "ignore_label": self.ignore_label,
            "metrics": list(METRICS),
            "units": UNITS,
            "aggregates": _json_floats(self.aggregates),
            "cases": {
                case: {
                    "prediction": str(self.files[case][0]) if case in self.files else None,
                    "ground_truth": str(self.files[case][1]) if case in self.files else None,
                    "spacing": list(self.spacings.get(case, ())),
                    "metrics": _json_floats(metrics),
                }
                for case, metrics in self.cases.items()
            },
        }

    def write_json(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write :meth:`to_json` atomically; refuses to replace an existing file unless ``overwrite``."""
        path = check_writable(path, overwrite)
        write_text_atomic(path, json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")
        return path

    def csv_rows(self) -> list[tuple[str, str, int, str, float]]:
        """Long-format rows ``(case, class, label value, metric, value)``, one per case x class x metric."""
        return [
            (case, name, self.classes[name], metric, per_class[name][metric])
            for case, per_class in self.cases.items()
            for name in self.classes
            for metric in METRICS
        ]

    def write_csv(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write :meth:`csv_rows` with a header atomically (undefined values as ``nan``); refuses to replace an
        existing file unless ``overwrite``."""
        path = check_writable(path, overwrite)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["case", "class", "label", "metric", "value"])
        for case, name, value, metric, number in self.csv_rows():
            writer.writerow([case, name, value, metric, repr(float(number))])
        write_text_atomic(path, buffer.getvalue())
        return path

    def summary_table(self) -> str:
        """A plain-text table: one row per class (and mean foreground), ``mean±std`` per metric."""
        headers = ["class", "n", *(f"{m} [mm]" if UNITS[m] == "mm" else m for m in METRICS)]
        rows = []
        for name in [*self.classes, MEAN_FOREGROUND]:
            stats = self.aggregates[name]
            cells = [name, str(int(stats[METRICS[0]]["n"]))]
            for metric in METRICS:
                mean, std = stats[metric]["mean"], stats[metric]["std"]
                cell = "nan" if math.isnan(mean) else f"{mean:.3f}"
                if not math.isnan(mean) and not math.isnan(std):
                    cell += f"±{std:.3f}"
                if stats[metric]["n_nan"]:
                    cell += f" ({int(stats[metric]['n_nan'])} nan)"
                cells.append(cell)
            rows.append(cells)
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
        lines = [
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            for r in [headers, *rows]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(
            f"{len(self.cases)} case(s); mean±sample SD over cases, undefined values (nan) excluded and counted; "
            "rvd = (|P|-|G|)/|G|."
        )
        return "\n".join(lines)


def _json_floats(tree):
    if isinstance(tree, Mapping):
        return {k: _json_floats(v) for k, v in tree.items()}
    if isinstance(tree, float) and not math.isfinite(tree):
        return None
    return tree


def _statistics(values: Iterable[float]) -> dict[str, float]:
    values = np.asarray(list(values), dtype=float)
    defined = values[~np.isnan(values)]
    return {
        "mean": float(defined.mean()) if defined.size else math.nan,
        "std": float(defined.std(ddof=1)) if defined.size > 1 else math.nan,
        "median": float(np.median(defined)) if defined.size else math.nan,
        "n": int(values.size),
        "n_nan": int(values.size - defined.size),
    }


def aggregate(cases: Mapping[str, CaseMetrics], class_names: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Per class and metric: mean, sample std (ddof=1; NaN for fewer than two defined values), median, n, n_nan.

    Also :data:`MEAN_FOREGROUND`: per case the mean over classes with a defined value (NaN if none), aggregated alike.
    """
    result = {}
    for name in class_names:
        result[name] = {m: _statistics(cases[c][name][m] for c in cases) for m in METRICS}
    per_case_mean = {}
    for case, per_class in cases.items():
        means = {}
        for metric in METRICS:
            values = [per_class[name][metric] for name in class_names if not math.isnan(per_class[name][metric])]
            means[metric] = float(np.mean(values)) if values else math.nan
        per_case_mean[case] = means
    result[MEAN_FOREGROUND] = {m: _statistics(per_case_mean[c][m] for c in cases) for m in METRICS}
    return result


def load_labels(path: str | Path) -> tuple[dict[str, int], int | None]:
    """Foreground classes (name -> value, sorted by value, background and ignore excluded) and the ignore label
    from a ``dataset.json`` (or a folder holding one). Raises InputError naming the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "dataset.json"
    if not path.is_file():
        raise InputError("labels file not found (expected a dataset.json)", path)
    data = read_json_object(path)
    if "labels" not in data:
        raise InputError("missing key 'labels'", path)
    labels = parse_labels(data["labels"], path)
    classes = {k: v for k, v in sorted(labels.items(), key=lambda kv: kv[1]) if v != 0 and k != IGNORE_NAME}
    if not classes:
        raise InputError("labels hold no foreground class to evaluate", path)
    return classes, labels.get(IGNORE_NAME)


def _image_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or not path.name.lower().endswith(IMAGE_ENDINGS):
            continue
        name = case_name(path)
        if name in files:
            raise InputError(f"two files for case {name} ({files[name].name} and {path.name})", path)
        files[name] = path
    return files


def pair_cases(pred: str | Path, gt: str | Path) -> list[tuple[str, Path, Path]]:
    """``(case, prediction file, ground-truth file)`` for two files or two folders (matched by case name).

    Raises InputError for missing inputs, a file/folder mix, an empty ground-truth folder or a missing prediction;
    warns about predictions without ground truth.
    """
    pred, gt = Path(pred), Path(gt)
    if not gt.exists():
        raise InputError("ground truth not found", gt)
    if not pred.exists():
        raise InputError("prediction not found", pred)
    if pred.is_dir() != gt.is_dir():
        folder, other = (pred, gt) if pred.is_dir() else (gt, pred)
        raise InputError(f"is a folder but {other} is a file; give two files or two folders", folder)
    if not gt.is_dir():
        return [(case_name(gt), pred, gt)]
    gt_files = _image_files(gt)
    if not gt_files:
        raise InputError(f"no ground-truth files ending in {', '.join(IMAGE_ENDINGS)}", gt)
    pred_files = _image_files(pred)
    pairs = []
    for case, gt_file in gt_files.items():
        if case not in pred_files:
            raise InputError(f"prediction missing for ground-truth case {case}", pred / gt_file.name)
        pairs.append((case, pred_files[case], gt_file))
    extra = sorted(set(pred_files) - set(gt_files))
    if extra:
        shown = ", ".join(pred_files[c].name for c in extra[:5]) + (", ..." if len(extra) > 5 else "")
        warnings.warn(f"{pred}: ignoring {len(extra)} prediction(s) without ground truth: {shown}", stacklevel=2)
    return pairs


@dataclass
class CaseEvaluation:
    """The metrics of one case, the classes they cover (name -> value) and the voxel spacing in mm."""

    metrics: CaseMetrics
    classes: dict[str, int]
    spacing: tuple[float, ...]


def evaluate_case(
    pred_path: Path, gt_path: Path, classes: Mapping[str, int] | None, ignore_label: int | None
) -> CaseEvaluation:
    """Read one prediction/ground-truth pair, check it and compute its per-class metrics.

    ``classes`` None means "every non-zero value of either file, named ``label_<v>``". Raises InputError naming the
    file for a geometry mismatch, non-integer labels or label values that ``classes`` (plus background and ignore)
    does not define.
    """
    gt_volume = read_volume(gt_path)
    pred_volume = embed_in_reference(read_volume(pred_path), gt_volume)
    gt_volume = embed_in_reference(gt_volume, pred_volume)
    gt = label_values(gt_volume, "ground truth")
    pred = label_values(pred_volume, "prediction")
    check_same_geometry(pred_volume, gt_volume, "prediction")
    if classes is None:  # every value present; Slicer segment names where a segmentation names them
        values = np.union1d(np.unique(pred), np.unique(gt))
        names = {s.label_value: s.name for v in (pred_volume, gt_volume) for s in v.segments or ()}
        classes = {names.get(int(v), f"{LABEL_PREFIX}{int(v)}"): int(v) for v in values if v != 0}
    else:
        allowed = {0, *classes.values(), *(() if ignore_label is None else (ignore_label,))}
        for array, volume, what in ((gt, gt_volume, "ground truth"), (pred, pred_volume, "prediction")):
            check_label_set(array, allowed, volume, "the labels file's values", what)
    metrics = case_metrics(pred, gt, gt_volume.spacing, classes, ignore_label)
    return CaseEvaluation(metrics, dict(classes), gt_volume.spacing)


def _evaluate_star(args):
    return evaluate_case(*args)


def evaluate_paths(
    pred: str | Path,
    gt: str | Path,
    labels_json: str | Path | None = None,
    *,
    workers: int = 1,
    progress: bool = True,
) -> EvaluationResult:
    """Evaluate a prediction file/folder against a ground-truth file/folder.

    ``labels_json``: a ``dataset.json`` (or its folder) giving class names and the ignore label; without it every
    non-zero value found is a class ``label_<v>``. ``workers`` > 1 evaluates cases in a process pool. ``progress``
    shows a tqdm bar on stderr when it is a terminal. Raises InputError (naming the file) for any input problem.
    """
    from tqdm import tqdm

    pred, gt = Path(pred), Path(gt)
    classes, ignore_label = load_labels(labels_json) if labels_json is not None else (None, None)
    pairs = pair_cases(pred, gt)
    jobs = [(p, g, classes, ignore_label) for _, p, g in pairs]
    bar = tqdm(total=len(jobs), desc="evaluate", unit="case", disable=None if progress else True, leave=False)
    results = []
    try:
        if workers > 1 and len(jobs) > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
                for item in pool.map(_evaluate_star, jobs):
                    results.append(item)
                    bar.update()
        else:
            for job in jobs:
                results.append(evaluate_case(*job))
                bar.update()
    finally:
        bar.close()
    cases = {case: result.metrics for (case, _, _), result in zip(pairs, results, strict=True)}
    if classes is None:
        found = {}
        for result in results:
            found.update(result.classes)
        if not found:
            raise InputError("no foreground label in any ground truth or prediction; pass --dataset-json to name "
                             "classes", gt)
        classes = dict(sorted(found.items(), key=lambda kv: kv[1]))
        absent = empty_metrics()
        cases = {case: {name: metrics.get(name, dict(absent)) for name in classes} for case, metrics in cases.items()}
    return EvaluationResult(
        prediction=pred,
        ground_truth=gt,
        labels_json=None if labels_json is None else Path(labels_json),
        classes=dict(classes),
        ignore_label=ignore_label,
        cases=cases,
        files={case: (p, g) for case, p, g in pairs},
        spacings={case: result.spacing for (case, _, _), result in zip(pairs, results, strict=True)},
    )
