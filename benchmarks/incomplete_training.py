"""Training on incomplete labels: a segmentation model trained on (a) sparse noisy labels (ignore label), (b) the
same labels completed by ``versaseg complete``, (c) the full labels (upper bound), scored on held-out cases.

Everything runs through the CLI, as a user would:

    versaseg data synth-brain --out FULL --label-set structures --cases N --test-cases M --spacing S
    versaseg data degrade FULL SPARSE --dataset --every K --noisy-fraction F --ignore-label 9
    versaseg complete SPARSE/imagesTr/CASE_000*.nii.gz --label SPARSE/labelsTr/CASE.nii.gz --ignore-label 9 ...
    versaseg train DATASET --out RUN ...  (a, b, c with identical settings and seed)
    versaseg predict RUN FULL --out PRED; versaseg evaluate PRED FULL/labelsTs --dataset-json FULL/dataset.json

    python benchmarks/incomplete_training.py --work benchmark_data/incomplete --docs docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import cpu_model, versaseg, write_section  # noqa: E402

TITLE = "## Training on incomplete labels"
IGNORE = 9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("benchmark_data/incomplete"))
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--test-cases", type=int, default=3)
    parser.add_argument("--spacing", type=float, default=2.0)
    parser.add_argument("--every", type=int, default=8)
    parser.add_argument("--noisy-fraction", type=float, default=0.3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--network", default="unet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", type=Path, default=None)
    args = parser.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    full, sparse, completed = work / "full", work / "sparse", work / "completed"
    timings_file = work / "timings.json"
    timings: dict[str, float] = json.loads(timings_file.read_text()) if timings_file.exists() else {}
    if not (full / "dataset.json").exists():
        timings["generate"] = versaseg("data", "synth-brain", "--out", str(full), "--label-set", "structures",
                                       "--cases",
                                       str(args.cases), "--test-cases", str(args.test_cases), "--spacing",
                                       str(args.spacing), "--seed", str(args.seed + 11), "--overwrite")
    if not (sparse / "dataset.json").exists():
        timings["degrade"] = versaseg("data", "degrade", str(full), "--out", str(sparse), "--dataset", "--axis", "2",
                                      "--every", str(args.every), "--offset", str(args.every // 2),
                                      "--noisy-fraction", str(args.noisy_fraction), "--ignore-label", str(IGNORE),
                                      "--seed", str(args.seed), "--overwrite")
    if not (completed / "dataset.json").exists() or len(list((completed / "labelsTr").glob("*.nii.gz"))) < len(
            list((sparse / "labelsTr").glob("*.nii.gz"))):
        timings["complete"] = complete_dataset(sparse, completed)
    results = {}
    for name, dataset in (("sparse", sparse), ("completed", completed), ("full", full)):
        run, predictions = work / f"run_{name}", work / f"pred_{name}"
        if not (run / "model.pt").exists() or not (work / f"eval_{name}.json").exists():
            timings[f"train {name}"] = versaseg(
                "train", str(dataset), "--out", str(run), "--network", args.network, "--dim", "2d", "--axis", "2",
                "--epochs", str(args.epochs), "--iterations", str(args.iterations), "--val-fraction", "0",
                "--seed", str(args.seed), "--overwrite")
            versaseg("predict", str(run), str(full), "--out", str(predictions), "--overwrite")
            versaseg("evaluate", str(predictions), str(full / "labelsTs"), "--dataset-json", str(full / "dataset.json"),
                     "--json", str(work / f"eval_{name}.json"), "--overwrite")
        results[name] = json.loads((work / f"eval_{name}.json").read_text())
    timings_file.write_text(json.dumps(timings, indent=2))
    section = render(results, args, timings)
    print(section)
    if args.docs is not None:
        write_section(args.docs, TITLE, section)


def dataset_without_labels(source: Path, out: Path) -> dict:
    """``out`` with source's images and test labels (copied) and an empty labelsTr; source's dataset.json spec
    without the ignore label, for the caller to write once the training labels are in place."""
    (out / "labelsTr").mkdir(parents=True, exist_ok=True)
    for folder in ("imagesTr", "imagesTs", "labelsTs"):
        if (source / folder).exists() and not (out / folder).exists():
            shutil.copytree(source / folder, out / folder)
    spec = json.loads((source / "dataset.json").read_text())
    spec["labels"] = {name: value for name, value in spec["labels"].items() if name != "ignore"}
    spec.pop("versaseg_degrade", None)
    return spec


def complete_dataset(sparse: Path, out: Path, run=versaseg) -> float:
    """``versaseg complete`` every sparse training label into a copy of the dataset without the ignore label
    (``run(*args)`` runs the CLI; cases already completed are kept); dataset.json is written last. The wall time."""
    started = time.perf_counter()
    spec = dataset_without_labels(sparse, out)
    for label in sorted((sparse / "labelsTr").glob("*.nii.gz")):
        target = out / "labelsTr" / label.name
        if target.exists():
            continue
        case = label.name.removesuffix(".nii.gz")
        images = sorted((sparse / "imagesTr").glob(f"{case}_*.nii.gz"))
        run("complete", *map(str, images), "--label", str(label), "--ignore-label", str(IGNORE),
            "--out", str(target), "--report", str(out / f"{case}_report.json"), "--overwrite")
        print(f"completed {case}", flush=True)
    (out / "dataset.json").write_text(json.dumps(spec, indent=2))
    return time.perf_counter() - started


def render(results: dict, args, timings: dict) -> str:
    first = next(iter(results.values()))
    classes = [name for name in first["aggregates"] if name != "mean foreground"]
    lines = [TITLE, "",
             f"`python benchmarks/incomplete_training.py` on {cpu_model()} (2 cores): {args.cases} training and "
             f"{args.test_cases} held-out synthetic brains at {args.spacing} mm (`--labels structures`); training "
             f"labels keep every {args.every}th axial slice with {round(args.noisy_fraction * 100)} % of the kept "
             f"slices corrupted. The same 2D `{args.network}` ({args.epochs} epochs x {args.iterations} iterations, "
             f"seed {args.seed}) is trained on (a) the sparse labels (ignore label), (b) the labels completed by "
             "`versaseg complete`, (c) the full labels. Test-set Dice / HD95 (mm), mean over the held-out cases.", "",
             "| training labels | " + " | ".join(f"Dice {c}" for c in classes) + " | mean Dice | "
             + " | ".join(f"HD95 {c}" for c in classes) + " |",
             "|---" * (2 * len(classes) + 2) + "|"]
    for name, result in results.items():
        aggregates = result["aggregates"]
        dice = [aggregates[c]["dice"]["mean"] for c in classes]
        hd = [aggregates[c]["hd95"]["mean"] for c in classes]
        lines.append(f"| {name} | " + " | ".join(f"{d:.3f}" for d in dice) + f" | **{sum(dice) / len(dice):.3f}** | "
                     + " | ".join("–" if h is None else f"{h:.1f}" for h in hd) + " |")
    lines += ["", "Wall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + ".", ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
