"""Annotated slices on one plane against the same number on two orthogonal planes (``versaseg complete``).

For each case and slice budget N, three annotations of the truth (no corruption) are completed with the defaults
(ignore-label convention, ``--axis auto``):

- ``axial``: N axial slices, evenly spaced over the label's extent along the axial axis;
- ``axial+sagittal``: N // 2 axial and N - N // 2 sagittal slices, each evenly spaced over the label's extent;
- ``axial+coronal``: the same with coronal slices.

Scored against the full label (Dice per class, mean over the four foreground classes). Cases as in
``benchmarks/completion.py`` (synthetic brains, ``--mni`` the MNI152 template). Each run is one JSON line in
``--results`` (resumable); ``--docs`` rewrites the "## Completion from several planes" section.

    python benchmarks/completion_planes.py --cases 3 --mni --slices 8,16 --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from completion import CLASSES, _commit, append_result, mni_case, read_results, synthetic_cases  # noqa: E402
from docs_section import cpu_model, write_section  # noqa: E402

IGNORE = 9
TITLE = "## Completion from several planes"
LAYOUTS = {"axial": (2,), "axial+sagittal": (2, 0), "axial+coronal": (2, 1)}  # RAS volumes: 0 = x, 1 = y, 2 = z


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("benchmark_data/completion"))
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--mni", action="store_true")
    parser.add_argument("--slices", default="8,16", help="Comma list of slice budgets N.")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/completion_planes.jsonl"))
    parser.add_argument("--docs", type=Path, default=None)
    args = parser.parse_args()
    cases = synthetic_cases(args.data, args.cases) + ([mni_case(args.data)] if args.mni else [])
    done = {r["key"] for r in read_results(args.results)}
    todo = [(c, n, layout) for c in cases for n in (int(v) for v in args.slices.split(",")) for layout in LAYOUTS
            if f"{c['name']}|N{n}|{layout}" not in done]
    print(f"{len(todo)} runs to do", flush=True)
    for number, (case, n, layout) in enumerate(todo, 1):
        row = run_one(case, n, layout)
        row["commit"] = _commit()
        append_result(args.results, row)
        print(f"[{number}/{len(todo)}] {row['key']}: mean Dice {np.mean(list(row['dice'].values())):.3f}, "
              f"{row['seconds']:.1f} s", flush=True)
    if args.docs is not None:
        write_section(args.docs, TITLE, render(read_results(args.results)))


def evenly_spaced(mask_along: np.ndarray, count: int) -> list[int]:
    """``count`` slice indices spread evenly inside the extent where ``mask_along`` (1D bool) holds labels."""
    hits = np.flatnonzero(mask_along)
    return sorted({int(round(v)) for v in np.linspace(hits[0], hits[-1], count + 2)[1:-1]})


def sparse_label(truth: np.ndarray, n: int, layout: str) -> tuple[np.ndarray, dict[int, list[int]]]:
    axes = LAYOUTS[layout]
    counts = [n] if len(axes) == 1 else [n // 2, n - n // 2]
    sparse = np.full(truth.shape, IGNORE, np.int16)
    planes = {}
    for axis, count in zip(axes, counts, strict=True):
        ids = evenly_spaced((truth > 0).any(axis=tuple(d for d in range(3) if d != axis)), count)
        index = [slice(None)] * 3
        index[axis] = ids
        sparse[tuple(index)] = truth[tuple(index)]
        planes[axis] = ids
    return sparse, planes


def run_one(case: dict, n: int, layout: str) -> dict:
    import subprocess

    from versaseg.evaluation.metrics import dice

    truth_nii = nib.load(case["label"])
    truth = np.asarray(truth_nii.dataobj).astype(np.int16)
    sparse, planes = sparse_label(truth, n, layout)
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "sparse.nii.gz", Path(tmp) / "dense.nii.gz"
        nib.save(nib.Nifti1Image(sparse.astype(np.uint8), truth_nii.affine), path)
        started = time.perf_counter()
        command = [str(Path(sys.executable).parent / "versaseg"), "complete", *map(str, case["images"]),
                   "--label", str(path), "--ignore-label", str(IGNORE), "--out", str(out)]
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"versaseg complete failed: {done.stderr.strip()}")
        dense = np.asarray(nib.load(out).dataobj)
    return {"key": f"{case['name']}|N{n}|{layout}", "case": case["name"], "slices": n, "layout": layout,
            "planes": {str(a): ids for a, ids in planes.items()}, "seconds": round(seconds, 2),
            "dice": {str(c): round(dice(dense == c, truth == c), 4) for c in CLASSES}}


def render(rows: list[dict]) -> str:
    lines = [TITLE, "",
             f"`python benchmarks/completion_planes.py --cases 3 --mni --slices 8,16` on {cpu_model()} (2 cores, no "
             "GPU); raw results: `benchmarks/results/completion_planes.jsonl`. The same number N of clean annotated "
             "slices on one plane (axial) or split over two orthogonal planes, each evenly spaced over the label's "
             "extent, completed by `versaseg complete` (defaults, ignore label, `--axis auto`, fresh process). Mean "
             "foreground Dice over the cases (runs in brackets):", "",
             "| N | layout | " + " | ".join(CLASSES.values()) + " | mean | median time s | runs |",
             "|---" * (len(CLASSES) + 5) + "|"]
    for n in sorted({r["slices"] for r in rows}):
        for layout in LAYOUTS:
            sub = [r for r in rows if r["slices"] == n and r["layout"] == layout]
            if not sub:
                continue
            per_class = [np.mean([r["dice"][str(c)] for r in sub]) for c in CLASSES]
            lines.append(f"| {n} | {layout} | " + " | ".join(f"{v:.3f}" for v in per_class)
                         + f" | **{np.mean(per_class):.3f}** | {np.median([r['seconds'] for r in sub]):.0f} | "
                         f"{len(sub)} |")
    lines.append("")
    for name in sorted({r["case"] for r in rows}):
        cells = []
        for n in sorted({r["slices"] for r in rows}):
            for layout in LAYOUTS:
                sub = [r for r in rows if r["case"] == name and r["slices"] == n and r["layout"] == layout]
                if sub:
                    cells.append(f"N={n} {layout} {np.mean(list(sub[0]['dice'].values())):.3f}")
        lines.append(f"- {name}: " + "; ".join(cells))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
