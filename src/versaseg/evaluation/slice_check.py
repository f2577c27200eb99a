"""The slice check of label completion: annotated slices judged against predictions of models that did not train on
them.

Annotations are slice-first: ``(N, H, W)`` class indices of the N annotated slices, at indices ``ids (N,)`` along the
annotation axis of the working region. A held-out prediction that disagrees with its slice far more than the others
do marks the slice as probably wrong; :func:`find_wrong_slices` corrects such slices one at a time (a wrong slice
spoils its neighbours' priors too, so the rest are checked again after each correction).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class SliceVerdict:
    """One annotated slice checked against a model that did not train on it. Maps are (H, W) in the working region."""

    index: int
    agreement: float
    judged_wrong: bool
    voxels_corrected: int
    predicted: np.ndarray
    confident: np.ndarray
    mismatch: int = 0  # foreground voxels of either map labelled differently
    union: int = 0  # foreground voxels of either map


def slice_agreement(annotation: np.ndarray, prediction: np.ndarray) -> float:
    """Foreground voxels labelled alike / foreground voxels of either map (1.0 when both are empty): a multi-class
    overlap dominated by the large structures, which a held-out model predicts reliably."""
    union = (annotation > 0) | (prediction > 0)
    if not union.any():
        return 1.0
    return float(np.sum(union & (annotation == prediction)) / np.sum(union))


def judge_slices(annotations: np.ndarray, ids: np.ndarray, held_out: Sequence[int], predicted: np.ndarray,
                 confident: np.ndarray) -> list[SliceVerdict]:
    """Verdicts (not yet judged) on the annotated slices ``held_out`` (positions into ``annotations (N, H, W)``)
    from their held-out ``predicted (len(held_out), H, W)`` labels and ``confident`` (same shape, bool) voxels."""
    verdicts = []
    for j, n in enumerate(held_out):
        union = (annotations[n] > 0) | (predicted[j] > 0)
        mismatch = int(np.sum(union & (annotations[n] != predicted[j])))
        verdicts.append(SliceVerdict(int(ids[n]), slice_agreement(annotations[n], predicted[j]), False, 0,
                                     predicted[j], confident[j], mismatch, int(union.sum())))
    return verdicts


def outliers(verdicts: list[SliceVerdict]) -> list[SliceVerdict]:
    """Slices whose held-out disagreement stands out: mismatched voxels, in units of the typical slice's foreground
    area (so small slices at a structure's end, which are hard to predict but carry few voxels, do not stand out),
    above the median by 3 robust standard deviations (MAD, at least 0.05) and above twice the median."""
    unions = np.array([v.union for v in verdicts if v.union > 0])
    typical = float(np.median(unions)) if len(unions) else 1.0
    errors = np.array([v.mismatch for v in verdicts]) / typical
    median = float(np.median(errors))
    mad = float(np.median(np.abs(errors - median))) * 1.4826
    cutoff = max(median + 3 * max(mad, 0.05), 2 * median)
    return [v for v, e in zip(verdicts, errors, strict=True) if e > cutoff]


def find_wrong_slices(annotations: np.ndarray, ids: np.ndarray, check: Callable[[np.ndarray], list[SliceVerdict]],
                      cleanse: bool) -> tuple[np.ndarray, list[SliceVerdict]]:
    """Flag the worst outlier, correct its confidently contradicted voxels in a working copy, re-check every slice
    with ``check(working (N, H, W))`` and repeat (at most N // 2 times) until no slice stands out.

    The first and last annotated slice have neighbours on one side only: they are checked and reported but never
    judged wrong. Returns the annotations to keep (the corrected copy with ``cleanse``, else ``annotations``) and the
    final verdicts, with ``judged_wrong``, ``voxels_corrected`` (against the kept annotations) and, for a slice
    judged wrong, the agreement of its original annotation.
    """
    flagged: set[int] = set()
    working = annotations.copy()
    verdicts = check(working)
    for _ in range(len(ids) // 2):
        candidates = [v for v in outliers(verdicts) if ids[0] < v.index < ids[-1] and v.index not in flagged]
        if not candidates:
            break
        worst = max(candidates, key=lambda v: v.mismatch)
        flagged.add(worst.index)
        n = int(np.flatnonzero(ids == worst.index)[0])
        fix = worst.confident & (worst.predicted != annotations[n])
        working[n][fix] = worst.predicted[fix]
        verdicts = check(working)
    kept = working if cleanse else annotations.copy()
    for v in verdicts:
        v.judged_wrong = v.index in flagged
        n = int(np.flatnonzero(ids == v.index)[0])
        v.voxels_corrected = int(np.sum(kept[n] != annotations[n]))
        v.agreement = slice_agreement(annotations[n], v.predicted) if v.judged_wrong else v.agreement
    return kept, verdicts
