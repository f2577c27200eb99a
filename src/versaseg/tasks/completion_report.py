"""What ``versaseg complete`` reports: the result of a completion and its JSON-able summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from versaseg.evaluation.slice_check import SliceVerdict
from versaseg.progress import StepTimer
from versaseg.tasks.completion_models import CompletionSettings


@dataclass
class CompletionResult:
    """labels: (X, Y, Z) in the input's stored axis order; report: JSON-able summary."""

    labels: np.ndarray
    report: dict


def verdict_rows(verdicts: Sequence[SliceVerdict], stored_slice: Callable[[int], int]) -> list[dict]:
    """One row per checked slice, in slice order; ``stored_slice`` maps a verdict's index to the stored index."""
    return [{"slice": stored_slice(v.index), "agreement": round(v.agreement, 4), "judged_wrong": v.judged_wrong,
             "voxels_corrected": v.voxels_corrected} for v in sorted(verdicts, key=lambda v: v.index)]


def extrapolated_fraction(dense: np.ndarray, slices: np.ndarray, ids: np.ndarray, values: np.ndarray) -> dict:
    """Per class (label value as a string): the share of its voxels in ``dense (S, H, W)`` that lie past the first or
    last annotated slice holding it (``slices (N, H, W)`` at ``ids``; class indices into ``values``)."""
    extrapolated = {}
    for k in range(1, len(values)):
        holding = ids[(slices == k).any(axis=(1, 2))]
        inside = np.zeros(dense.shape[0], bool)
        if len(holding):
            inside[holding[0]:holding[-1] + 1] = True
        total = int(np.sum(dense == k))
        extrapolated[str(int(values[k]))] = round(float(np.sum(dense[~inside] == k)) / max(1, total), 4)
    return extrapolated


def completion_report(annotation_axis: int, annotated_slices: list[int], values: np.ndarray, rows: list[dict],
                      cleansed: bool, started: float, timer: StepTimer, extrapolated: dict, suggested: list,
                      settings: CompletionSettings, planes: dict | None = None,
                      training_rows: int | None = None) -> dict:
    """The summary of one completion: stored annotation axis and slices, classes, the slice check (``rows`` from
    :func:`verdict_rows`; checked when there are any), time, extrapolation, suggestions and settings; ``planes``
    (stored axis -> slices) and ``training_rows`` for annotations on several planes."""
    report: dict = {"annotation_axis": annotation_axis}
    if planes is not None:
        report["planes"] = planes
    report.update({
        "annotated_slices": annotated_slices,
        "classes": [int(v) for v in values[1:]],
        "checked": bool(rows),
        "cleansed": bool(rows) and cleansed,
        "slices_judged_wrong": [{k: v for k, v in row.items() if k != "judged_wrong"} for row in rows
                                if row["judged_wrong"]],
        "slices": rows,
        "voxels_corrected": int(sum(row["voxels_corrected"] for row in rows)),
        "seconds": round(time.perf_counter() - started, 1),
        "time_split_s": timer.seconds,
        "extrapolated_fraction": extrapolated,
    })
    if training_rows is not None:
        report["training_rows"] = training_rows
    report.update({"suggested": suggested, "settings": settings.__dict__})
    return report
