"""Two-stage (coarse-to-fine) cascade versus a single-stage model with the same training budget, on the basal ganglia
(caudate, putamen, pallidum) of synthetic brains.

Everything runs through the CLI, as a user would:

    versaseg data synth-brain DATA --labels basal-ganglia --cases N --test-cases M --spacing S
    versaseg train DATA --out SINGLE --epochs E --iterations I ...                       (single stage)
    versaseg cascade train DATA --out CASCADE --stage1-epochs E/2 --stage2-epochs E/2 --iterations I ...
    versaseg predict SINGLE DATA --out P1; versaseg cascade predict CASCADE DATA --out P2
    versaseg evaluate P DATA/labelsTs --labels DATA/dataset.json --json ...

Same budget = the same number of training iterations of the same network and batch size: the cascade splits the
single model's E epochs between its two stages. Per structure: Dice and HD95 (mean ± sd over seeds x held-out
cases), a paired Wilcoxon signed-rank test (scipy.stats) of cascade against single stage, and wall times of training
and prediction.

    python benchmarks/cascade.py --work benchmark_data/cascade --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import TimedSteps, cpu_model, write_section  # noqa: E402

TITLE = "## Two-stage cascade for the basal ganglia"
STRUCTURES = ("caudate", "putamen", "pallidum")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("benchmark_data/cascade"))
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--test-cases", type=int, default=4)
    parser.add_argument("--spacing", type=float, default=1.5)
    parser.add_argument("--epochs", type=int, default=16, help="Single-stage epochs; each cascade stage gets half.")
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--coarse-spacing", type=float, default=4.0)
    parser.add_argument("--docs", type=Path, default=None)
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    step = TimedSteps(work)
    timings = step.timings

    data = work / "data"
    if not (data / "dataset.json").exists():
        step("generate", "data", "synth-brain", str(data), "--labels", "basal-ganglia", "--cases", str(args.cases),
             "--test-cases", str(args.test_cases), "--spacing", str(args.spacing), "--seed", "3", "--overwrite")
    half = max(1, args.epochs // 2)
    common = ["--iterations", str(args.iterations), "--val-fraction", "0", "--dim", "2d", "--axis", "2"]
    results: dict[str, dict] = {"single stage": {}, "cascade": {}}
    for seed in range(args.seeds):
        single, cascade = work / f"single_s{seed}", work / f"cascade_s{seed}"
        for name, run in (("single stage", single), ("cascade", cascade)):
            evaluation = work / f"eval_{run.name}.json"
            if not evaluation.exists():
                prediction = work / f"pred_{run.name}"
                if name == "single stage":
                    step(f"train {run.name}", "train", str(data), "--out", str(run), "--epochs", str(args.epochs),
                         "--seed", str(seed), "--overwrite", *common)
                    step(f"predict {run.name}", "predict", str(run), str(data), "--out", str(prediction),
                         "--overwrite")
                else:
                    step(f"train {run.name}", "cascade", "train", str(data), "--out", str(run), "--stage1-epochs",
                         str(half), "--stage2-epochs", str(args.epochs - half), "--coarse-spacing",
                         str(args.coarse_spacing), "--seed", str(seed), "--overwrite", *common)
                    step(f"predict {run.name}", "cascade", "predict", str(run), str(data / "imagesTs"), "--out",
                         str(prediction), "--overwrite")
                step(f"evaluate {run.name}", "evaluate", str(prediction), str(data / "labelsTs"), "--labels",
                     str(data / "dataset.json"), "--json", str(evaluation), "--overwrite")
            cases = json.loads(evaluation.read_text())["cases"]
            results[name][seed] = {case: entry["metrics"] for case, entry in cases.items()}
    rois = [entry for seed in range(args.seeds) for entry in json.loads(
        (work / f"pred_cascade_s{seed}" / "cascade_rois.json").read_text())["cases"]]
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "results": results, "timings": timings,
               "rois": rois}
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    section = render(summary, args, timings)
    print(section)
    if args.docs is not None:
        figure(work, data, args.docs.parent / "images" / "cascade_basal_ganglia.png")
        write_section(args.docs, TITLE, section)


def figure(work: Path, data: Path, out_png: Path) -> None:
    """Ground truth, single-stage and cascade predictions of the first held-out case (seed 0) over its T1."""
    import nibabel as nib

    from versaseg.viz.overlays import overlay_mosaic

    label = sorted((data / "labelsTs").glob("*.nii.gz"))[0]
    case = label.name.removesuffix(".nii.gz")
    nii = nib.load(data / "imagesTs" / f"{case}_0000.nii.gz")
    maps = [("ground truth", label)] + [(name, work / f"pred_{run}_s0" / label.name)
                                        for name, run in (("single stage", "single"), ("cascade", "cascade"))]
    out_png.parent.mkdir(parents=True, exist_ok=True)
    overlay_mosaic(np.asarray(nii.dataobj, np.float32), [(name, np.asarray(nib.load(path).dataobj).astype(np.int16))
                                                          for name, path in maps], out_png, slices=1,
                   title=f"{case}: basal ganglia, single stage vs cascade (seed 0)",
                   spacing=tuple(float(z) for z in nii.header.get_zooms()[:3]),
                   class_names={1: "caudate", 2: "putamen", 3: "pallidum"})


def _values(results: dict, name: str, structure: str, metric: str) -> dict[tuple, float]:
    return {(seed, case): m[structure][metric] for seed, cases in results[name].items() for case, m in cases.items()
            if m[structure].get(metric) is not None and np.isfinite(m[structure][metric])}


def render(summary: dict, args, timings: dict) -> str:
    from scipy import stats

    results = summary["results"]
    half = max(1, args.epochs // 2)

    def seconds(prefix: str, kind: str) -> str:
        values = [v for k, v in timings.items() if k.startswith(f"{prefix} {kind}_s")]
        return f"{np.mean(values):.0f}" if values else "–"

    lines = [TITLE, "", f"`python benchmarks/cascade.py` on {cpu_model()} (2 cores), no GPU: {args.cases} training "
             f"and {args.test_cases} held-out synthetic brains at {args.spacing} mm (`--labels basal-ganglia`), seeds "
             f"0..{args.seeds - 1}. Single stage: 2D `unet` (defaults) for {args.epochs} epochs x {args.iterations} "
             f"iterations. Cascade (`versaseg cascade train`, defaults): stage 1 on the volumes resampled to "
             f"{args.coarse_spacing} mm with the three structures merged, {half} epochs; stage 2 on full-resolution "
             f"crops (ROI + 12 mm margin), {args.epochs - half} epochs; the same network, batch and iterations per "
             "epoch, so both spend the same number of training iterations. Mean ± sd over seeds x held-out cases; "
             "Wilcoxon signed-rank test of cascade against single stage over the (seed, case) pairs.", "",
             "| structure | metric | single stage | cascade | median paired difference | p |",
             "|---|---|---:|---:|---:|---:|"]
    for structure in STRUCTURES:
        for metric in ("dice", "hd95"):
            a = _values(results, "single stage", structure, metric)
            b = _values(results, "cascade", structure, metric)
            keys = sorted(set(a) & set(b))
            x, y = np.array([a[k] for k in keys]), np.array([b[k] for k in keys])
            digits = 3 if metric == "dice" else 1
            p = f"{stats.wilcoxon(y, x).pvalue:.3g}" if len(keys) >= 2 and np.any(x != y) else "–"
            cells = [f"{np.mean(list(v.values())):.{digits}f} ± {np.std(list(v.values())):.{digits}f}" if v else "–"
                     for v in (a, b)]
            diff = f"{np.median(y - x):+.{digits}f}" if keys else "–"
            lines.append(f"| {structure} | {metric}{' (mm)' if metric == 'hd95' else ''} | {cells[0]} | {cells[1]} | "
                         f"{diff} | {p} |")
    rois = summary["rois"]
    fractions = [r["roi_fraction"] for r in rois]
    lines += ["", f"Stage 1's region of interest: {np.mean(fractions) * 100:.0f} % of the volume on average "
              f"(min {min(fractions) * 100:.0f} %, max {max(fractions) * 100:.0f} %); stage 1 found nothing and the "
              f"whole volume was used in {sum(r['fallback_whole_volume'] for r in rois)} of {len(rois)} predictions."]
    lines += ["", f"Wall time per seed (s): single stage train {seconds('train', 'single')}, predict "
              f"{seconds('predict', 'single')} ({args.test_cases} cases); cascade train {seconds('train', 'cascade')}"
              f" (both stages, including building the derived datasets), predict {seconds('predict', 'cascade')}.",
              "", "![cascade](images/cascade_basal_ganglia.png)", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
