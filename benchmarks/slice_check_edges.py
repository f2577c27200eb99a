"""Exploration for the slice check (issue 13): does a corrupted annotated slice sit worse on the image's edges?

For every annotated slice (end slices excluded) of the completion benchmark's noisy runs (the same
``degrade_label`` seeds as ``benchmarks/completion.py``, 30 % noisy, K = 4 and 8, three axes, 3 synthetic brains and
MNI152), per class: the mean in-plane gradient magnitude (sum over the z-scored channels, Gaussian derivative at
1 px) on the drawn boundary, against the best of the boundaries 1 or 2 px further out or in. A drawn boundary that
is not on the edge (dilated, eroded, shifted, jittered) is beaten by one of them. The slice's score is the largest
relative gain over its classes; ``z`` is its robust z-score within the run. Prints, per K, the best recall of the
slices whose corruption costs >= 0.05 Dice at precision >= 0.8, the AUC against clean slices and the median z per
corruption kind. Not part of ``versaseg complete``.

With ``--reference`` each annotated slice is judged against the completion's own predicted slices instead of the
other annotated slices: ``versaseg complete``'s default output (through the API, as ``benchmarks/completion.py``
runs its ablations; 48 completions, cached under ``benchmark_data/completion/dense``) gives, per run, the edge
gains of its non-annotated slices between the end slices; a slice is flagged when its gain exceeds ``factor`` x a
quantile of theirs. This also runs the clean (noise 0) annotations, so the false alarms on clean slices are counted
where there is nothing to find.

    python benchmarks/slice_check_edges.py
    python benchmarks/slice_check_edges.py --reference
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi
from scipy.stats import mannwhitneyu

sys.path.insert(0, str(Path(__file__).resolve().parent))
from completion import IGNORE, mni_case, slice_dice_cost, synthetic_cases, versaseg_complete  # noqa: E402

DATA = Path("benchmark_data/completion")


def _gradient(plane: np.ndarray) -> np.ndarray:
    return np.hypot(ndi.gaussian_filter(plane, 1.0, order=(1, 0)), ndi.gaussian_filter(plane, 1.0, order=(0, 1)))


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndi.binary_erosion(mask)


def edge_gain(slice_labels: np.ndarray, gradient: np.ndarray) -> float:
    """Largest relative gain in boundary gradient of a 1-2 px dilation or erosion over the drawn boundary, over the
    classes of one slice (H, W)."""
    gains = []
    for value in np.unique(slice_labels):
        mask = slice_labels == value
        if value == 0 or mask.sum() < 20:
            continue
        drawn = gradient[_boundary(mask)].mean()
        others = []
        for k in (1, 2):
            others.append(gradient[_boundary(ndi.binary_dilation(mask, iterations=k))].mean())
            eroded = ndi.binary_erosion(mask, iterations=k)
            if eroded.sum() > 5:
                others.append(gradient[_boundary(eroded)].mean())
        gains.append((max(others) - drawn) / (drawn + 1e-6))
    return max(gains) if gains else 0.0


def _z_scored_images(case: dict) -> list[np.ndarray]:
    images = [np.asarray(nib.load(p).dataobj).astype(np.float32) for p in case["images"]]
    return [(i - i.mean()) / (i.std() + 1e-6) for i in images]


def _dense_completion(case: dict, sparse: np.ndarray, affine: np.ndarray, name: str) -> np.ndarray:
    """versaseg complete's default output for one sparse label (cached)."""
    cache = DATA / "dense" / f"{name}.npz"
    if cache.exists():
        return np.load(cache)["dense"]
    dense, _ = versaseg_complete(case, sparse, affine, "versaseg:")  # the defaults, in-process
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, dense=dense.astype(np.uint8))
    return dense


def _slice_gain(labels: np.ndarray, images: list[np.ndarray], axis: int, index: int) -> float:
    gradient = sum(_gradient(np.take(i, index, axis=axis)) for i in images)
    return edge_gain(np.take(labels, index, axis=axis), gradient)


def reference_main() -> None:
    """Judge annotated slices against the edge gains of the completion's predicted slices (see the module doc)."""
    from versaseg.data.degrade import degrade_label

    rows = []
    for case in [*synthetic_cases(DATA, 3), mni_case(DATA)]:
        nii = nib.load(case["label"])
        truth = np.asarray(nii.dataobj).astype(np.int16)
        images = _z_scored_images(case)
        for noise in (0.3, 0.0):
            for axis in (0, 1, 2):
                for every in (4, 8):
                    name = f"{case['name']}_a{axis}_K{every}_n{int(noise * 100)}"
                    seed = [sum(ord(ch) for ch in case["name"]), axis, every, int(round(noise * 100))]
                    sparse, report = degrade_label(truth, every, axis=axis, offset=every // 2,
                                                   noisy_fraction=noise, seed=seed, ignore_label=IGNORE)
                    dense = _dense_completion(case, sparse, nii.affine, name)
                    kinds = {s.index: s.kind for s in report.slices}
                    annotated = sorted(kinds)

                    between = [i for i in range(annotated[0] + 1, annotated[-1]) if i not in kinds]
                    predicted = np.array([_slice_gain(dense, images, axis, i) for i in between])
                    quantiles = {q: float(np.quantile(predicted, q)) for q in (0.9, 0.95, 0.99)}
                    for index in annotated[1:-1]:
                        cost = slice_dice_cost(truth, sparse, axis, index) if kinds[index] else 0.0
                        drawn = _slice_gain(sparse, images, axis, index)
                        rows.append((every, noise, drawn, quantiles, kinds[index] or "", cost))
        print(f"{case['name']} done", flush=True)
    for every in (4, 8):
        noisy = [r for r in rows if r[0] == every and r[1] > 0]
        clean = [r for r in rows if r[0] == every and r[1] == 0]
        corrupted = np.array([bool(r[4]) for r in noisy])
        costly = np.array([r[5] >= 0.05 for r in noisy])
        print(f"K={every}: {len(noisy)} slices of noisy runs ({costly.sum()} costly), {len(clean)} of clean runs")
        for q in (0.9, 0.95, 0.99):
            for factor in (1.0, 1.5, 2.0):
                flagged = np.array([r[2] > factor * r[3][q] for r in noisy])
                precision = corrupted[flagged].mean() if flagged.any() else float("nan")
                recall = (flagged & costly).sum() / costly.sum()
                false_alarms = np.mean([r[2] > factor * r[3][q] for r in clean])
                print(f"  gain > {factor} x q{q}: recall {recall:.2f}, precision {precision:.2f}, "
                      f"flagged on clean runs {false_alarms:.3f}")


def main() -> None:
    from versaseg.data.degrade import degrade_label

    rows = []
    for case in [*synthetic_cases(DATA, 3), mni_case(DATA)]:
        truth = np.asarray(nib.load(case["label"]).dataobj).astype(np.int16)
        images = _z_scored_images(case)
        for axis in (0, 1, 2):
            for every in (4, 8):
                seed = [sum(ord(ch) for ch in case["name"]), axis, every, 30]
                sparse, report = degrade_label(truth, every, axis=axis, offset=every // 2, noisy_fraction=0.3,
                                               seed=seed, ignore_label=IGNORE)
                kinds = {s.index: s.kind for s in report.slices}
                run = []
                for index in sorted(kinds)[1:-1]:
                    cost = slice_dice_cost(truth, sparse, axis, index) if kinds[index] else 0.0
                    run.append((_slice_gain(sparse, images, axis, index), kinds[index] or "", cost))
                gains = np.array([r[0] for r in run])
                median = np.median(gains)
                mad = 1.4826 * np.median(np.abs(gains - median)) + 1e-3
                rows += [(every, (g - median) / mad, kind, cost) for g, kind, cost in run]
        print(f"{case['name']} done", flush=True)
    for every in (4, 8):
        part = [r for r in rows if r[0] == every]
        z = np.array([r[1] for r in part])
        corrupted = np.array([bool(r[2]) for r in part])
        costly = np.array([r[3] >= 0.05 for r in part])
        best = (0.0, float("nan"), float("nan"))
        for t in np.unique(z):
            flagged = z >= t
            precision = corrupted[flagged].mean()
            recall = (flagged & costly).sum() / costly.sum()
            if precision >= 0.8 and recall > best[0]:
                best = (recall, precision, t)
        auc = mannwhitneyu(z[costly], z[~corrupted]).statistic / (costly.sum() * (~corrupted).sum())
        print(f"K={every}: {len(part)} slices, {costly.sum()} costly; best recall {best[0]:.2f} at precision "
              f"{best[1]:.2f} (z >= {best[2]:.2f}); AUC costly vs clean {auc:.3f}")
        for kind in sorted({r[2] for r in part}):
            print(f"  {kind or 'clean'}: {sum(r[2] == kind for r in part)} slices, median z "
                  f"{np.median([r[1] for r in part if r[2] == kind]):.2f}")


if __name__ == "__main__":
    reference_main() if "--reference" in sys.argv[1:] else main()
