"""Which loss for my data? Train every listed loss under identical settings and seeds, evaluate every held-out case,
and compare the losses with paired statistics.

For each loss and each fold: :func:`versaseg.training.run.train` on the fold's training cases, prediction of its test
cases with :class:`versaseg.inference.predictor.Predictor`, per-class Dice, HD95, ASSD and sensitivity
(:func:`versaseg.evaluation.evaluate.evaluate_case`). A finished run leaves ``evaluation.json`` in its folder and is
reused; a run killed mid-training resumes from its checkpoint, so a killed study continues where it stopped.

Statistics, per class and metric, over the test cases (paired by case): a two-sided Wilcoxon signed-rank test
(``scipy.stats.wilcoxon``) for every pair of losses. A loss *beats* another when p < 0.05 and its median paired
difference is in the better direction (higher Dice/sensitivity, lower HD95/ASSD). The **significance score** of a
loss for a class and metric is the number of losses it beats; the **rank score** is its rank by mean value (1 = best,
ties averaged) averaged over classes and metrics.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from versaseg.errors import InputError
from versaseg.io.atomic import check_output_folder, write_text_atomic

DEFAULT_LOSSES = ("ce", "ce_inverse", "ce_median", "ce_focal", "ce_dtm", "ce_dpt",
                  "dice", "dice_inverse", "dice_median", "dice_focal", "dice_dtm", "dice_dpt")
METRICS = ("dice", "hd95", "assd", "sensitivity")
LOWER_IS_BETTER = frozenset({"hd95", "assd"})
ALPHA = 0.05


@dataclass
class StudySettings:
    """What to train. ``folds`` (K-fold cross-validation) or ``test_split`` (one split) chooses the test cases."""

    losses: list[str] = field(default_factory=lambda: list(DEFAULT_LOSSES))
    classes: list[str] | None = None
    folds: int | None = None
    test_split: float | None = 0.3
    epochs: int = 20
    iterations: int = 25
    batch_size: int = 0
    network: str = "unet"
    network_kwargs: dict = field(default_factory=lambda: {"depth": 4, "base_width": 16})
    dim: str = "2d"
    axis: int = 2
    seed: int = 0
    device: str = "auto"


def case_splits(case_ids: Sequence[str], folds: int | None, test_split: float | None,
                seed: int) -> list[tuple[list[str], list[str]]]:
    """(train, test) case lists: K interleaved folds of a seeded permutation, or one split with ``test_split``."""
    ids = sorted(case_ids)
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    if folds is not None:
        if not 2 <= folds <= len(ids):
            raise InputError(f"--folds must be between 2 and the number of cases ({len(ids)}), got {folds}")
        tests = [sorted(order[k::folds]) for k in range(folds)]
    else:
        if test_split is None or not 0 < test_split < 1:
            raise InputError(f"--test-split must be in (0, 1), got {test_split}")
        n_test = min(max(1, round(test_split * len(ids))), len(ids) - 1)
        if len(ids) < 2:
            raise InputError("the dataset needs at least 2 training cases for a train/test split")
        tests = [sorted(order[:n_test])]
    return [([i for i in ids if i not in test], test) for test in tests]


def run_study(dataset: str | Path, out: str | Path, settings: StudySettings,
              progress: Callable[[str], None] = print, overwrite: bool = False) -> dict:
    """Train, evaluate and compare; writes ``out`` (see :func:`write_outputs`) and returns the summary dict.

    An existing study folder resumes (finished runs reused); ``overwrite`` starts it again from nothing.
    """
    from versaseg.io.dataset import load_dataset
    from versaseg.losses.registry import available_losses

    dataset, out = Path(dataset), Path(out)
    spec = load_dataset(dataset)
    unknown = [name for name in settings.losses if name not in available_losses()]
    if unknown:
        raise InputError(f"unknown loss(es) {unknown}; valid: {', '.join(available_losses())}")
    if len(settings.losses) < 2:
        raise InputError("--losses needs at least two losses to compare")
    class_names = [n for n, _ in sorted(spec.labels.items(), key=lambda kv: kv[1]) if n not in ("background",
                                                                                                "ignore")]
    classes = settings.classes or class_names
    missing = [c for c in classes if c not in class_names]
    if missing:
        raise InputError(f"--classes {missing} are not in dataset.json; valid: {', '.join(class_names)}",
                         dataset / "dataset.json")
    files = {f.case_id: f for f in spec.training_cases()}
    splits = case_splits(list(files), settings.folds, settings.test_split, settings.seed)
    study_json = out / "study.json"
    check_output_folder(out)
    if overwrite and out.exists():
        if not study_json.exists() and any(out.iterdir()):
            raise InputError("--overwrite would delete a folder that is not a study folder (no study.json)", out)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"dataset": str(dataset), "settings": asdict(settings), "splits": splits}
    if study_json.exists():
        previous = json.loads(study_json.read_text())
        if previous.get("splits") != [list(map(list, s)) for s in splits] or previous["settings"] | {
                "losses": settings.losses, "classes": settings.classes} != config["settings"]:
            raise InputError("the study folder holds a study with other settings; use another --out or pass "
                             "--overwrite to start again", study_json)
    write_text_atomic(study_json, json.dumps(config, indent=2) + "\n")

    rows: list[dict] = []
    total = len(settings.losses) * len(splits)
    for number, (loss, (fold, (train_ids, test_ids))) in enumerate(
            ((loss, split) for loss in settings.losses for split in enumerate(splits)), 1):
        run_dir = out / "runs" / loss / f"fold{fold}"
        evaluation = run_dir / "evaluation.json"
        if not evaluation.exists():
            progress(f"[{number}/{total}] {loss}, fold {fold}: training on {len(train_ids)} cases")
            _train_and_evaluate(dataset, run_dir, loss, train_ids, [files[i] for i in test_ids], spec, settings)
        else:
            progress(f"[{number}/{total}] {loss}, fold {fold}: done before, reused")
        per_case = json.loads(evaluation.read_text())
        for case, metrics in per_case.items():
            for name in classes:
                for metric in METRICS:
                    value = metrics[name][metric]
                    rows.append({"loss": loss, "fold": fold, "case": case, "class": name, "metric": metric,
                                 "value": math.nan if value is None else float(value)})
    summary = compare(rows, settings.losses, classes)
    write_outputs(out, rows, summary, settings.losses, classes)
    return summary


def _train_and_evaluate(dataset: Path, run_dir: Path, loss: str, train_ids: list[str], test_files: list,
                        spec, settings: StudySettings) -> None:
    from versaseg.data.case import load_case
    from versaseg.evaluation.metrics import case_metrics
    from versaseg.inference.predictor import Predictor
    from versaseg.io.run_dir import resolve_device
    from versaseg.tasks.training import train
    from versaseg.training.config import TrainConfig

    config = TrainConfig(network=settings.network, network_kwargs=dict(settings.network_kwargs), dim=settings.dim,
                         axis=settings.axis, epochs=settings.epochs, iterations_per_epoch=settings.iterations,
                         batch_size=settings.batch_size, loss=loss, seed=settings.seed, val_fraction=0.0,
                         train_cases=sorted(train_ids))
    resume = (run_dir / "checkpoint.pt").exists()
    device = resolve_device(settings.device)  # once: training and prediction on the same device
    train(config, dataset, run_dir, resume=resume, overwrite=not resume, device=device)
    predictor = Predictor(run_dir, device=device)
    classes = {name: value for name, value in spec.labels.items() if name not in ("background", "ignore")}
    results = {}
    for files in test_files:
        case = load_case(files, set(spec.labels.values()))
        labels = predictor.predict_case(case).labels
        truth = case.to_original(case.label)
        metrics = case_metrics(labels, truth, case.reference.spacing, classes, spec.ignore_label)
        results[files.case_id] = {name: {m: _finite(getattr(metrics[name], m, None) if not isinstance(
            metrics[name], dict) else metrics[name].get(m)) for m in METRICS} for name in classes}
    write_text_atomic(run_dir / "evaluation.json", json.dumps(results, indent=2) + "\n")


def _finite(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def compare(rows: list[dict], losses: Sequence[str], classes: Sequence[str]) -> dict:
    """Means, pairwise Wilcoxon p-values, significance and rank scores (see the module docstring)."""
    from scipy import stats

    table = {(r["loss"], r["class"], r["metric"], r["fold"], r["case"]): r["value"] for r in rows}
    cases = sorted({(r["fold"], r["case"]) for r in rows})
    summary: dict = {"alpha": ALPHA, "metrics": list(METRICS), "classes": list(classes), "losses": {}}
    ranks = {loss: [] for loss in losses}
    for loss in losses:
        summary["losses"][loss] = {"mean": {}, "significance": {}, "beats": {}}
    for name in classes:
        for metric in METRICS:
            values = {loss: np.array([table.get((loss, name, metric, f, c), np.nan) for f, c in cases])
                      for loss in losses}
            means = {loss: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for loss, v in values.items()}
            sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
            order = np.array([sign * (means[loss] if np.isfinite(means[loss]) else -np.inf * sign) for loss in losses])
            rank = stats.rankdata(-order)  # 1 = best
            for loss, r in zip(losses, rank, strict=True):
                ranks[loss].append(float(r))
            for a in losses:
                beaten = []
                for b in losses:
                    if a == b:
                        continue
                    ok = np.isfinite(values[a]) & np.isfinite(values[b])
                    diff = sign * (values[a][ok] - values[b][ok])
                    if len(diff) < 2 or np.all(diff == 0):
                        continue
                    p = float(stats.wilcoxon(values[a][ok], values[b][ok]).pvalue)
                    if p < ALPHA and np.median(diff) > 0:
                        beaten.append(b)
                entry = summary["losses"][a]
                key = f"{name}/{metric}"
                entry["mean"][key] = means[a]
                entry["significance"][key] = len(beaten)
                entry["beats"][key] = beaten
    for loss in losses:
        entry = summary["losses"][loss]
        entry["significance_score"] = int(sum(entry["significance"].values()))
        entry["rank_score"] = float(np.mean(ranks[loss]))
    summary["cases"] = len(cases)
    return summary


def write_outputs(out: Path, rows: list[dict], summary: dict, losses: Sequence[str], classes: Sequence[str]) -> None:
    """results.csv (long format), summary.json, summary.md and plots/box_<class>_<metric>.png."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["loss", "fold", "case", "class", "metric", "value"])
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "results.csv", buffer.getvalue())
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, allow_nan=True) + "\n")
    write_text_atomic(out / "summary.md", markdown_summary(summary, losses, classes))
    _box_plots(out / "plots", rows, losses, classes)


def markdown_summary(summary: dict, losses: Sequence[str], classes: Sequence[str]) -> str:
    ordered = sorted(losses, key=lambda loss: summary["losses"][loss]["rank_score"])
    lines = [f"Loss study over {summary['cases']} test cases. Mean per class and metric; in brackets the "
             f"significance score (losses beaten, Wilcoxon signed-rank p < {ALPHA}). Sorted by rank score "
             "(mean rank over classes and metrics, 1 = best).", ""]
    header = [f"{c} {m}" for c in classes for m in METRICS]
    lines.append("| loss | rank score | significance score | " + " | ".join(header) + " |")
    lines.append("|---" * (len(header) + 3) + "|")
    for loss in ordered:
        entry = summary["losses"][loss]
        cells = []
        for c in classes:
            for m in METRICS:
                key = f"{c}/{m}"
                value = entry["mean"][key]
                digits = 1 if m in LOWER_IS_BETTER else 3
                cells.append(f"{value:.{digits}f} ({entry['significance'][key]})" if np.isfinite(value) else "–")
        lines.append(f"| {loss} | {entry['rank_score']:.2f} | {entry['significance_score']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _box_plots(folder: Path, rows: list[dict], losses: Sequence[str], classes: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from versaseg.viz.overlays import save_figure

    folder.mkdir(parents=True, exist_ok=True)
    for name in classes:
        for metric in METRICS:
            data = [[r["value"] for r in rows if r["loss"] == loss and r["class"] == name and r["metric"] == metric
                     and np.isfinite(r["value"])] for loss in losses]
            figure, axes = plt.subplots(figsize=(max(6, 0.6 * len(losses)), 3.5))
            axes.boxplot(data, showmeans=True)
            axes.set_xticks(range(1, len(losses) + 1), losses, rotation=45, ha="right")
            axes.set_ylabel(f"{metric}{' (mm)' if metric in LOWER_IS_BETTER else ''}")
            axes.set_title(f"{name}: {metric} per test case")
            figure.tight_layout()
            save_figure(figure, folder / f"box_{name}_{metric}.png")
            plt.close(figure)
