"""docs/reproduction.md from the committed raw results (benchmarks/results/*.jsonl) only: one summary row per
claim, a section per claim with its tables and tests, the validation curves (docs/images/reproduction/), and the
runs still pending. ``python benchmarks/reproduce.py report`` calls :func:`write_report`."""

from __future__ import annotations

from pathlib import Path

import claims_report as claims
from common import RESULTS, Store

IMAGES = "images/reproduction"


def write_report(path: Path) -> None:
    from versaseg.io.atomic import write_text_atomic

    rows = {claim: current(claim, Store(RESULTS / f"reproduction_{claim}.jsonl").rows()) for claim in "abcdef"}
    rows["completion"] = Store(RESULTS / "completion.jsonl").rows()
    rows["c_completion"] = Store(RESULTS / "reproduction_c_completion.jsonl").rows()
    images = path.parent / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    sections = [claims.claim_a(rows), claims.claim_b(rows), claims.claim_c(rows), claims.claim_d(rows),
                claims.claim_e(rows), claims.claim_f(rows)]
    for claim, (_, _, curves) in zip("abcdef", sections, strict=True):
        if curves:
            draw_curves(curves, images / f"curves_{claim}.png")
    text = [header(rows), summary_table(sections), *[s[1] for s in sections], convergence_table(rows),
            pending_list(rows)]
    write_text_atomic(path, "\n".join(text))


def current(claim: str, rows: list[dict]) -> list[dict]:
    """The rows of the claim's current jobs (a row of a changed budget, say, has a key no job has any more) and the
    rows benchmarks/completion.py wrote (keys not starting with the claim's letter)."""
    from studies import CLAIMS

    keys = {job.key for job in CLAIMS[claim]()}
    return [r for r in rows if r["key"] in keys or not r["key"].startswith(f"{claim}|")]


def header(rows: dict) -> str:
    machines = sorted({r["machine"] for claim in "abcdef" for r in rows[claim] if "machine" in r})
    if any("machine" not in r for claim in "abcdef" for r in rows[claim]):
        machines.append("not recorded by older completion.py rows")
    commits = sorted({r.get("commit", "?") for claim in "abcdef" for r in rows[claim]})
    return "\n".join([
        "# Reproducing the research's claims", "",
        "Each claim of the research behind versaseg, tested on the synthetic brains (`versaseg data synth-brain`) "
        "at budgets where the models have stopped learning, with paired tests over held-out cases. Everything on "
        "this page is rebuilt from the committed raw results (`benchmarks/results/reproduction_*.jsonl`, one line per "
        "finished run with its commit, machine and date, plus `benchmarks/results/completion.jsonl` for claim a) by "
        "one command:", "",
        "```bash", "python benchmarks/reproduce.py report", "```", "",
        "The runs themselves: `python benchmarks/reproduce.py run --claims b,f,a,d,e,c` (resumes: a run already "
        "in the results is skipped; `status` lists what is pending). Claim a's budget runs are "
        f"`{claims.A_COMMAND}`, started by `run --claims a`.", "",
        "**How the budgets were set and judged.** Every segmentation model of a comparison has the same budget: "
        f"the claim's epochs ({', '.join(f'{c}: {e}' for c, e in claims.budgets().items())}) x "
        f"{claims.SEG_ITERATIONS} batches of 16 axial slices (2D `unet`-family "
        "defaults: depth 4, base width 16; default augmentation; AdamW 2e-3, polynomial decay), validated after "
        "every epoch on the held-out fifth of the training cases. A run counts as **plateaued** when the mean "
        "validation Dice over the last fifth of its epochs (at least 3) is less than 0.01 above the mean of the "
        "fifth before it (pix2pix: the validation MAE falls by less than 0.01). The section "
        "[Convergence](#convergence) lists every run's verdict; the curves are drawn under each claim. "
        "Statistics: two-sided Wilcoxon signed-rank tests (scipy.stats) paired by held-out case, the median paired "
        "difference, and Holm's correction over the family of tests named in each section.", "",
        f"Machines: {'; '.join(machines) or '–'}. Commits: {', '.join(commits) or '–'}. No GPU.", ""])


def summary_table(sections: list) -> str:
    lines = ["## Summary", "", "| claim | paper | ours (held-out cases; test) | verdict |", "|---|---|---|---|"]
    for summary, _, _ in sections:
        lines.append(f"| {summary['claim']} | {summary['paper']} | {summary['ours']} | {summary['verdict']} |")
    return "\n".join(lines) + "\n"


def convergence_table(rows: dict) -> str:
    lines = ['<a id="convergence"></a>', "## Convergence", "",
             "Every trained model: its last validation value, the plateau rule's gain (last fifth minus the fifth "
             "before) and verdict.", "", "",
             "| run | epochs | last validation | gain | plateaued |", "|---|---:|---:|---:|---|"]
    count, flat = 0, 0
    for claim in "bcdef":
        for row in rows[claim]:
            for name, curve, rule in _curves_of(row):
                values = curve.get("val_dice_mean") or curve.get("val_mae")
                if not values:
                    continue
                count += 1
                flat += bool(rule and rule["plateaued"])
                gain = rule.get("gain") if rule else None
                verdict = "yes" if rule and rule["plateaued"] else "**no**"
                unit = "" if curve.get("val_dice_mean") else " (MAE)"
                lines.append(f"| `{name.replace('|', ' · ')}` | {curve['epoch'][-1]} | {values[-1]:.3f}{unit} | "
                             f"{'–' if gain is None else f'{gain:+.3f}'} | {verdict} |")
    lines[5] = f"{flat} of {count} runs plateaued.\n"
    return "\n".join(lines) + "\n"


def _curves_of(row: dict):
    if row.get("curve"):
        yield row["key"], row["curve"], row.get("plateau")
    if row.get("stage1_curve"):
        yield row["key"] + " (stage 1)", row["stage1_curve"], row.get("stage1_plateau")


def pending_list(rows: dict) -> str:
    from studies import CLAIMS

    lines = ["## Pending runs", ""]
    total = 0.0
    for claim, make in CLAIMS.items():
        done = {r["key"] for r in rows[claim]}
        missing = [job for job in make() if job.key not in done]
        if missing:
            total += sum(j.minutes for j in missing)
            lines.append(f"- claim {claim}: {len(missing)} run(s), about {sum(j.minutes for j in missing):.0f} min on "
                         f"2 cores: " + ", ".join(f"`{j.key}`" for j in missing))
    if len(lines) == 2:
        lines.append("None: every run of every claim is in the results.")
    else:
        lines.append(f"\nAbout {total / 60:.1f} h of CPU time in all; `python benchmarks/reproduce.py run` continues.")
    return "\n".join(lines) + "\n"


def draw_curves(groups: dict[str, dict[str, dict]], out: Path) -> None:
    """One panel per comparison group, one validation curve per arm (mean validation Dice, or MAE for pix2pix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(groups), figsize=(4.6 * len(groups), 3.4), squeeze=False)
    for ax, (title, arms) in zip(axes[0], groups.items(), strict=True):
        for arm, curve in arms.items():
            values = curve.get("val_dice_mean") or curve.get("val_mae")
            ax.plot(curve["epoch"], values, label=arm, lw=1.2)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation MAE" if "val_mae" in next(iter(arms.values())) else "validation mean Dice")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)

