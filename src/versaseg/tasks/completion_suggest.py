"""Where to annotate next: the slices whose annotation would help a completion most.

Per voxel, the completion's own doubt is the margin doubt of its averaged class probabilities, plus the disagreement of
its models (the mean Kullback-Leibler divergence of each model's probabilities from the average: the part of the
doubt that more training data would resolve), plus the interpolation's guesswork (:func:`interpolation_doubt`: where
the annotated slices around a voxel disagree, which a confidently wrong model does not show in its entropy).
Annotated voxels carry none, and the doubt near an annotated slice counts for little (what is left there is a
boundary no annotation makes sharper): the share an annotated slice resolves is removed first, in the same way as
for a suggested slice (below). A slice's score is the sum over its voxels, so a slice through a large uncertain
boundary outranks one through a small doubtful spot.

An annotation of a slice resolves all the doubt on it and a share fading linearly to none at the nearest annotated
(or already picked) slice on each side along its axis, since the completion between two annotations improves towards
both. Slices are picked greedily by the doubt they would resolve in all (not only their own): the middle of a wide
doubtful gap beats a doubtful slice next to an annotated one. After each pick its resolved doubt is removed and the
gains recomputed, so that the suggestions spread out instead of bunching on neighbouring slices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from versaseg.data.case import Case
from versaseg.errors import InputError
from versaseg.io.image import stored_axis, stored_index


def voxel_doubt(model_probs: Sequence[torch.Tensor]) -> np.ndarray:
    """Margin doubt of the mean probabilities, ``max(0, 1 - 2 (p1 - p2))`` (1 where the two likeliest classes tie,
    0 once the likeliest leads by 0.5), plus the mean KL divergence of each model from the mean (nats).

    The margin rather than the entropy: the prior-residual models put about 0.09 on the foreground classes even far
    from every structure, an entropy floor of ~0.3 nats on every background voxel that would outweigh the boundaries.

    model_probs: each (K, *spatial) probabilities of one model -> (*spatial) float32.
    """
    stack = torch.stack(list(model_probs)).clamp_min(1e-6)  # (M, K, ...)
    mean = stack.mean(0)
    top2 = mean.topk(2, dim=0).values
    margin = (1.0 - 2.0 * (top2[0] - top2[1])).clamp_min(0.0)
    disagreement = (stack * (stack.log() - mean.log()[None])).sum(1).mean(0)
    return (margin + disagreement).numpy().astype(np.float32)


def interpolation_doubt(slices: np.ndarray, ids: Sequence[int], length: int) -> np.ndarray:
    """Where the interpolation between annotated slices is guesswork: (length, H, W) float32, 1 where the two
    annotated slices around a slice label a pixel differently (a boundary moves or a structure starts or ends
    somewhere in between: a model confidently wrong there shows no entropy), and beyond the first and last annotated
    slice 1 on their foreground (a structure may go on). slices: (N, H, W) class indices at the sorted ``ids``."""
    ids = np.asarray(ids)
    out = np.zeros((length, *slices.shape[1:]), np.float32)
    for z in range(length):
        b = int(np.searchsorted(ids, z))
        if b < len(ids) and ids[b] == z:
            continue
        if b == 0 or b == len(ids):
            out[z] = slices[0 if b == 0 else -1] > 0
        else:
            out[z] = slices[b - 1] != slices[b]
    return out


def _resolve(remaining: np.ndarray, axis: int, index: int, others: set[int], default_reach: int) -> None:
    """Remove, in place, the doubt an annotation of slice ``index`` along ``axis`` would resolve: all of it on the
    slice, fading linearly to none at the nearest slice of ``others`` on each side (``default_reach`` slices away
    where there is none)."""
    keep = _kept_share(remaining.shape[axis], index, others, default_reach)
    view = [1, 1, 1]
    view[axis] = -1
    remaining *= keep.reshape(view)


def _kept_share(length: int, index: int, others: set[int], default_reach: int) -> np.ndarray:
    """(length,) share of each slice's doubt left after annotating ``index``: 0 on it, rising linearly to 1 at the
    nearest slice of ``others`` on each side (``default_reach`` slices away where there is none)."""
    others_sorted = np.array(sorted(others - {index}), dtype=int)
    left, right = others_sorted[others_sorted < index], others_sorted[others_sorted > index]
    width_left = index - left[-1] if len(left) else default_reach
    width_right = right[0] - index if len(right) else default_reach
    distance = np.arange(length) - index
    return np.clip(np.where(distance < 0, -distance / width_left, distance / width_right), 0.0, 1.0)


def _gains(profile: np.ndarray, taken: set[int], default_reach: int) -> np.ndarray:
    """(length,) doubt an annotation of each slice would resolve, from ``profile`` (length,), the remaining doubt
    summed per slice; -1 on the slices in ``taken``."""
    gains = np.array([float(np.dot(profile, 1.0 - _kept_share(len(profile), i, taken, default_reach)))
                      for i in range(len(profile))])
    gains[list(taken)] = -1.0
    return gains


def suggest_slices(doubt: np.ndarray, axes: Sequence[int], count: int, reach: dict[int, int],
                   annotated: dict[int, Sequence[int]] | None = None) -> list[dict]:
    """``count`` slices to annotate next. doubt: (X, Y, Z) per-voxel doubt; axes: the axes allowed; reach: per axis,
    how many slices away an annotation helps where no annotated slice lies on that side; annotated: per axis, slices
    already annotated (never suggested). Returns [{"axis", "slice", "score"}] in the order picked.

    The doubt the annotated slices already resolve is removed first (as for a pick), so that what remains is doubt
    far from any annotation; "score" is the doubt the pick resolves (its own and its neighbours').
    """
    remaining = doubt.astype(np.float64).copy()
    taken = {a: {int(i) for i in v} for a, v in (annotated or {}).items()}
    for axis, indices in taken.items():
        for index in indices:
            _resolve(remaining, axis, index, indices, max(1, int(reach.get(axis, 1))))
    picks: list[dict] = []
    for _ in range(count):
        best = None
        for axis in axes:
            profile = remaining.sum(axis=tuple(d for d in range(3) if d != axis))
            scores = _gains(profile, taken.get(axis, set()), max(1, int(reach.get(axis, 1))))
            index = int(np.argmax(scores))
            if scores[index] > 0 and (best is None or scores[index] > best[2]):
                best = (axis, index, float(scores[index]))
        if best is None:
            break
        axis, index, score = best
        picks.append({"axis": axis, "slice": index, "score": round(score, 2)})
        taken.setdefault(axis, set()).add(index)
        _resolve(remaining, axis, index, taken[axis], max(1, int(reach.get(axis, 1))))
    return picks


def suggest_for_case(doubt: np.ndarray, planes: dict[int, np.ndarray], case: Case, count: int,
                     axes_option: str) -> list[dict]:
    """``count`` slices of ``case`` to annotate next, as ``{"axis", "slice", "score"}`` in stored axes and indices.

    doubt: (X, Y, Z) canonical; planes: canonical axis -> annotated canonical slice indices; ``axes_option``:
    'annotated' (the annotated planes), 'all', or stored axes such as '0,2'. Beyond the last annotated slice on a
    side, an annotation is taken to help as far as the widest annotation gap (mm; 20 mm without a gap).
    """
    if axes_option == "annotated":
        axes = sorted(planes)
    elif axes_option == "all":
        axes = [0, 1, 2]
    else:
        try:
            stored = sorted({int(a) for a in axes_option.split(",")})
        except ValueError:
            stored = [-1]
        if not stored or not set(stored) <= {0, 1, 2}:
            raise InputError(f"suggest axes must be 'annotated', 'all' or stored axes like '0,2', got "
                             f"'{axes_option}'")
        axes = sorted(int(case.orientation[s, 0]) for s in stored)
    gaps_mm = [float(np.max(np.diff(ids))) * case.spacing[a] for a, ids in planes.items() if len(ids) > 1]
    reach_mm = max(gaps_mm) if gaps_mm else 20.0
    reach = {a: max(1, int(round(reach_mm / case.spacing[a]))) for a in axes}
    picks = suggest_slices(doubt, axes, count, reach, {a: planes.get(a, ()) for a in axes})
    return [{"axis": stored_axis(p["axis"], case.orientation),
             "slice": stored_index(p["slice"], p["axis"], case.orientation, case.reference.shape),
             "score": p["score"]} for p in picks]
