"""Two-stage (coarse-to-fine) cascade versus a single-stage model, on the basal ganglia (caudate, putamen,
pallidum) of synthetic brains, at the same number of training iterations and at about the same training wall time.

Everything runs through the CLI, as a user would:

    versaseg data synth-brain --out DATA --label-set basal-ganglia --cases N --test-cases M --spacing S
    versaseg train DATA --out SINGLE --epochs E --iterations I ...                       (single stage)
    versaseg cascade train DATA --out CASCADE --stage1-epochs A --stage2-epochs B --iterations I ...
    versaseg predict SINGLE DATA --out P1; versaseg cascade predict CASCADE DATA --out P2
    versaseg evaluate P DATA/labelsTs --dataset-json DATA/dataset.json --json ...

Cascade variants are given as ``A+B`` (stage-1 epochs + stage-2 epochs, same network, batch and iterations per epoch
as the single model): ``A+B = E`` spends the same number of training iterations as the single model, a larger ``B``
spends about its wall time (a stage-2 crop costs a fraction of a whole slice). Per structure: Dice and HD95 (mean ±
sd over seeds x held-out cases), a paired Wilcoxon signed-rank test (scipy.stats) of each cascade against the single
stage over the (seed, case) pairs, how many predictions miss a structure entirely, and wall times.

    python benchmarks/cascade.py --work benchmark_data/cascade --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import TimedSteps, cpu_model, write_section  # noqa: E402

TITLE = "## Two-stage cascade for the basal ganglia"
STRUCTURES = ("caudate", "putamen", "pallidum")


SINGLE = "single stage"


def parse_variants(text: str) -> list[tuple[int, int]]:
    """``"8+8,4+12"`` -> ``[(8, 8), (4, 12)]`` (stage-1 epochs, stage-2 epochs)."""
    variants = []
    for item in text.split(","):
        first, _, second = item.strip().partition("+")
        if not (first.isdigit() and second.isdigit()) or int(first) < 1 or int(second) < 1:
            raise SystemExit(f"--variants: '{item}' is not STAGE1_EPOCHS+STAGE2_EPOCHS with both at least 1")
        variants.append((int(first), int(second)))
    return variants


@dataclass(frozen=True)
class Method:
    """One compared model: a single stage of ``epochs`` or a cascade of ``stages`` = (stage-1, stage-2) epochs,
    trained for the first ``seeds`` seeds."""

    name: str
    seeds: int
    epochs: int = 0
    stages: tuple[int, int] | None = None

    @property
    def folder(self) -> str:
        """Run / prediction folder stem: ``single``, ``single_88``, ``cascade_8+8``."""
        if self.stages is None:
            return "single" if self.name == SINGLE else f"single_{self.epochs}"
        return self.name.replace(" ", "_")

    @property
    def iterations_epochs(self) -> int:
        return self.epochs if self.stages is None else sum(self.stages)


def build_methods(args) -> list[Method]:
    methods = [Method(SINGLE, args.seeds, epochs=args.epochs)]
    if args.long_single:
        methods.append(Method(f"single stage {args.long_single} epochs", min(args.long_seeds, args.seeds),
                              epochs=args.long_single))
    return methods + [Method(f"cascade {a}+{b}", args.seeds, stages=(a, b)) for a, b in parse_variants(args.variants)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("benchmark_data/cascade"))
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--test-cases", type=int, default=4)
    parser.add_argument("--spacing", type=float, default=1.5)
    parser.add_argument("--epochs", type=int, default=16, help="Single-stage epochs.")
    parser.add_argument("--variants", default="8+8,4+12,8+80",
                        help="Cascade runs as STAGE1_EPOCHS+STAGE2_EPOCHS, comma-separated.")
    parser.add_argument("--long-single", type=int, default=0, help="Also a single stage trained this many epochs "
                        "(e.g. the iterations of the longest cascade); 0 = off.")
    parser.add_argument("--long-seeds", type=int, default=1, help="Seeds of the --long-single run (the first N).")
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--coarse-spacing", type=float, default=4.0)
    parser.add_argument("--docs", type=Path, default=None)
    args = parser.parse_args()
    methods = build_methods(args)
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    step = TimedSteps(work)
    timings = step.timings

    data = work / "data"
    if not (data / "dataset.json").exists():
        step("generate", "data", "synth-brain", "--out", str(data), "--label-set", "basal-ganglia", "--cases",
             str(args.cases), "--test-cases", str(args.test_cases), "--spacing", str(args.spacing), "--seed", "3",
             "--overwrite")
    common = ["--iterations", str(args.iterations), "--val-fraction", "0", "--dim", "2d", "--axis", "2"]
    results: dict[str, dict] = {m.name: {} for m in methods}
    rois: dict[str, list] = {m.name: [] for m in methods if m.stages}
    for seed in range(args.seeds):
        for method in methods:
            if seed >= method.seeds:
                continue
            run = work / f"{method.folder}_s{seed}"
            prediction, evaluation = work / f"pred_{run.name}", work / f"eval_{run.name}.json"
            if not evaluation.exists():
                if method.stages is None:
                    step(f"train {run.name}", "train", str(data), "--out", str(run), "--epochs", str(method.epochs),
                         "--seed", str(seed), "--overwrite", *common)
                    step(f"predict {run.name}", "predict", str(run), str(data), "--out", str(prediction),
                         "--overwrite")
                else:
                    step(f"train {run.name}", "cascade", "train", str(data), "--out", str(run), "--stage1-epochs",
                         str(method.stages[0]), "--stage2-epochs", str(method.stages[1]), "--coarse-spacing",
                         str(args.coarse_spacing), "--seed", str(seed), "--overwrite", *common)
                    step(f"predict {run.name}", "cascade", "predict", str(run), str(data / "imagesTs"), "--out",
                         str(prediction), "--overwrite")
                step(f"evaluate {run.name}", "evaluate", str(prediction), str(data / "labelsTs"), "--dataset-json",
                     str(data / "dataset.json"), "--json", str(evaluation), "--overwrite")
            cases = json.loads(evaluation.read_text())["cases"]
            results[method.name][seed] = {case: entry["metrics"] for case, entry in cases.items()}
            if method.stages:
                rois[method.name] += json.loads((prediction / "cascade_rois.json").read_text())["cases"]
    summary = {"args": {k: str(v) for k, v in vars(args).items()}, "methods": [m.name for m in methods],
               "results": results, "timings": timings, "rois": rois}
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    section = render(summary, args, methods)
    print(section)
    if args.docs is not None:
        figure(work, data, methods, args.docs.parent / "images" / "cascade_basal_ganglia.png")
        roi_figure(work / f"{methods[-1].folder}_s0", data, args.docs.parent / "images" / "cascade_roi.png")
        write_section(args.docs, TITLE, section)


def figure(work: Path, data: Path, methods: list[Method], out_png: Path) -> None:
    """Ground truth and every method's prediction of the first held-out case (seed 0) over its T1."""
    import nibabel as nib

    from versaseg.viz.overlays import overlay_mosaic

    label = sorted((data / "labelsTs").glob("*.nii.gz"))[0]
    case = label.name.removesuffix(".nii.gz")
    nii = nib.load(data / "imagesTs" / f"{case}_0000.nii.gz")
    maps = [("ground truth", label)] + [(m.name, work / f"pred_{m.folder}_s0" / label.name) for m in methods]
    out_png.parent.mkdir(parents=True, exist_ok=True)
    overlay_mosaic(np.asarray(nii.dataobj, np.float32), [(name, np.asarray(nib.load(path).dataobj).astype(np.int16))
                                                          for name, path in maps], out_png, slices=1,
                   title=f"{case}: basal ganglia, single stage vs cascades (seed 0; cascade A+B = stage-1 + stage-2 "
                   "epochs)", spacing=tuple(float(z) for z in nii.header.get_zooms()[:3]),
                   class_names={1: "caudate", 2: "putamen", 3: "pallidum"})


def roi_figure(run: Path, data: Path, out_png: Path) -> None:
    """What `versaseg cascade predict --figures` draws (stage 1's region, the ROI, the labels inside it), for the
    first held-out case with its ground truth."""
    from versaseg.data.case import load_case
    from versaseg.inference.cascade import CascadePredictor
    from versaseg.io.dataset import load_dataset

    files = load_dataset(data).test_cases()[0]
    files.label = data / "labelsTs" / f"{files.case_id}.nii.gz"
    predictor = CascadePredictor(run)
    predictor.figure(predictor.predict_case(load_case(files)), out_png)


def _values(results: dict, name: str, structure: str, metric: str) -> dict[tuple, float]:
    """{(seed, case): value} of the finite values (HD95 is undefined where a structure is missed)."""
    return {(seed, case): m[structure][metric] for seed, cases in results[name].items() for case, m in cases.items()
            if m[structure].get(metric) is not None and np.isfinite(m[structure][metric])}


def _misses(results: dict, name: str, structure: str) -> tuple[int, int]:
    """(predictions where ``structure`` got Dice 0, all predictions)."""
    values = [m[structure]["dice"] for cases in results[name].values() for m in cases.values()]
    return sum(v == 0 for v in values), len(values)


def render(summary: dict, args, methods: list[Method]) -> str:
    from scipy import stats

    results, timings = summary["results"], summary["timings"]

    def seconds(kind: str, method: Method) -> float:
        values = [v for k, v in timings.items() if k.startswith(f"{kind} {method.folder}_s")]
        return float(np.mean(values)) if values else float("nan")

    def budget(method: Method) -> str:
        ratio = method.iterations_epochs / args.epochs
        same = "the reference" if method.name == SINGLE else "same iterations" if ratio == 1 else \
            f"{ratio:.1f}x the iterations"
        seeds = "" if method.seeds == args.seeds else f", seed{'s' if method.seeds > 1 else ''} " \
            f"{', '.join(str(s) for s in range(method.seeds))} only"
        if method.stages is None:
            return f"{method.epochs} epochs ({same}{seeds})"
        return f"stage 1 {method.stages[0]} + stage 2 {method.stages[1]} epochs ({same}{seeds})"

    lines = [TITLE, "", f"`python benchmarks/cascade.py` on {cpu_model()} (2 cores), no GPU: {args.cases} training "
             f"and {args.test_cases} held-out synthetic brains at {args.spacing} mm (`--labels basal-ganglia`), seeds "
             f"0..{args.seeds - 1}, {args.iterations} iterations per epoch, batch 16, 2D `unet` (defaults) in every "
             f"stage. Single stage: whole axial slices. Cascade (`versaseg cascade train`, defaults otherwise): "
             f"stage 1 on the volumes resampled to {args.coarse_spacing} mm with the three structures merged, stage 2 "
             "on full-resolution crops (ROI + 12 mm margin). Runs: "
             + "; ".join(f"**{m.name}**: {budget(m)}, training {seconds('train', m):.0f} s" for m in methods)
             + ". Mean ± sd over seeds x held-out cases; in brackets the median paired difference to the single stage "
             "and the p-value of a Wilcoxon signed-rank test over the (seed, case) pairs. 'missed' counts predictions "
             "with Dice 0 (no overlap); HD95 is undefined where a structure is not predicted at all and is left out "
             "of its mean.", "",
             "| structure | metric | " + " | ".join(m.name for m in methods) + " |",
             "|---|---|" + "---:|" * len(methods)]
    for structure in STRUCTURES:
        for metric in ("dice", "hd95", "missed"):
            digits = 3 if metric == "dice" else 1
            cells = []
            for name in (m.name for m in methods):
                if metric == "missed":
                    missed, total = _misses(results, name, structure)
                    cells.append(f"{missed} / {total}")
                    continue
                values = _values(results, name, structure, metric)
                if not values:
                    cells.append("–")
                    continue
                cell = f"{np.mean(list(values.values())):.{digits}f} ± {np.std(list(values.values())):.{digits}f}"
                if name != SINGLE:
                    reference = _values(results, SINGLE, structure, metric)
                    keys = sorted(set(values) & set(reference))
                    x, y = np.array([reference[k] for k in keys]), np.array([values[k] for k in keys])
                    if keys:
                        p = f"p {stats.wilcoxon(y, x).pvalue:.2g}" if len(keys) >= 2 and np.any(x != y) else "p –"
                        cell += f" ({np.median(y - x):+.{digits}f}, {p})"
                cells.append(cell)
            label = {"dice": "Dice", "hd95": "HD95 (mm)", "missed": "missed"}[metric]
            lines.append(f"| {structure} | {label} | " + " | ".join(cells) + " |")
    lines += ["", "Stage 1's region of interest (fraction of the volume) and whole-volume fallbacks:", ""]
    for name, entries in summary["rois"].items():
        fractions = [r["roi_fraction"] for r in entries]
        lines.append(f"- {name}: mean {np.mean(fractions) * 100:.1f} % (min {min(fractions) * 100:.1f} %, max "
                     f"{max(fractions) * 100:.1f} %); fallback in {sum(r['fallback_whole_volume'] for r in entries)} "
                     f"of {len(entries)} predictions.")
    lines += ["", "Wall time per seed (s), training (cascade: both stages and building the derived datasets) / "
              f"prediction of {args.test_cases} cases: "
              + "; ".join(f"{m.name} {seconds('train', m):.0f} / {seconds('predict', m):.0f}" for m in methods)
              + ".", "", "![cascade](images/cascade_basal_ganglia.png)", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
