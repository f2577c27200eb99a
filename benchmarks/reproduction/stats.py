"""Paired statistics of the reproduction report: Wilcoxon signed-rank tests (scipy.stats) with the median paired
difference, Holm's step-down correction for a family of tests, and per-case scores from the stored rows."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

ALPHA = 0.05


def finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def paired(a: dict[str, float], b: dict[str, float]) -> dict:
    """b against a over the keys both have finite values for: n, means, the median of b - a and the two-sided
    Wilcoxon signed-rank p (None when fewer than 2 pairs or all differences are 0)."""
    keys = sorted(k for k in a if k in b and finite(a[k]) and finite(b[k]))
    x, y = np.array([a[k] for k in keys]), np.array([b[k] for k in keys])
    p = None
    if len(keys) >= 2 and np.any(x != y):
        p = float(stats.wilcoxon(y, x).pvalue)
    if not keys:
        return {"n": 0, "mean_a": None, "mean_b": None, "median_diff": None, "p": None}
    return {"n": len(keys), "mean_a": float(x.mean()), "mean_b": float(y.mean()),
            "median_diff": float(np.median(y - x)), "p": p}


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and does not count in the family)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m, adjusted, running = len(order), [None] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def case_scores(row: dict, metric: str = "dice", classes: list[str] | None = None) -> dict[str, float]:
    """Per test case the mean of ``metric`` over ``classes`` (default every class of the row); None values (a
    structure not predicted) count as NaN."""
    out = {}
    for case, per_class in row["cases"].items():
        names = classes or [c for c in per_class if not c.startswith("mean")]
        values = [per_class[c].get(metric) for c in names]
        out[case] = float(np.mean([v if finite(v) else np.nan for v in values]))
    return out


def mean_score(row: dict, classes: list[str] | None = None) -> float:
    """The mean over test cases of ``case_scores(row, classes=classes)``: one arm's mean Dice."""
    return float(np.mean(list(case_scores(row, classes=classes).values())))


def mean_sd(values) -> str:
    values = np.array([v for v in values if finite(v)], float)
    if not len(values):
        return "–"
    return f"{values.mean():.3f} ± {values.std():.3f}"


def fmt_p(p: float | None) -> str:
    return "–" if p is None else f"{p:.2g}"


def verdict(test: dict, adjusted_p: float | None, higher_is_better: bool = True) -> str:
    """'holds' when the median difference favours b and the (adjusted) p < 0.05; 'reversed' when it is significant
    the other way; otherwise 'not significant'."""
    if test["median_diff"] is None or adjusted_p is None:
        return "not testable"
    better = (test["median_diff"] > 0) == higher_is_better and test["median_diff"] != 0
    if adjusted_p < ALPHA:
        return "holds" if better else "reversed"
    return "not significant"
