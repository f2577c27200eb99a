"""The annotation loop with a simulated annotator: which slices to add, and how fast Dice grows.

Every case starts from every 16th axial slice of its label (the first at 8), a fraction of them corrupted
(``versaseg data degrade``'s corruption kinds, ``--noise``). Then 6 rounds each add 2 slices, drawn by a perfect
annotator (the ground truth's slice), chosen by one of three strategies:

- ``suggested``: the 2 slices ``versaseg complete --suggest 2`` lists after completing the current annotation;
- ``uniform``: the middle of the widest remaining gap, twice (the gaps run between annotated slices and, at the ends,
  to the edge of the label's extent);
- ``random``: 2 unannotated slices within the label's extent, uniformly at random (seeded per case and round).

After every round the current annotation is completed with the defaults (ignore label; API call) and scored against
the full label (mean foreground Dice). Each completion is one JSON line in ``--results`` (resumable); ``--docs``
rewrites the "## Annotation loop" section of docs/benchmarks.md and draws ``docs/images/annotation_loop.png``.

Target (issue 14): the suggested curve reaches the uniform curve's final Dice with at most 70 % of its slices.

    python benchmarks/annotation_loop.py --cases 3 --noise 0,0.3 --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from completion import CLASSES, IGNORE, _commit, append_result, mni_case, read_results, synthetic_cases  # noqa: E402
from docs_section import cpu_model, write_section  # noqa: E402

STRATEGIES = ("suggested", "uniform", "random")
START_EVERY, ADD, ROUNDS, AXIS = 16, 2, 6, 2
TITLE = "## Annotation loop"
FIGURE = Path("docs/images/annotation_loop.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("benchmark_data/completion"))
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--mni", action="store_true")
    parser.add_argument("--noise", default="0,0.3")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/annotation_loop.jsonl"))
    parser.add_argument("--docs", type=Path, default=None)
    args = parser.parse_args()
    cases = synthetic_cases(args.data, args.cases) + ([mni_case(args.data)] if args.mni else [])
    for case in cases:
        for noise in (float(v) for v in args.noise.split(",")):
            for strategy in STRATEGIES:
                run_curve(case, noise, strategy, args.results)
    if args.docs is not None:
        rows = read_results(args.results)
        write_section(args.docs, TITLE, render(rows))
        plot(rows, args.docs.parent / FIGURE.relative_to("docs"))


def _key(case: str, noise: float, strategy: str, round_: int) -> str:
    return f"{case}|noise{noise:g}|{strategy}|round{round_}"


def start_annotation(truth: np.ndarray, case: str, noise: float) -> np.ndarray:
    from versaseg.data.degrade import degrade_label

    seed = [sum(ord(ch) for ch in case), AXIS, START_EVERY, int(round(noise * 100))]
    sparse, _ = degrade_label(truth, START_EVERY, axis=AXIS, offset=START_EVERY // 2, noisy_fraction=noise,
                              seed=seed, ignore_label=IGNORE)
    return sparse


def annotated_slices(sparse: np.ndarray) -> list[int]:
    return [int(z) for z in np.flatnonzero((sparse != IGNORE).any(axis=(0, 1)))]


def uniform_picks(annotated: list[int], extent: tuple[int, int], count: int) -> list[int]:
    """The middle of the widest gap, ``count`` times (the ends count as gaps to the edge of the extent)."""
    taken = sorted(annotated)
    picks = []
    for _ in range(count):
        bounds = [extent[0] - 1, *taken, extent[1] + 1]
        gaps = [(b - a, a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b - a > 1]
        width, a, b = max(gaps)
        pick = (a + b) // 2
        picks.append(pick)
        taken = sorted([*taken, pick])
    return picks


def random_picks(annotated: list[int], extent: tuple[int, int], count: int, rng: np.random.Generator) -> list[int]:
    free = [z for z in range(extent[0], extent[1] + 1) if z not in annotated]
    return [int(z) for z in rng.choice(free, size=min(count, len(free)), replace=False)]


def run_curve(case: dict, noise: float, strategy: str, results: Path) -> None:
    from versaseg.data.case import load_case
    from versaseg.evaluation.metrics import dice
    from versaseg.io.dataset import CaseFiles
    from versaseg.tasks.completion import CompletionSettings, complete_case

    done = {r["key"]: r for r in read_results(results)}
    truth_nii = nib.load(case["label"])
    truth = np.asarray(truth_nii.dataobj).astype(np.int16)
    holds = np.flatnonzero((truth > 0).any(axis=(0, 1)))
    extent = (int(holds[0]), int(holds[-1]))
    sparse = start_annotation(truth, case["name"], noise)
    rng = np.random.default_rng([sum(ord(ch) for ch in case["name"]), int(noise * 100)])
    for round_ in range(ROUNDS + 1):
        key = _key(case["name"], noise, strategy, round_)
        if key in done:
            row = done[key]
        else:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "sparse.nii.gz"
                nib.save(nib.Nifti1Image(sparse.astype(np.uint8), truth_nii.affine), path)
                loaded = load_case(CaseFiles(case["name"], list(case["images"]), path))
                started = time.perf_counter()
                settings = CompletionSettings(suggest=ADD if strategy == "suggested" else 0)
                result = complete_case(loaded, IGNORE, "auto", settings, progress=lambda message: None)
                seconds = time.perf_counter() - started
            row = {"key": key, "case": case["name"], "noise": noise, "strategy": strategy, "round": round_,
                   "slices": annotated_slices(sparse), "num_slices": len(annotated_slices(sparse)),
                   "dice": {str(c): round(dice(result.labels == c, truth == c), 4) for c in CLASSES},
                   "suggested": [s["slice"] for s in result.report["suggested"]], "seconds": round(seconds, 1),
                   "commit": _commit()}
            append_result(results, row)
            print(f"{key}: {row['num_slices']} slices, mean Dice {np.mean(list(row['dice'].values())):.3f}, "
                  f"{seconds:.0f} s", flush=True)
        if round_ == ROUNDS:
            break
        current = row["slices"]
        if strategy == "suggested":
            picks = row["suggested"]
        elif strategy == "uniform":
            picks = uniform_picks(current, extent, ADD)
        else:
            picks = random_picks(current, extent, ADD, rng)
        for z in picks:
            sparse[:, :, z] = truth[:, :, z]  # the annotator draws the slice correctly


def _mean_dice(row: dict) -> float:
    return float(np.mean([row["dice"][str(c)] for c in CLASSES]))


def curves(rows: list[dict], noise: float) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """Per strategy: (mean slices, mean Dice) per round over the cases with a complete curve, and the case count."""
    out = {}
    for strategy in STRATEGIES:
        sub = [r for r in rows if r["noise"] == noise and r["strategy"] == strategy]
        cases = sorted({r["case"] for r in sub if r["round"] == ROUNDS})
        if not cases:
            continue
        slices = [np.mean([r["num_slices"] for r in sub if r["round"] == k and r["case"] in cases])
                  for k in range(ROUNDS + 1)]
        values = [np.mean([_mean_dice(r) for r in sub if r["round"] == k and r["case"] in cases])
                  for k in range(ROUNDS + 1)]
        out[strategy] = (np.array(slices), np.array(values), len(cases))
    return out


def target(rows: list[dict], noise: float) -> tuple[float, float, float | None] | None:
    """(uniform's final Dice, its slices, the fewest slices with which the suggested curve reaches that Dice)."""
    found = curves(rows, noise)
    if "suggested" not in found or "uniform" not in found:
        return None
    final_dice, final_slices = found["uniform"][1][-1], found["uniform"][0][-1]
    reached = [n for n, d in zip(*found["suggested"][:2], strict=True) if d >= final_dice]
    return float(final_dice), float(final_slices), (float(min(reached)) if reached else None)


def render(rows: list[dict]) -> str:
    lines = [TITLE, "",
             f"`python benchmarks/annotation_loop.py --cases 3 --noise 0,0.3` on {cpu_model()} (2 cores, no GPU); raw "
             "results: `benchmarks/results/annotation_loop.jsonl`. Start: every 16th axial slice (a fraction "
             "corrupted); 6 rounds add 2 ground-truth slices each, chosen by `--suggest 2`, by bisecting the widest "
             "gap, or at random; each round completed with the defaults. Mean foreground Dice over the synthetic "
             "cases (mean number of annotated slices in brackets):", "",
             f"![Dice against annotated slices](images/{FIGURE.name})", ""]
    for noise in sorted({r["noise"] for r in rows}):
        found = curves(rows, noise)
        if not found:
            continue
        lines += [f"Noise {round(noise * 100)} % on the starting slices:", "",
                  "| strategy | cases | " + " | ".join(f"round {k}" for k in range(ROUNDS + 1)) + " |",
                  "|---" * (ROUNDS + 3) + "|"]
        for strategy, (slices, values, count) in found.items():
            lines.append(f"| {strategy} | {count} | " + " | ".join(
                f"{v:.3f} ({n:.0f})" for n, v in zip(slices, values, strict=True)) + " |")
        goal = target(rows, noise)
        if goal:
            final_dice, final_slices, reached = goal
            if reached is None:
                verdict = (f"suggested never reaches uniform's final Dice {final_dice:.3f} ({final_slices:.0f} "
                           f"slices) within {ROUNDS} rounds: **missed**")
            else:
                share = reached / final_slices
                verdict = (f"suggested reaches uniform's final Dice {final_dice:.3f} ({final_slices:.0f} slices) with "
                           f"{reached:.0f} slices = {share:.0%} of them (target <= 70 %): "
                           f"**{'met' if share <= 0.7 else 'missed'}**")
            lines += ["", verdict]
        lines.append("")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from versaseg.io.atomic import atomic_path

    noises = sorted({r["noise"] for r in rows})
    figure = Figure(figsize=(4.5 * len(noises), 3.6), dpi=110)
    FigureCanvasAgg(figure)
    for i, noise in enumerate(noises):
        axes = figure.add_subplot(1, len(noises), i + 1)
        for strategy, (slices, values, count) in curves(rows, noise).items():
            axes.plot(slices, values, marker="o", label=f"{strategy} ({count} cases)")
        axes.set_xlabel("annotated slices")
        axes.set_ylabel("mean foreground Dice")
        axes.set_title(f"start: every 16th slice, {round(noise * 100)} % noisy")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        figure.savefig(tmp, format="png")


if __name__ == "__main__":
    main()
