"""Loss study benchmark: the 12 cross-entropy / Dice x weighting losses on synthetic brains, binary (vessels) and
multi-class (cerebrum, cerebellum, brainstem, vessels), with ``versaseg study losses`` run from the CLI as a user
would, plus the wall time of the ``--quick`` setting.

    versaseg data synth-brain --out DATA --label-set vessels|brain --cases N --spacing S --seed 7
    versaseg study losses DATA --out STUDY --test-split F --epochs E --iterations I --network-kwargs ...
    versaseg data synth-brain --out QUICK --cases 10 --spacing 2.5; versaseg study losses QUICK --out Q --quick

    python benchmarks/loss_study.py --work benchmark_data/loss_study --docs docs/benchmarks.md

Everything lands under ``--work`` and is reused: a study re-run with the same command resumes (finished runs are
kept), so the script can be killed and started again. ``--docs`` rewrites the "## Loss study" section of
docs/benchmarks.md and copies the box plots to docs/images/loss_study/.

The research finding this is set against (the programme's loss-weighting comparison on MR cisternography and
angiography): Dice with focal (predicted-probability) weighting was best for the binary vessel task; cross-entropy with
distance-map weighting was best for the multi-class task.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import cpu_model, versaseg, write_section  # noqa: E402

TITLE = "## Loss study"
TASKS = {"binary": "vessels", "multiclass": "brain"}
RESEARCH = {"binary": "dice_focal", "multiclass": "ce_dtm"}
PLOTS = {"binary": ("vessels_dice", "vessels_hd95"), "multiclass": ("vessels_dice", "brainstem_dice")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("benchmark_data/loss_study"))
    parser.add_argument("--parts", default="quick,binary,multiclass", help="Comma list of quick, binary, multiclass.")
    parser.add_argument("--cases", type=int, default=16, help="Cases per task dataset (split by --test-split).")
    parser.add_argument("--spacing", type=float, default=2.0)
    parser.add_argument("--test-split", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--network-kwargs", default='{"depth": 4, "base_width": 16}')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", type=Path, default=None)
    args = parser.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    timings_file = work / "timings.json"
    timings: dict[str, float] = json.loads(timings_file.read_text()) if timings_file.exists() else {}

    def save(key: str, seconds: float) -> None:
        timings[key] = seconds
        timings_file.write_text(json.dumps(timings, indent=2))

    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if "quick" in parts and "quick study" not in timings:
        data = work / "quick_data"
        save("quick generate", versaseg("data", "synth-brain", "--out", str(data), "--cases", "10", "--spacing", "2.5",
                                        "--overwrite", log=work / "quick.log"))
        shutil.rmtree(work / "quick", ignore_errors=True)
        save("quick study", versaseg("study", "losses", str(data), "--out", str(work / "quick"), "--quick",
                                     log=work / "quick.log"))
    for task in ("binary", "multiclass"):
        if task not in parts:
            continue
        data = work / f"{task}_data"
        if not (data / "dataset.json").exists():
            save(f"{task} generate", versaseg("data", "synth-brain", "--out", str(data), "--label-set", TASKS[task],
                                              "--cases",
                                              str(args.cases), "--spacing", str(args.spacing), "--seed", "7",
                                              "--overwrite", log=work / f"{task}.log"))
        if not (work / task / "summary.json").exists():
            save(f"{task} study", versaseg(
                "study", "losses", str(data), "--out", str(work / task), "--test-split", str(args.test_split),
                "--epochs", str(args.epochs), "--iterations", str(args.iterations), "--network-kwargs",
                args.network_kwargs, "--seed", str(args.seed), log=work / f"{task}.log"))
    section = render(work, args, timings)
    print(section)
    if args.docs is not None:
        images = args.docs.parent / "images" / "loss_study"
        images.mkdir(parents=True, exist_ok=True)
        for task, plots in PLOTS.items():
            for plot in plots:
                source = work / task / "plots" / f"box_{plot}.png"
                if source.exists():
                    shutil.copyfile(source, images / f"{task}_{plot}.png")
        write_section(args.docs, TITLE, section)


def _table(summary: dict, classes: list[str]) -> list[str]:
    """Markdown rows: loss, rank score, significance score, Dice and HD95 per class (significance in brackets)."""
    losses = sorted(summary["losses"], key=lambda loss: summary["losses"][loss]["rank_score"])
    lines = ["| loss | rank score | significance score | " + " | ".join(f"Dice {c}" for c in classes) + " | "
             + " | ".join(f"HD95 {c} (mm)" for c in classes) + " |", "|---" * (3 + 2 * len(classes)) + "|"]
    for loss in losses:
        entry = summary["losses"][loss]
        lines.append(f"| {loss} | {entry['rank_score']:.2f} | {entry['significance_score']} | "
                     + " | ".join(_cell(entry, c, "dice", 3) for c in classes) + " | "
                     + " | ".join(_cell(entry, c, "hd95", 1) for c in classes) + " |")
    return lines


def _cell(entry: dict, name: str, metric: str, digits: int) -> str:
    """'mean (losses beaten)' of one loss's summary entry, '–' where no test case had a finite value."""
    value = entry["mean"][f"{name}/{metric}"]
    beaten = entry["significance"][f"{name}/{metric}"]
    return "–" if value != value else f"{value:.{digits}f} ({beaten})"


def render(work: Path, args, timings: dict) -> str:
    lines = [TITLE, "", f"`python benchmarks/loss_study.py` on {cpu_model()} (2 cores), no GPU."]
    if "quick study" in timings:
        quick = json.loads((work / "quick" / "summary.json").read_text())
        lines += ["", "**`--quick` setting** (the issue's end-to-end check): `versaseg data synth-brain --out QUICK "
                  "--cases 10 --spacing 2.5` then `versaseg study losses QUICK --out Q --quick` with all 12 default "
                  "losses "
                  f"(3 test cases, 4 classes): generation {timings['quick generate']:.0f} s, study "
                  f"**{timings['quick study']:.0f} s ({timings['quick study'] / 60:.1f} min)** (target: under 15 min). "
                  f"Best rank score {min(v['rank_score'] for v in quick['losses'].values()):.2f}; with 3 test cases "
                  "no Wilcoxon test can reach p < 0.05, so every significance score is 0 - the quick setting checks "
                  "the pipeline, it does not pick a loss."]
    for task in ("binary", "multiclass"):
        summary_file = work / task / "summary.json"
        if not summary_file.exists():
            continue
        summary = json.loads(summary_file.read_text())
        study = json.loads((work / task / "study.json").read_text())
        classes = summary["classes"]
        train, test = study["splits"][0]
        ordered = sorted(summary["losses"], key=lambda loss: summary["losses"][loss]["rank_score"])
        by_significance = max(summary["losses"], key=lambda loss: summary["losses"][loss]["significance_score"])
        research = RESEARCH[task]
        position = ordered.index(research) + 1
        kwargs = study["settings"]["network_kwargs"]
        lines += ["", f"### {'Binary: vessels' if task == 'binary' else 'Multi-class: ' + ', '.join(classes)}", "",
                  f"`--labels {TASKS[task]}`, {len(train)} training and {len(test)} test synthetic brains at "
                  f"{args.spacing} mm (all three channels); 2D `unet` {kwargs}, axial slices, "
                  f"{study['settings']['epochs']} epochs x {study['settings']['iterations']} iterations, seed "
                  f"{study['settings']['seed']}, identical for every loss. Study wall time "
                  f"{timings.get(task + ' study', float('nan')) / 60:.0f} min. Mean over the test cases; in brackets "
                  "the number of losses beaten on that metric (Wilcoxon signed-rank, p < 0.05, paired by case). "
                  "Rank score = mean rank over classes and the four metrics (Dice, HD95, ASSD, sensitivity; "
                  "1 = best); significance score = sum of losses beaten over classes and metrics.", ""]
        lines += _table(summary, classes)
        lines += ["", f"Best rank score: **{ordered[0]}** ({summary['losses'][ordered[0]]['rank_score']:.2f}); "
                  f"highest significance score: **{by_significance}** "
                  f"({summary['losses'][by_significance]['significance_score']}). The research's best for this "
                  f"task, `{research}`, ranks {position} of {len(ordered)} here "
                  f"(rank score {summary['losses'][research]['rank_score']:.2f}).", ""]
        unlearned = {c: [loss for loss in ordered if summary["losses"][loss]["mean"][f"{c}/dice"] < 0.05]
                     for c in classes}
        unlearned = {c: losses for c, losses in unlearned.items() if losses}
        if unlearned:
            lines += ["Not learned at this budget (mean test Dice < 0.05): " + "; ".join(
                f"{c} by {len(losses)} of {len(ordered)} losses ({', '.join(losses)})"
                for c, losses in unlearned.items()) + ". Their HD95/ASSD are undefined ('–') and rank last; the "
                "ranking then says which losses learn a small class early, not which segment it best once "
                "trained.", ""]
        for plot in PLOTS[task]:
            lines.append(f"![{task} {plot}](images/loss_study/{task}_{plot}.png)")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
