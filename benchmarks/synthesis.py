"""Modality synthesis benchmark: does a pix2pix-synthesised TOF channel help segment vessels from heavy T2?

Everything runs through the CLI, as a user would:

    versaseg data synth-brain --out DATA --label-set brain --cases N --test-cases M --spacing S --seed 5
    versaseg synth train DATA --source T2 --target TOF --out PIX2PIX --epochs E --iterations I
    versaseg synth augment PIX2PIX DATA --out AUGMENTED            (adds channel 3, "synthetic TOF")
    three datasets with the same binary vessel labels and the channels T2 | T2 + synthetic TOF | T2 + real TOF
    versaseg train SUBSET --out RUN --seed s ...; versaseg predict RUN SUBSET --out PRED; versaseg evaluate ...

Segmentation is scored per held-out case (vessel Dice, HD95); the pix2pix model never sees the test cases. The
paired Wilcoxon signed-rank test (scipy.stats) compares T2 alone with T2 + synthetic TOF over (seed, case) pairs.
Translation quality (MAE, PSNR, SSIM of synthetic against real TOF inside the brain mask, in the target's scaled
[-1, 1] units, :func:`versaseg.evaluation.image_quality.image_quality`) is measured on the test cases.

    python benchmarks/synthesis.py --quick --work benchmark_data/synthesis_quick --docs docs/benchmarks.md
    python benchmarks/synthesis.py --work benchmark_data/synthesis --docs docs/benchmarks.md

Finished steps are reused (each writes its output atomically), so a killed benchmark continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import TimedSteps, cpu_model, write_section  # noqa: E402

TITLE = "## Modality synthesis"
VESSELS = 4  # the 'brain' label set's vessel value
CHANNELS = {"T2": ("T2",), "T2 + synthetic TOF": ("T2", "synthetic TOF"), "T2 + real TOF": ("T2", "TOF")}
SETTINGS = {  # quick: the issue's < 20 min check; full: the benchmark's numbers
    "quick": {"cases": 8, "test_cases": 4, "spacing": 2.5, "synth_epochs": 4, "synth_iterations": 50,
              "seg_epochs": 8, "seg_iterations": 25, "seeds": 2},
    "full": {"cases": 12, "test_cases": 6, "spacing": 2.0, "synth_epochs": 12, "synth_iterations": 50,
             "seg_epochs": 16, "seg_iterations": 25, "seeds": 3},
}


def channel_subset(source: Path, channels: tuple[str, ...], out: Path) -> None:
    """A dataset holding ``channels`` of ``source`` (renumbered _0000, _0001, ...) and binary vessel labels."""
    import nibabel as nib

    if (out / "dataset.json").exists():
        return
    spec = json.loads((source / "dataset.json").read_text())
    index = {name: int(i) for i, name in spec["channel_names"].items()}
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for images, labels in (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs")):
        (tmp / images).mkdir(parents=True)
        (tmp / labels).mkdir(parents=True)
        for label in sorted((source / labels).glob("*.nii.gz")):
            case = label.name.removesuffix(".nii.gz")
            for new, name in enumerate(channels):
                shutil.copyfile(source / images / f"{case}_{index[name]:04d}.nii.gz",
                                tmp / images / f"{case}_{new:04d}.nii.gz")
            nii = nib.load(label)
            binary = (np.asarray(nii.dataobj) == VESSELS).astype(np.uint8)
            nib.save(nib.Nifti1Image(binary, nii.affine, nii.header), tmp / labels / label.name)
    spec["channel_names"] = {str(i): name for i, name in enumerate(channels)}
    spec["labels"] = {"background": 0, "vessels": 1}
    spec.pop("class_frequencies", None)
    (tmp / "dataset.json").write_text(json.dumps(spec, indent=2))
    tmp.rename(out)


def translation_quality(data: Path, augmented: Path) -> dict:
    """Mean (and per-case) MAE, PSNR, SSIM of the synthetic against the real TOF of the test cases, brain mask."""
    import nibabel as nib

    from versaseg.data.pairs import intensity_range, scale_to_unit
    from versaseg.evaluation.image_quality import image_quality

    config = json.loads((data.parent / "pix2pix" / "config.json").read_text())
    rows = {}
    for label in sorted((data / "labelsTs").glob("*.nii.gz")):
        case = label.name.removesuffix(".nii.gz")
        real = np.asarray(nib.load(data / "imagesTs" / f"{case}_0002.nii.gz").dataobj, np.float32)
        fake = np.asarray(nib.load(augmented / "imagesTs" / f"{case}_0003.nii.gz").dataobj, np.float32)
        mask = np.asarray(nib.load(label).dataobj) > 0
        real_unit = scale_to_unit(real, *intensity_range(real, config["percentiles"]))
        fake_unit = scale_to_unit(fake, *config["target_range"])
        rows[case] = image_quality(fake_unit, real_unit, mask, 2.0, ssim_axis=config.get("axis", 2))
    return {"cases": rows, **{m: float(np.mean([r[m] for r in rows.values()])) for m in ("mae", "psnr", "ssim")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="The small setting (under 20 min on 2 CPU cores).")
    parser.add_argument("--docs", type=Path, default=None)
    args = parser.parse_args()
    setting = "quick" if args.quick else "full"
    s = SETTINGS[setting]
    work = args.work or Path(f"benchmark_data/synthesis_{setting}")
    work.mkdir(parents=True, exist_ok=True)
    step = TimedSteps(work)
    timings = step.timings

    data, pix2pix, augmented = work / "data", work / "pix2pix", work / "augmented"
    if not (data / "dataset.json").exists():
        step("generate", "data", "synth-brain", "--out", str(data), "--label-set", "brain", "--cases", str(s["cases"]),
             "--test-cases", str(s["test_cases"]), "--spacing", str(s["spacing"]), "--seed", "5", "--overwrite")
    if not (pix2pix / "model.pt").exists():
        resume = ["--resume"] if (pix2pix / "checkpoint.pt").exists() else ["--overwrite"]
        step("synth train", "synth", "train", str(data), "--source", "T2", "--target", "TOF", "--out", str(pix2pix),
             "--epochs", str(s["synth_epochs"]), "--iterations", str(s["synth_iterations"]), "--seed", "0", *resume)
    if not (augmented / "dataset.json").exists():
        step("synth augment", "synth", "augment", str(pix2pix), str(data), "--out", str(augmented), "--overwrite")
    quality = translation_quality(data, augmented)
    results: dict[str, dict] = {}
    for name, channels in CHANNELS.items():
        subset = work / ("subset_" + "_".join(c.replace(" ", "-") for c in channels))
        channel_subset(augmented, channels, subset)
        results[name] = {}
        for seed in range(s["seeds"]):
            run, pred, evaluation = subset / f"run_s{seed}", subset / f"pred_s{seed}", subset / f"eval_s{seed}.json"
            if not evaluation.exists():
                step(f"train {name} seed {seed}", "train", str(subset), "--out", str(run), "--dim", "2d", "--axis",
                     "2", "--epochs", str(s["seg_epochs"]), "--iterations", str(s["seg_iterations"]),
                     "--val-fraction", "0", "--seed", str(seed), "--overwrite")
                step(f"predict {name} seed {seed}", "predict", str(run), str(subset), "--out", str(pred),
                     "--overwrite")
                step(f"evaluate {name} seed {seed}", "evaluate", str(pred), str(subset / "labelsTs"), "--dataset-json",
                     str(subset / "dataset.json"), "--json", str(evaluation), "--overwrite")
            cases = json.loads(evaluation.read_text())["cases"]
            results[name][seed] = {case: entry["metrics"]["vessels"] for case, entry in cases.items()}
    summary = {"setting": setting, **s, "quality": quality, "results": results, "timings": timings}
    (work / "summary.json").write_text(json.dumps(summary, indent=2))
    section = render(summary, work)
    print(section)
    if args.docs is not None:
        figure = args.docs.parent / "images" / f"synthesis_{setting}.png"
        samples = sorted((pix2pix / "samples").glob("epoch_*.png"))
        if samples:
            figure.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(samples[-1], figure)
        write_section(args.docs, TITLE if setting == "full" else TITLE + " (quick setting)", section)


def _pairs(results: dict, a: str, b: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Values of ``metric`` for configurations a and b over the (seed, case) pairs where both are finite."""
    xs, ys = [], []
    for seed, cases in results[a].items():
        for case, metrics in cases.items():
            x, y = metrics.get(metric), results[b][seed][case].get(metric)
            if x is not None and y is not None and np.isfinite(x) and np.isfinite(y):
                xs.append(x)
                ys.append(y)
    return np.array(xs), np.array(ys)


def render(summary: dict, work: Path) -> str:
    from scipy import stats

    setting, results, quality, timings = summary["setting"], summary["results"], summary["quality"], summary["timings"]
    total = sum(timings.values())
    title = TITLE if setting == "full" else TITLE + " (quick setting)"
    lines = [title, "", f"`python benchmarks/synthesis.py{' --quick' if setting == 'quick' else ''}` on "
             f"{cpu_model()} (2 cores), no GPU; total wall time **{total / 60:.1f} min**"
             + (" (target: under 20 min)." if setting == "quick" else "."), "",
             f"{summary['cases']} training and {summary['test_cases']} held-out synthetic brains at "
             f"{summary['spacing']} mm (`--labels brain`, channels T1, heavy T2, TOF). pix2pix T2 -> TOF "
             f"(`versaseg synth train`, defaults: 2D U-Net generator depth 5 width 32, PatchGAN 70x70, BCE + 100 L1) "
             f"for {summary['synth_epochs']} epochs x {summary['synth_iterations']} iterations of 4 slices "
             f"({timings.get('synth train', float('nan')) / 60:.1f} min); `versaseg synth augment` adds the synthetic "
             f"TOF to every case. Vessel segmentation: the same binary 2D `unet` (defaults, {summary['seg_epochs']} "
             f"epochs x {summary['seg_iterations']} iterations, seeds 0..{summary['seeds'] - 1}) trained on each "
             "channel set, scored on the held-out cases.", "",
             "Translation quality on the held-out cases (synthetic vs real TOF inside the brain mask, in the "
             "target's scaled [-1, 1] units; PSNR with data range 2):", "",
             "| | MAE | PSNR (dB) | SSIM |", "|---|---:|---:|---:|",
             f"| mean over {len(quality['cases'])} cases | {quality['mae']:.3f} | {quality['psnr']:.1f} | "
             f"{quality['ssim']:.3f} |", "",
             "Vessel segmentation (mean ± standard deviation over seeds x held-out cases):", "",
             "| input channels | Dice | HD95 (mm) | sensitivity | precision |", "|---|---:|---:|---:|---:|"]
    for name in results:
        cells = []
        for metric in ("dice", "hd95", "sensitivity", "precision"):
            values = np.array([m[metric] for cases in results[name].values() for m in cases.values()
                               if m.get(metric) is not None and np.isfinite(m[metric])])
            cells.append(f"{values.mean():.3f} ± {values.std():.3f}" if metric != "hd95" and len(values) else
                         f"{values.mean():.1f} ± {values.std():.1f}" if len(values) else "–")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    for metric in ("dice", "hd95"):
        x, y = _pairs(results, "T2", "T2 + synthetic TOF", metric)
        if len(x) >= 2 and np.any(x != y):
            test = stats.wilcoxon(y, x)
            better = (np.median(y - x) > 0) == (metric == "dice")
            lines.append(f"- {metric}: T2 + synthetic TOF minus T2, median paired difference {np.median(y - x):+.3f} "
                         f"over {len(x)} (seed, case) pairs; Wilcoxon signed-rank p = {test.pvalue:.3g} "
                         f"({'in favour of' if better else 'against'} the synthetic channel"
                         f"{', significant at 0.05' if test.pvalue < 0.05 else ', not significant at 0.05'}).")
    figure = f"images/synthesis_{setting}.png"
    lines += ["", "pix2pix validation samples after the last epoch (source T2 | synthetic TOF | real TOF):", "",
              f"![pix2pix samples]({figure})", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
