"""One section of docs/reproduction.md per claim, computed from the stored rows. Each ``claim_x(rows)`` returns
(summary row, markdown section, validation curves to draw: {panel title: {arm: curve}})."""

from __future__ import annotations

from functools import partial

import numpy as np
from common import PLATEAU_GAIN
from stats import ALPHA, case_scores, finite, fmt_p, holm, mean_score, mean_sd, paired, verdict
from studies import D_FIRST_EPOCHS, EPOCHS, F_BUDGETS, LOSSES, NETWORKS, SEG_ITERATIONS

A_COMMAND = ('python benchmarks/completion.py --cases 3 --mni --methods "versaseg:epochs=6,versaseg:epochs=24,'
             'versaseg:epochs=48" '
             "--every 8 --noise 0.3 --axes 0,1,2 --results benchmarks/results/reproduction_a.jsonl")
COMPLETION_CLASSES = {"1": "cerebrum", "2": "cerebellum", "3": "brainstem", "4": "basal ganglia"}
IMAGES = "images/reproduction"
__all__ = ["EPOCHS", "SEG_ITERATIONS", "A_COMMAND"]


def budgets() -> dict[str, str]:
    """Each claim's segmentation budget in epochs, as the page states it (f runs several budgets)."""
    return {**{c: str(e) for c, e in EPOCHS.items()}, "f": " and ".join(map(str, F_BUDGETS))}


def _pending(claim: str, text: str, paper: str) -> tuple[dict, str, dict]:
    summary = {"claim": f"({claim}) {text}", "paper": paper, "ours": "pending", "verdict": "pending (no runs yet)"}
    return summary, f"## ({claim}) {text}\n\nNo finished runs yet; see [Pending runs](#pending-runs).\n", {}


def _by_arm(rows: list[dict], **match) -> dict[str, dict]:
    return {r["arm"]: r for r in rows if "cases" in r and all(r.get(k) == v for k, v in match.items())}


def _unconverged(arms: dict[str, dict]) -> str:
    """' (provisional: not plateaued: ...)' for the arms whose curve (or stage-1 curve) failed the plateau rule."""
    names = [arm for arm, row in arms.items() if (row.get("plateau") and not row["plateau"]["plateaued"])
             or (row.get("stage1_plateau") and not row["stage1_plateau"]["plateaued"])]
    return f" (provisional: {', '.join(names)} not plateaued by the rule)" if names else ""


def _test_line(name: str, test: dict, adjusted: float | None, unit: str = "Dice", paired_by: str = "cases") -> str:
    return (f"- {name}: median paired difference {test['median_diff']:+.3f} {unit} over {test['n']} {paired_by}, "
            f"Wilcoxon p = {fmt_p(test['p'])}, Holm-adjusted p = {fmt_p(adjusted)}: "
            f"**{verdict(test, adjusted)}**.")


def _class_table(arms: dict[str, dict], metric_names=("dice", "hd95")) -> list[str]:
    first = next(iter(arms.values()))
    classes = [c for c in next(iter(first["cases"].values())) if not c.startswith("mean")]
    head = "| arm | " + " | ".join(f"{m.replace('hd95', 'HD95 mm').replace('dice', 'Dice')} {c}"
                                   for m in metric_names for c in classes) + " | mean Dice |"
    lines = [head, "|---" * (len(classes) * len(metric_names) + 2) + "|"]
    for arm, row in arms.items():
        cells = []
        for metric in metric_names:
            for c in classes:
                values = [m[c].get(metric) for m in row["cases"].values()]
                cells.append(mean_sd(values) if metric != "hd95" else
                             (f"{np.mean([v for v in values if finite(v)]):.1f}" if any(finite(v) for v in values)
                              else "–"))
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | **{mean_sd(case_scores(row).values())}** |")
    return lines


# ---------------------------------------------------------------------------------------------------------- (a)


def claim_a(rows: dict) -> tuple[dict, str, dict]:
    text = ("completion + cleansing of incomplete, noisy teacher labels gives >= 90 % Dice and improves on the "
            "incomplete labels by up to 9 points")
    runs = rows["completion"]
    if not runs:
        return _pending("a", text, "≥ 90 % Dice; up to +9 points")

    def scores(method: str, every: int, noise: float, source=runs) -> dict[str, float]:
        return {f"{r['case']}|{r['axis']}": float(np.mean([r["dice"][c] for c in COMPLETION_CLASSES]))
                for r in source if r.get("method") == method and r["every"] == every and r["noise"] == noise}

    lines = [f"## (a) {text}", "",
             "Raw runs: `benchmarks/results/completion.jsonl` (issue 13's completion benchmark: synthetic brains "
             "001-003 and the MNI152 template with atlas labels, 1.5 mm, axes 0, 1, 2; every K-th slice kept, a "
             "fraction of them corrupted by `versaseg data degrade`'s six kinds of error). Mean foreground Dice "
             "(cerebrum, cerebellum, brainstem, basal ganglia) of the dense result against the full label; paired "
             "tests over the 12 (case, axis) runs; Holm over the two comparisons of each row.", "",
             "| K | noisy slices | versaseg | nearest-slice copy | ITK (Slicer's Fill between slices) | shape "
             "interpolation | versaseg − nearest | versaseg − ITK | runs ≥ 0.90 |",
             "|---|---|---:|---:|---:|---:|---|---|---:|"]
    gains, at_least = [], {}
    for noise in (0.3, 0.0):
        for every in (4, 8, 16):
            ours = scores("versaseg", every, noise)
            if not ours:
                continue
            near, itk, shape = (scores(m, every, noise) for m in ("nearest", "itk", "shape"))
            t_near, t_itk = paired(near, ours), paired(itk, ours)
            adj = holm([t_near["p"], t_itk["p"]])
            gains.append((t_near["mean_b"] - t_near["mean_a"], every, noise))
            at_least[(every, noise)] = (np.mean(list(ours.values())), sum(v >= 0.9 for v in ours.values()), len(ours))
            lines.append(f"| {every} | {noise:.0%} | {np.mean(list(ours.values())):.3f} | "
                         f"{np.mean(list(near.values())):.3f} | {np.mean(list(itk.values())):.3f} | "
                         f"{np.mean(list(shape.values())):.3f} | {t_near['median_diff']:+.3f} (p {fmt_p(adj[0])}) | "
                         f"{t_itk['median_diff']:+.3f} (p {fmt_p(adj[1])}) | "
                         f"{at_least[(every, noise)][1]} / {len(ours)} |")
    cleanse_lines, cleanse_diff = [], {}
    for noise in (0.3, 0.0):
        plain, cleansed = scores("versaseg", 8, noise), scores("versaseg:cleanse=1", 8, noise)
        if cleansed:
            test = paired(plain, cleansed)
            cleanse_diff[noise] = test
            cleanse_lines.append(f"- K = 8, {noise:.0%} noisy slices: `--cleanse` minus the default, median "
                                 f"{test['median_diff']:+.3f}, mean {test['mean_b'] - test['mean_a']:+.3f} over "
                                 f"{test['n']} runs, p = {fmt_p(test['p'])}.")
    before, after = [], []
    for r in runs:
        if r.get("method") == "versaseg:cleanse=1" and r.get("corrupted_cost_after"):
            for z, cost in r["corrupted_cost_after"].items():
                before.append(r["corruptions"][z]["dice_cost"])
                after.append(cost)
    repaired = None
    if before:
        repaired = sum(b - a >= 0.05 for b, a in zip(before, after, strict=True))
        cleanse_lines.append(f"- The {len(before)} corrupted annotated slices of those runs cost a mean "
                             f"{np.mean(before):.3f} slice Dice as annotated and {np.mean(after):.3f} after "
                             f"cleansing; {repaired} of them gained ≥ 0.05.")
    lines += ["", "**Cleansing** (`--cleanse`: the slices judged wrong are corrected before the final models "
              "train):", "", *cleanse_lines, ""]
    budget = rows["a"]
    budget_lines, converged = [], None
    if budget:
        base = scores("versaseg", 8, 0.3)
        lines += ["**Budget.** The completion classifiers train a fixed 12 epochs (one-cycle). The same 12 runs at "
                  "K = 8 with 30 % noise, trained 6, 24 and 48 epochs (`reproduction_a.jsonl`, command in the "
                  "header):", "",
                  "| epochs | mean Dice | minus 12 epochs (median, p) |", "|---:|---:|---|"]
        longest = {}
        for epochs in (6, 12, 24, 48):
            ours = base if epochs == 12 else scores(f"versaseg:epochs={epochs}", 8, 0.3, budget)
            if not ours:
                continue
            test = paired(base, ours)
            if epochs > 12 and test["n"] == len(base):
                longest = {"epochs": epochs, "mean": test["mean_b"], "diff": test["median_diff"]}
                if epochs == 24:
                    converged = abs(test["median_diff"]) < 0.01
            lines.append(f"| {epochs} | {np.mean(list(ours.values())):.3f} | "
                         + ("–" if epochs == 12 else f"{test['median_diff']:+.3f} (p {fmt_p(test['p'])})") + " |")
        lines.append("")
        budget_lines = ["budget check pending" if converged is None else
                        "doubling the classifiers' epochs changes the Dice by less than 0.01" if converged else
                        f"the default 12 epochs are not converged: {longest['epochs']} epochs give "
                        f"{longest['mean']:.3f} ({longest['diff']:+.3f})"]
    best_gain = max(gains)
    held = [f"K = {k}" for (k, n), (m, _, _) in at_least.items() if n == 0.3 and m >= 0.9]
    missed = [f"K = {k} ({m:.3f})" for (k, n), (m, _, _) in at_least.items() if n == 0.3 and m < 0.9]
    k8 = at_least.get((8, 0.3))
    cl = cleanse_diff.get(0.3)
    ours = (f"K = 8, 30 % noisy slices: {k8[0]:.3f} ({k8[1]}/{k8[2]} runs ≥ 0.90). Gain over the nearest-slice "
            f"copy of the same noisy labels: up to {best_gain[0] * 100:+.1f} points in the mean (K = {best_gain[1]}, "
            f"{best_gain[2]:.0%} noise)" + (f"; `--cleanse` {cl['median_diff']:+.3f} (p {fmt_p(cl['p'])})" if cl
                                            else ""))
    verdict_text = (f"**holds for completion** at 30 % noise for {', '.join(held) or 'no K'}"
                    + (f", not for {', '.join(missed)}" if missed else "")
                    + _cleanse_verdict(cl, repaired, len(before)))
    if budget_lines:
        verdict_text += f" ({budget_lines[0]})"
    lines += ["**Why cleansing fails here.** The slice check flags a corrupted slice when the models trained on the "
              "other slices disagree with it by an outlying margin; from neighbours 12 mm away a small structure's "
              "real change of shape looks like a corruption, and most corruptions (jitter, shifts, missed parts) "
              "move few voxels. docs/completion.md and docs/benchmarks.md give the per-kind recall.", ""]
    summary = {"claim": "(a) " + text, "paper": "≥ 90 % Dice; up to +9 points over the incomplete labels",
               "ours": ours, "verdict": verdict_text}
    return summary, "\n".join(lines), {}


def _cleanse_verdict(test: dict | None, repaired: int | None, corrupted: int) -> str:
    """The cleansing half of claim a's verdict: it holds when ``--cleanse`` raises the Dice significantly and
    repairs (gains >= 0.05 slice Dice on) some of the ``corrupted`` slices."""
    if test is None or repaired is None:
        return ""
    if test["p"] is not None and test["p"] < ALPHA and test["median_diff"] > 0 and repaired:
        return f"; **cleansing holds**: it repairs {repaired} of the {corrupted} corrupted slices"
    return ("; **cleansing does not hold**: it repairs " + (f"{repaired} of the {corrupted}" if repaired else
                                                           "none of the") + " corrupted slices")


# ---------------------------------------------------------------------------------------------------------- (b)


def claim_b(rows: dict) -> tuple[dict, str, dict]:
    text = "a model trained on completed labels beats one trained on the sparse or noisy labels on held-out cases"
    arms = _by_arm(rows["b"])
    if "completed" not in arms:
        return _pending("b", text, "direction only")
    lines = [f"## (b) {text}", "",
             "`python benchmarks/reproduce.py run --claims b`: 10 training and 8 held-out synthetic brains at 2.0 mm "
             "(`--label-set structures`). Training labels: every 8th axial slice kept, 30 % of the kept slices "
             "corrupted (`versaseg data degrade`). The same 2D `unet` is trained on **sparse** (those slices, the rest "
             "the ignore label), **nearest** (the same slices made dense by nearest-slice copy), **completed** "
             "(`versaseg complete` defaults on each training case) and **full** (the true labels, the upper bound); "
             "scored on the 8 held-out cases. Each arm validates against its own kind of labels (the sparse arm on "
             "the annotated slices of its validation cases only), so the curves show when each stopped learning, "
             "not which is better.", ""]
    quality = next((r for r in rows["b"] if r.get("arm") == "training labels"), None)
    if quality:
        lines += ["Training labels against the truth (mean foreground Dice over the 10 training cases): completed "
                  f"{mean_sd(case_scores({'cases': quality['completed']}).values())}, nearest-slice copy "
                  f"{mean_sd(case_scores({'cases': quality['nearest']}).values())}; `complete` took a median "
                  f"{np.median(list(quality['complete_seconds'].values()) or [np.nan]):.0f} s per case.", ""]
    lines += ["Test-set metrics (mean ± sd over the held-out cases):", "", *_class_table(arms), ""]
    ours = case_scores(arms["completed"])
    others = [a for a in ("sparse", "nearest") if a in arms]
    tests = {a: paired(case_scores(arms[a]), ours) for a in others}
    adjusted = dict(zip(others, holm([tests[a]["p"] for a in others]), strict=True))
    lines += [f"Tests (mean foreground Dice per case; Holm over the {len(others)} comparisons):", ""]
    lines += [_test_line(f"completed minus {a}", tests[a], adjusted[a]) for a in others]
    if "full" in arms:
        t = paired(case_scores(arms["full"]), ours)
        lines.append(f"- completed minus full (not in the family): median {t['median_diff']:+.3f}, "
                     f"p = {fmt_p(t['p'])}.")
    verdicts = {a: verdict(tests[a], adjusted[a]) for a in others}
    held = [a for a, v in verdicts.items() if v == "holds"]
    verdict_text = ("**holds**" if len(held) == len(others) and others else
                    f"**holds only against {', '.join(held)}**" if held else "**does not hold**")
    verdict_text += " (" + "; ".join(f"vs {a}: {v}" for a, v in verdicts.items()) + ")"
    if len(others) < 2:
        verdict_text += "; pending arms"
    verdict_text += _unconverged(arms)
    summary = {"claim": "(b) " + text, "paper": "direction only (no number in the brief)",
               "ours": "; ".join(f"completed {tests[a]['mean_b']:.3f} vs {a} {tests[a]['mean_a']:.3f}" for a in others),
               "verdict": verdict_text}
    curves = {"claim b: training labels": {a: r["curve"] for a, r in arms.items() if r.get("curve")}}
    if "sparse" in arms and "nearest" in arms and verdicts.get("sparse") != "holds" and quality:
        lines += ["", _why_b(arms, quality)]
    lines += ["", f"![validation curves]({IMAGES}/curves_b.png)", ""]
    return summary, "\n".join(lines), curves


def _why_b(arms: dict, quality: dict) -> str:
    """Why the completed labels lose to the sparse ones: the class with the largest loss, and how good the completed
    training labels of that class were."""
    classes = [c for c in next(iter(arms["completed"]["cases"].values())) if not c.startswith("mean")]
    diffs = {c: paired(case_scores(arms["sparse"], classes=[c]), case_scores(arms["completed"], classes=[c]))
             for c in classes}
    worst = min(classes, key=lambda c: diffs[c]["median_diff"])
    label_quality = {name: np.mean([m[worst]["dice"] for m in quality[name].values() if finite(m[worst]["dice"])])
                     for name in ("completed", "nearest")}
    others = ", ".join(f"{c} {diffs[c]['median_diff']:+.3f}" for c in classes if c != worst)
    near = paired(case_scores(arms["nearest"], classes=[worst]), case_scores(arms["completed"], classes=[worst]))
    return (f"**Why it does not hold.** The difference is the {worst.replace('_', ' ')}: completed "
            f"minus sparse {diffs[worst]['median_diff']:+.3f} Dice (median over the held-out cases; {others}), "
            f"completed minus nearest {near['median_diff']:+.3f}. The "
            f"completed training labels of the {worst.replace('_', ' ')} agree with the truth at Dice "
            f"{label_quality['completed']:.3f}, the nearest-slice copy at {label_quality['nearest']:.3f}: at "
            "2.0 mm with every 8th slice (16 mm between annotated slices) the completion of this small structure is "
            f"{'worse' if label_quality['completed'] < label_quality['nearest'] else 'no better'} than copying the "
            "nearest slice, and a model trained on either learns its label's errors as if they were anatomy, on "
            "every slice. The sparse model is trained "
            "only on the annotated slices (the ignore label leaves the rest out of the loss), where the "
            "labels are exact except on the corrupted 30 %, and the network itself carries the shape from case to "
            "case and slice to slice; across 10 training cases that generalises better than one completion per case.")


# ---------------------------------------------------------------------------------------------------------- (c)


def claim_c(rows: dict) -> tuple[dict, str, dict]:
    text = "the U-Net + FRRN hybrid skips segment better than U-Net and FRRN, most when labels are weak"
    runs = rows["c"]
    regimes = {regime: _by_arm(runs, labels=regime) for regime in ("weak", "full")}
    if not any(regimes.values()) and not rows["c_completion"]:
        return _pending("c", text, "direction only")
    lines = [f"## (c) {text}", "",
             "`python benchmarks/reproduce.py run --claims c`: the 4-class brain (cerebrum, cerebellum, brainstem, "
             "vessels; 10 training and 16 held-out cases at 2.0 mm), each network at its defaults trained on the "
             "full labels and on weak labels (every 8th axial slice, 30 % corrupted, the rest the ignore label).", ""]
    family, names = [], []
    for regime, arms in regimes.items():
        if not arms:
            continue
        lines += [f"**{regime} labels**", "", *_class_table(arms, ("dice",)), ""]
        if "unet-frrn" in arms:
            for other in ("unet", "frrn"):
                if other in arms:
                    family.append(paired(case_scores(arms[other]), case_scores(arms["unet-frrn"])))
                    names.append(f"{regime} labels: unet-frrn minus {other}")
    completion = _c_completion_scores(rows["c_completion"])
    completion_lines = _c_completion(rows["c_completion"], completion, family, names, rows["completion"])
    adjusted = holm([t["p"] for t in family])
    lines += completion_lines
    lines += [f"Tests (mean foreground Dice per held-out case, or per (case, axis) completion run; Holm over the "
              f"{len(family)} comparisons):", ""]
    lines += [_test_line(n, t, a, paired_by="(case, axis) runs" if n.startswith("completion") else "cases")
              for n, t, a in zip(names, family, adjusted, strict=True)]
    verdicts = [verdict(t, a) for t, a in zip(family, adjusted, strict=True)]
    if any(v != "holds" for v in verdicts) and any("unet-frrn" in arms and len(arms) > 1 for arms in regimes.values()):
        lines += ["", _why_c(regimes, names, verdicts, completion), ""]
    complete = len(family) == 8
    verdict_text = ("**holds**" if complete and all(v == "holds" for v in verdicts) else
                    "**does not hold**" if complete and not any(v == "holds" for v in verdicts) else
                    "**partly**" if complete else "pending") + " (" + _c_verdict_by_study(names, verdicts) + ")" + \
        _unconverged({f"{r} {a}": row for r, arms in regimes.items() for a, row in arms.items()}) + \
        _c_completion_unconverged(rows["c_completion"])
    curves = {f"claim c: {regime} labels": {a: r["curve"] for a, r in arms.items() if r.get("curve")}
              for regime, arms in regimes.items() if arms}
    lines += [f"![validation curves]({IMAGES}/curves_c.png)", ""]
    ours = "; ".join(f"{n}: {t['median_diff']:+.3f}" for n, t in zip(names, family, strict=True)) or "pending"
    return ({"claim": "(c) " + text, "paper": "direction only (no number in the brief)", "ours": ours,
             "verdict": verdict_text}, "\n".join(lines), curves)


def _c_verdict_by_study(names: list[str], verdicts: list[str]) -> str:
    """c's verdicts grouped by study: 'segmentation: 0 of 4 hold; completion: 3 of 4 hold (K = 4 vs unet, ...)'.
    ``names`` are the test names ('weak labels: unet-frrn minus unet', 'completion K = 16: unet-frrn minus frrn')."""
    studies: dict[str, list[tuple[str, str]]] = {}
    for name, word in zip(names, verdicts, strict=True):
        study = "completion" if name.startswith("completion") else "segmentation"
        setting = name.split(": ")[0].removeprefix("completion ")
        studies.setdefault(study, []).append((f"{setting} vs {name.split('minus ')[1]}", word))
    parts = []
    for study, tests in studies.items():
        held = [t for t, w in tests if w == "holds"]
        parts.append(f"{study}: {len(held)} of {len(tests)} hold" + (f" ({', '.join(held)})" if held else "")
                     + "".join(f"; {t}: {w}" for t, w in tests if w not in ("holds", "not significant")))
    return "; ".join(parts)


SAME_WITHIN = 0.002  # Dice: two mean differences closer than this are reported as about the same


def _change(before: float, after: float) -> str:
    """"larger", "smaller" or "about the same": ``after`` against ``before``, within :data:`SAME_WITHIN`."""
    return "larger" if after > before + SAME_WITHIN else "smaller" if after < before - SAME_WITHIN else "about the same"


def _why_c(regimes: dict[str, dict[str, dict]], names: list[str], verdicts: list[str],
           completion: dict[int, dict[str, dict[str, float]]] | None = None) -> str:
    """Why the hybrid does not win every comparison, from the per-case, per-class scores: per regime and rival the
    mean difference, in how many cases the hybrid is ahead and the class where it falls furthest behind; then
    whether its advantage grows from full to weak labels, which is the second half of the claim. ``completion``
    ({K: {network: {"case|axis": mean Dice}}}) adds the same for label completion, where a larger K (sparser
    annotation) is the weaker label."""
    word = dict(zip(names, verdicts, strict=True))
    gaps: dict[tuple[str, str], float] = {}
    parts = []
    for regime, arms in regimes.items():
        if "unet-frrn" not in arms:
            continue
        hybrid = arms["unet-frrn"]
        classes = [c for c in next(iter(hybrid["cases"].values())) if not c.startswith("mean")]
        for other in (o for o in ("unet", "frrn") if o in arms):
            a, b = case_scores(arms[other]), case_scores(hybrid)
            cases = [c for c in a if c in b and finite(a[c]) and finite(b[c])]
            diffs = [b[c] - a[c] for c in cases]
            gaps[(regime, other)] = float(np.mean(diffs))
            per_class = {c: mean_score(hybrid, [c]) - mean_score(arms[other], [c]) for c in classes}
            worst, best = min(per_class, key=per_class.get), max(per_class, key=per_class.get)
            test = word.get(f"{regime} labels: unet-frrn minus {other}", "not tested")
            ahead = (f"furthest ahead on {best} ({per_class[best]:+.3f})" if per_class[best] > 0 else
                     "ahead on no class")
            parts.append(f"{regime} labels against {other} ({test}): {gaps[(regime, other)]:+.3f} mean Dice, ahead in "
                         f"{sum(d > 0 for d in diffs)} of {len(diffs)} cases; furthest behind on {worst} "
                         f"({per_class[worst]:+.3f}), {ahead}")
    joined = "; ".join(parts)
    heading = "Why it holds only in part." if "holds" in verdicts else "Why it does not hold as stated."
    text = f"**{heading}** " + joined[:1].upper() + joined[1:] + "."
    costs = {n: mean_score(regimes["full"][n]) - mean_score(regimes["weak"][n])
             for n in regimes.get("weak", {}) if n in regimes.get("full", {})}
    if costs:
        text += (" Against full labels, weak labels cost " + ", ".join(f"{n} {c:.3f}" for n, c in costs.items())
                 + " mean Dice" +
                 (": on these brains every 8th slice already teaches nearly everything, which leaves little for "
                  "any skip design to recover." if max(costs.values()) < 0.02 else "."))
    widening = {o: (gaps[("weak", o)], gaps[("full", o)]) for o in ("unet", "frrn")
                if ("weak", o) in gaps and ("full", o) in gaps}
    if widening:
        words = {o: (w if (w := _change(full, weak)) == "about the same" else f"{w} with weak labels")
                 for o, (weak, full) in widening.items()}
        text += (" The hybrid's mean difference with weak and with full labels: " + "; ".join(
            f"against {o} {weak:+.3f} and {full:+.3f} ({words[o]})" for o, (weak, full) in widening.items()) + ": "
                 + ("its advantage grows when the labels are weak, as claimed."
                    if all(w.startswith("larger") for w in words.values()) else
                    "its advantage does not grow when the labels are weak."
                    if not any(w.startswith("larger") for w in words.values()) else
                    "it grows with weak labels only against "
                    + " and ".join(o for o, w in words.items() if w.startswith("larger")) + ".")
                 + f" (Differences within {SAME_WITHIN} Dice count as the same.)")
    return text + _why_c_completion(completion or {}, word)


def _why_c_completion(completion: dict[int, dict[str, dict[str, float]]], word: dict[str, str]) -> str:
    """The completion half of c's why-paragraph: per K and rival the hybrid's mean difference and in how many
    (case, axis) runs it is ahead; then whether the difference grows from the densest to the sparsest K."""
    gaps: dict[tuple[int, str], float] = {}
    parts = []
    for every, per in sorted(completion.items()):
        hybrid = per.get("unet-frrn", {})
        for other in ("unet", "frrn"):
            rival = per.get(other, {})
            runs = [k for k in hybrid if k in rival]
            if not runs:
                continue
            diffs = [hybrid[k] - rival[k] for k in runs]
            gaps[(every, other)] = float(np.mean(diffs))
            test = word.get(f"completion K = {every}: unet-frrn minus {other}", "not tested")
            parts.append(f"at K = {every} against {other} ({test}) {gaps[(every, other)]:+.3f} mean Dice, ahead in "
                         f"{sum(d > 0 for d in diffs)} of {len(diffs)} runs")
    if not parts:
        return ""
    text = "\n\nIn label completion the hybrid is " + "; ".join(parts) + "."
    ks = sorted({k for k, _ in gaps})
    if len(ks) > 1:
        dense, sparse = ks[0], ks[-1]
        moves = {o: (gaps[(dense, o)], gaps[(sparse, o)]) for o in ("unet", "frrn")
                 if (dense, o) in gaps and (sparse, o) in gaps}
        words = {o: _change(d, s) for o, (d, s) in moves.items()}
        if moves:
            grows = [o for o, w in words.items() if w == "larger"]
            text += (f" From K = {dense} to the sparser K = {sparse}: " + "; ".join(
                f"against {o} {d:+.3f} and {s:+.3f} ({words[o]})" for o, (d, s) in moves.items()) + ": " +
                ("the advantage grows as the annotation thins, as claimed." if len(grows) == len(words) else
                 "the advantage does not grow as the annotation thins." if not grows else
                 "it grows only against " + " and ".join(grows) + "."))
    return text


def _completion_scores(runs: list[dict], method: str, every: int) -> dict[str, float]:
    """{"case|axis": mean foreground Dice} of one completion method at one K."""
    return {f"{r['case']}|{r['axis']}": float(np.mean([r["dice"][c] for c in COMPLETION_CLASSES]))
            for r in runs if r["method"] == method and r["every"] == every}


def _c_completion_scores(runs: list[dict]) -> dict[int, dict[str, dict[str, float]]]:
    """{K: {network: {"case|axis": mean Dice}}} for the networks' default completion runs."""
    return {every: {n: _completion_scores(runs, n, every) for n in NETWORKS}
            for every in sorted({r["every"] for r in runs})}


def _budget_method(runs: list[dict], network: str) -> str | None:
    """The method name of ``network``'s 3x-iteration budget check in ``runs`` (None: not run yet)."""
    return next((r["method"] for r in runs
                 if r["method"].startswith("versaseg:model=cnn") and f"network={network};" in r["method"]), None)


def c_budget_gains(runs: list[dict]) -> dict[str, float | None]:
    """Per network the mean gain in Dice of completion at K = 16 from 3x the default iterations, over the (case,
    axis) runs the budget check has finished (None: not run yet)."""
    gains: dict[str, float | None] = {}
    for network in NETWORKS:
        method = _budget_method(runs, network)
        long = _completion_scores(runs, method, 16) if method else {}
        base = _completion_scores(runs, network, 16)
        shared = [k for k in long if k in base]
        gains[network] = float(np.mean([long[k] - base[k] for k in shared])) if shared else None
    return gains


def _c_completion_unconverged(runs: list[dict]) -> str:
    """' (provisional: ...)' when the K = 16 completion comparisons are not at a converged budget: a network gained
    at least the plateau rule's 0.01 from 3x the iterations, or its budget check has not run."""
    if not any(r["every"] == 16 for r in runs):
        return ""
    gains = c_budget_gains(runs)
    gaining = [f"{n} {g:+.3f}" for n, g in gains.items() if g is not None and g >= PLATEAU_GAIN]
    unchecked = [n for n, g in gains.items() if g is None]
    parts = ([f"completion at K = 16 still gains at 3x the iterations ({', '.join(gaining)})"] if gaining else []) + \
        ([f"budget check not run for {', '.join(unchecked)}"] if unchecked else [])
    return f" (provisional: {'; '.join(parts)})" if parts else ""


def _c_completion(runs: list[dict], completion: dict[int, dict[str, dict[str, float]]], family: list,
                  names: list, reference: list[dict] = ()) -> list[str]:
    """Completion with each network (``--model cnn``): table per K, the hybrid's tests appended to the family,
    and the budget check (3x the iterations). ``reference`` (completion.jsonl's rows) adds the default
    ``--model voxel`` (method 'versaseg') on the same (case, axis, K) at 30 % noise, for scale, untested."""
    if not runs:
        return ["Label completion with each network (`versaseg complete --model cnn --network NAME`): no runs yet.", ""]
    scores = partial(_completion_scores, runs)
    product: list[str] = []

    lines = ["**Label completion** with each network (`versaseg complete --model cnn --network NAME`, the "
             "defaults of `--model cnn`: depth 4, base width 8, 120 iterations per model; synthetic brains at "
             "1.5 mm, axes 0, 1, 2, 30 % noisy slices; raw runs `reproduction_c_completion.jsonl`). Mean "
             "foreground Dice (cerebrum, cerebellum, brainstem, basal ganglia):", "",
             "| K | " + " | ".join(NETWORKS) + " | runs (" + " / ".join(NETWORKS) + ") | seconds per run (" +
             " / ".join(NETWORKS) + ") | default `--model voxel` (same runs; seconds) |",
             "|---|" + "---:|" * (len(NETWORKS) + 3)]
    for every, per in completion.items():
        if not any(per.values()):
            continue
        keys = set().union(*(per[n] for n in NETWORKS))
        voxel = {f"{r['case']}|{r['axis']}": r for r in reference
                 if r["method"] == "versaseg" and r["every"] == every and r["noise"] == 0.3
                 and f"{r['case']}|{r['axis']}" in keys}
        default = _completion_scores(list(voxel.values()), "versaseg", every)
        voxel_cell = (f"{mean_sd(default.values())} "
                      f"({np.mean([r['seconds'] for r in voxel.values()]):.0f} s, {len(voxel)} runs)"
                      if voxel else "–")
        seconds = [np.mean([r["seconds"] for r in runs if r["method"] == n and r["every"] == every] or [np.nan])
                   for n in NETWORKS]
        lines.append(f"| {every} | " + " | ".join(mean_sd(per[n].values()) for n in NETWORKS) +
                     f" | {' / '.join(str(len(per[n])) for n in NETWORKS)} | "
                     + " / ".join(f"{t:.0f}" for t in seconds) + f" | {voxel_cell} |")
        if voxel and per["unet-frrn"]:
            hybrid = per["unet-frrn"]
            shared = [k for k in hybrid if k in default]
            ratio = seconds[NETWORKS.index("unet-frrn")] / np.mean([voxel[k]["seconds"] for k in shared])
            product.append(f"K = {every}: {np.mean([hybrid[k] - default[k] for k in shared]):+.3f} mean Dice, "
                           f"ahead in {sum(hybrid[k] > default[k] for k in shared)} of {len(shared)} runs, "
                           f"{ratio:.0f}x the time")
        if per["unet-frrn"]:
            for other in ("unet", "frrn"):
                if per[other]:
                    family.append(paired(per[other], per["unet-frrn"]))
                    names.append(f"completion K = {every}: unet-frrn minus {other}")
    if product:
        lines += ["", "For scale (descriptive, outside the tests): the hybrid CNN against the product's default "
                  "`--model voxel` on the same degraded labels, " + "; ".join(product) + "."]
    against: list[str] = []
    equal_budget: list[str] = []
    if any(r["method"].startswith("versaseg:model=cnn") for r in runs):
        hybrid = scores("unet-frrn", 16)
        hybrid_method = _budget_method(runs, "unet-frrn")
        hybrid_long = scores(hybrid_method, 16) if hybrid_method else {}
        lines += ["", "Budget check (one case, 3 axes, K = 16): the same completion with 3x the iterations.", "",
                  "| network | 120 iterations | 360 iterations | difference (median) | runs |",
                  "|---|---:|---:|---:|---:|"]
        for network in NETWORKS:
            method = _budget_method(runs, network)
            if method is None:
                continue
            long, base = scores(method, 16), scores(network, 16)
            base = {k: v for k, v in base.items() if k in long}
            test = paired(base, long)
            if test["n"]:
                lines.append(f"| {network} | {test['mean_a']:.3f} | {test['mean_b']:.3f} | "
                             f"{test['median_diff']:+.3f} | {test['n']} |")
            shared = [k for k in long if k in hybrid]
            if network != "unet-frrn" and shared:
                gap = np.mean([long[k] - hybrid[k] for k in shared])
                against.append(f"{network} at 3x the iterations {gap:+.3f} against the hybrid at the default "
                               f"({len(shared)} runs)")
                equal = [k for k in long if k in hybrid_long]
                if equal:
                    equal_gaps = [hybrid_long[k] - long[k] for k in equal]
                    equal_budget.append(f"hybrid minus {network} {np.mean(equal_gaps):+.3f}, ahead in "
                                        f"{sum(g > 0 for g in equal_gaps)} of {len(equal)} runs")
        if against:
            lines += ["", "Same runs, unequal budgets: " + "; ".join(against) + ". Near zero or above, a rival "
                      "given 3x the iterations catches the hybrid at the default: its lead at the default budget is "
                      "then, at least partly, faster learning rather than a better end point. The comparison at an "
                      "equal 3x budget needs every network's check."]
        if equal_budget:
            lines += ["", "At an equal 3x budget (descriptive: one case): " + "; ".join(equal_budget) + "."]
    return [*lines, ""]


# ---------------------------------------------------------------------------------------------------------- (d)


def claim_d(rows: dict) -> tuple[dict, str, dict]:
    text = "pix2pix heavy-T2 -> angiography as an extra channel improves vessel segmentation over heavy T2 alone"
    runs = rows["d"]
    translators = {r["arm"]: r for r in runs if r["arm"].startswith("pix2pix")}
    main_budget = [r for r in runs if r["key"].endswith(f"|E{EPOCHS['d']}|seed0")]
    segs = {setting: _by_arm(main_budget, setting=setting) for setting in ("all10", "low4")}
    first = next((r for r in runs if r["key"] == f"d|seg|all10|T2|E{D_FIRST_EPOCHS}|seed0"), None)
    if not translators and not any(segs.values()):
        return _pending("d", text, "direction only")
    lines = [f"## (d) {text}", "",
             "`python benchmarks/reproduce.py run --claims d`: the 4-class synthetic brains (10 training, 16 held-out "
             "cases at 2.0 mm; channels T1, heavy T2, TOF). pix2pix T2 -> TOF (`versaseg synth train` defaults) "
             "is trained on the 10 training pairs (**all10**), or on 4 of them plus 30 unlabelled pairs of another "
             "cohort (**low4**: the setting where synthesis can carry what 4 labelled cases cannot). The binary "
             "vessel model (the same 2D `unet` budget as every claim) is trained on T2, T2 + synthetic TOF and "
             "T2 + real TOF of the 10 (all10) or 4 (low4) labelled cases.", ""]
    if translators:
        lines += ["Translation quality on the held-out cases (synthetic vs real TOF in the target's scaled [-1, 1] "
                  "units; PSNR with data range 2; vessel band: the vessel labels dilated by 2 voxels, inside the "
                  "brain):", "", "| pix2pix | pairs | region | MAE | PSNR (dB) | SSIM |",
                  "|---|---:|---|---:|---:|---:|"]
        for arm, row in translators.items():
            for region in ("brain", "vessel band"):
                cells = [mean_sd([q[region][m] for q in row["quality"].values()]) for m in ("mae", "psnr", "ssim")]
                lines.append(f"| {arm} | {row['pairs']} | {region} | " + " | ".join(cells) + " |")
        lines.append("")
        separability = [r for r in runs if r["arm"].startswith("vessel separability")]
        lines += _d_separability(separability)
        for arm in translators:
            setting = arm.split()[-1]
            lines.append(f"![{arm}]({IMAGES}/d_translation_{setting}.png)")
        lines += ["", *_d_generator_errors(separability), ""]
        lines += _d_artefacts([r for r in runs if r["arm"].startswith("artefacts")])
    family, names = [], []
    for setting, arms in segs.items():
        if not arms:
            continue
        lines += [f"**Vessel segmentation, {setting}** (vessel metrics, mean ± sd over the held-out cases):", "",
                  "| channels | Dice | HD95 (mm) | sensitivity | precision |", "|---|---:|---:|---:|---:|"]
        for arm, row in arms.items():
            vessel = [m["vessels"] for m in row["cases"].values()]
            lines.append(f"| {arm} | " + " | ".join(mean_sd([v.get(k) for v in vessel])
                                                     for k in ("dice", "hd95", "sensitivity", "precision")) + " |")
        lines.append("")
        if "T2" in arms and "T2 + synthetic TOF" in arms:
            family.append(paired(case_scores(arms["T2"]), case_scores(arms["T2 + synthetic TOF"])))
            names.append(f"{setting}: T2 + synthetic TOF minus T2")
        if "T2" in arms and "T2 + TOF" in arms:
            t = paired(case_scores(arms["T2"]), case_scores(arms["T2 + TOF"]))
            lines.append(f"- {setting}: T2 + real TOF minus T2 (reference, not in the family): median "
                         f"{t['median_diff']:+.3f}, p = {fmt_p(t['p'])}.")
    if first is not None and "T2" in segs["all10"]:
        check = paired(case_scores(first), case_scores(segs["all10"]["T2"]))
        lines.append(f"- Budget check, all10, T2 alone: {D_FIRST_EPOCHS} epochs {check['mean_a']:.3f} "
                     f"(plateau gain {first['plateau']['gain']:+.3f}), {EPOCHS['d']} epochs {check['mean_b']:.3f}: "
                     f"median {check['median_diff']:+.3f}, p = {fmt_p(check['p'])}.")
    adjusted = holm([t["p"] for t in family])
    if family:
        lines += ["", f"Tests (vessel Dice per case; Holm over the {len(family)} comparisons):", ""]
        lines += [_test_line(n, t, a) for n, t, a in zip(names, family, adjusted, strict=True)]
    verdicts = [verdict(t, a) for t, a in zip(family, adjusted, strict=True)]
    verdict_text = ("pending" if not family else
                    ("**holds**" if all(v == "holds" for v in verdicts) else
                     "**does not hold**" if not any(v == "holds" for v in verdicts) else "**partly**")
                    + " (" + "; ".join(f"{n.split(':')[0]}: {v}" for n, v in zip(names, verdicts, strict=True)) + ")"
                    + _unconverged({f"{st} {a}": row for st, arms in segs.items() for a, row in arms.items()}))
    if family and not all(v == "holds" for v in verdicts):
        lines += ["", _why_d(runs, segs, translators)]
    curves = {f"claim d: vessels {s}": {a: r["curve"] for a, r in arms.items() if r.get("curve")}
              for s, arms in segs.items() if arms}
    if translators:
        curves["claim d: pix2pix"] = {a: r["curve"] for a, r in translators.items()}
    lines += ["", f"![validation curves]({IMAGES}/curves_d.png)", ""]
    ours = "; ".join(f"{n}: {t['mean_a']:.3f} -> {t['mean_b']:.3f}" for n, t in zip(names, family, strict=True))
    return ({"claim": "(d) " + text, "paper": "direction only (no number in the brief)", "ours": ours or "pending",
             "verdict": verdict_text}, "\n".join(lines), curves)


def _why_d(runs: list[dict], segs: dict, translators: dict) -> str:
    """Why the synthetic channel does not help, from what it carries: per setting the vessel separability of T2,
    synthetic and real TOF, the vessel band's share of the translation error, and the segmentation differences."""
    parts = []
    separability = {r["setting"]: r["auc"] for r in runs if r["arm"].startswith("vessel separability")}
    for setting, auc in separability.items():
        mean = {c: float(np.mean([a[c] for a in auc.values()])) for c in ("T2", "TOF", "synthetic TOF")}
        info = {c: abs(v - 0.5) for c, v in mean.items()}
        brighter = mean["synthetic TOF"] > 0.5
        core = 100 * float(np.mean([a["core_fraction"] for a in auc.values() if "core_fraction" in a] or [np.nan]))
        if setting == next(iter(separability)):
            parts.append(f"On the 2.0 mm grid {core:.2f} % of the vessel voxels have vessel on all six sides: nearly "
                         "every vessel is one or two voxels thick, so its intensity is mixed with its neighbours'.")
        parts.append(
            f"{setting}: the synthetic TOF separates vessel from band voxels with AUC {mean['synthetic TOF']:.3f} "
            f"(vessels {'brighter' if brighter else 'darker'} than their surroundings), heavy T2 with "
            f"{mean['T2']:.3f} and the real TOF with {mean['TOF']:.3f}: by intensity alone the generator "
            + ("shows the vessels no better than T2" if info["synthetic TOF"] <= info["T2"] + 0.02
               else "marks them a little more clearly than T2, and nowhere near as clearly as the real TOF") + ".")
    for arm, row in translators.items():
        mae = {region: float(np.mean([q[region]["mae"] for q in row["quality"].values()]))
               for region in ("brain", "vessel band")}
        parts.append(f"{arm}: the mean absolute error in the vessel band is {mae['vessel band']:.3f}, "
                     f"{mae['vessel band'] / mae['brain']:.1f}x the brain's {mae['brain']:.3f}.")
    if {"pix2pix all10", "pix2pix low4"} <= set(translators) and {"all10", "low4"} <= set(separability):
        band = {s: float(np.mean([q["vessel band"]["mae"] for q in translators[f"pix2pix {s}"]["quality"].values()]))
                for s in ("all10", "low4")}
        auc = {s: float(np.mean([a["synthetic TOF"] for a in separability[s].values()])) for s in ("all10", "low4")}
        pairs = {s: translators[f"pix2pix {s}"]["pairs"] for s in ("all10", "low4")}
        parts.append(f"With {pairs['low4']} pairs instead of {pairs['all10']} the synthetic TOF's vessel AUC went from "
                     f"{auc['all10']:.3f} to {auc['low4']:.3f} and the vessel-band error from {band['all10']:.3f} to "
                     f"{band['low4']:.3f}: " + ("more unlabelled pairs did not teach the generator the vessels."
                                                 if auc["low4"] < 0.55 else "the vessels now show brighter than "
                                                 "their surroundings, as in TOF."))
    for setting, arms in segs.items():
        if "T2" in arms and "T2 + synthetic TOF" in arms:
            sens = {a: float(np.mean([m["vessels"]["sensitivity"] for m in arms[a]["cases"].values()
                                      if finite(m["vessels"].get("sensitivity"))])) for a in arms}
            parts.append(f"{setting}: vessel sensitivity " + ", ".join(f"{a} {v:.3f}" for a, v in sens.items()) + ".")
    tests = {setting: paired(case_scores(arms["T2"]), case_scores(arms["T2 + synthetic TOF"]))
             for setting, arms in segs.items() if "T2" in arms and "T2 + synthetic TOF" in arms}
    words = {"holds": "a gain", "reversed": "a loss", "not significant": "no significant difference"}
    measured = {setting: f"{test['median_diff']:+.3f} Dice, median; Holm-adjusted p {fmt_p(adjusted)}: "
                         f"{words.get(verdict(test, adjusted), 'not testable')}"
                for (setting, test), adjusted in zip(tests.items(), holm([t["p"] for t in tests.values()]),
                                                     strict=True)}
    cause = (" The synthetic channel is computed from the T2 channel the segmentation model already sees; where "
             "pix2pix learned from the same cases as the segmentation model (all10) it can add no information, only "
             "a different rendering of it, which the segmentation network on T2 alone can learn to compute itself"
             + (f" (measured: {measured['all10']})" if "all10" in measured else "") + ". The generator could add "
             "information only from pairs the segmentation model does not see (low4)"
             + (f" (measured: {measured['low4']})" if "low4" in measured else "") + ", and only if T2 shows the "
             "vessels at all: the synthetic brains draw them dark in heavy T2 (flow voids, prior intensity 0.03 "
             "against 0.18 for white matter and 1.0 for CSF), but mixed with CSF or tissue in voxels one or two wide "
             "they are barely separable, and what the generator cannot see in T2 it cannot paint into TOF. "
             "Heavy-T2 cisternography shows the large arteries in the CSF of the basal cisterns; synthesis can only "
             "help for vessels like those, at a resolution where they span several voxels.")
    return "**Why it does not hold.** " + " ".join(parts) + cause


def _d_generator_errors(separability: list[dict]) -> list[str]:
    """What the generator gets wrong, for the settings whose synthetic TOF does not show vessels brighter than their
    surroundings (AUC below 0.55): the figures' reading, tied to that measured condition."""
    blind = [r["setting"] for r in separability
             if np.mean([a["synthetic TOF"] for a in r["auc"].values()]) < 0.55]
    if not blind:
        return []
    return [f"**What the generator gets wrong** ({', '.join(blind)}). The synthetic TOF reproduces the tissue "
            "contrast of a TOF image (white matter a little brighter than cortex, dark CSF and ventricles, the "
            "skull ring) but not the vessels, which are what a TOF image is for: in the figures its "
            "maximum-intensity projection is a uniform grey where the real one shows the arterial tree, and the "
            "difference image is the vessels themselves. By the AUC above, vessel voxels are, if anything, darker "
            "than their surroundings in the synthetic image, the way they are in heavy T2, the opposite of TOF. "
            "The L1 + adversarial objective is dominated by the tissue; the vessels, 0.4-2 % of the brain in "
            "these data (docs/synth_brain.md) and barely marked in T2, cost little to get wrong."]


def _d_artefacts(rows: list[dict]) -> list[str]:
    """What the generator paints outside the brain (``d|artefacts`` rows): per setting, in how many held-out cases
    its largest bright component sits at the same place, how large it is, how dark the real TOF is there, and how
    little heavy T2 explains it (the spread of the T2 percentile over the cases)."""
    lines = []
    for row in rows:
        cases = [c for c in row["cases"].values() if "largest" in c]
        if not cases:
            continue
        centres = np.array([c["centre"] for c in cases])
        low, high = centres.min(axis=0), centres.max(axis=0)
        sizes = [c["largest"] for c in cases]
        real = [c["real_median"] for c in cases]
        t2 = [c["t2_percentile_median"] for c in cases]
        lines += [f"**Outside the brain** ({row['setting']}, `{row['key']}`): in {len(cases)} of "
                  f"{len(row['cases'])} held-out cases the synthetic TOF has a bright blob outside the brain "
                  f"({min(sizes)}-{max(sizes)} voxels above 0.5 in the scaled units; "
                  f"{int(np.median([c['synthetic'] for c in row['cases'].values()]))} bright voxels outside the "
                  f"brain per case against {int(np.median([c['real'] for c in row['cases'].values()]))} in the real "
                  f"TOF, medians), always near the same place (centres within x {low[0]}-{high[0]}, y "
                  f"{low[1]}-{high[1]}, z {low[2]}-{high[2]} of the voxel grid), where the real TOF is dark (median "
                  f"{min(real):+.2f} to {max(real):+.2f}) and where heavy T2 shows anything from dark to bright "
                  f"(median T2 percentile of the brain's {min(t2):.0f} to {max(t2):.0f}): a position-bound artefact "
                  "of the generator, not a translation of anything in T2. It lies outside the brain, where the "
                  "vessel labels are background, so a segmentation model given this channel has to learn to "
                  "ignore it; a reason to look at a generator's output before using it.", ""]
    return lines


def _d_separability(rows: list[dict]) -> list[str]:
    """What each channel tells about the vessels: the AUC of vessel against band voxels, per channel."""
    if not rows:
        return []
    channels = ("T2", "TOF", "synthetic TOF")
    lines = ["How well each channel's intensity alone separates the vessel voxels from the rest of the vessel band "
             "(AUC over the held-out cases, mean ± sd; 0.5 = no information, below 0.5 = vessels darker, as flow "
             "voids in heavy T2 are):", "", "| pix2pix | " + " | ".join(f"AUC {c}" for c in channels) + " |",
             "|---|" + "---:|" * len(channels)]
    for row in rows:
        lines.append(f"| {row['setting']} | " + " | ".join(mean_sd([a[c] for a in row["auc"].values()])
                                                          for c in channels) + " |")
    return [*lines, ""]


# ---------------------------------------------------------------------------------------------------------- (e)

CLAIMED_BEST = {"binary": "dice_focal", "multiclass": "ce_dtm"}
PAPER_BEST = {"binary": "92.8 % mean Dice", "multiclass": "up to 93.1 %"}


def loss_ranking(runs: dict[str, dict]) -> dict:
    """The product's ranking (versaseg.tasks.loss_study.compare: rank score, significance score) plus the number of
    losses each beats after Holm's correction over the 66 pairwise tests of each (class, metric)."""
    from scipy import stats

    from versaseg.tasks.loss_study import LOWER_IS_BETTER, METRICS, compare

    losses = list(runs)
    classes = [c for c in next(iter(next(iter(runs.values()))["cases"].values())) if not c.startswith("mean")]
    long = [{"loss": loss, "fold": 0, "case": case, "class": c, "metric": m,
             "value": per[c].get(m) if finite(per[c].get(m)) else float("nan")}
            for loss, row in runs.items() for case, per in row["cases"].items() for c in classes for m in METRICS]
    summary = compare(long, losses, classes)
    holm_beats = {loss: 0 for loss in losses}
    for c in classes:
        for metric in METRICS:
            sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
            pairs, ps = [], []
            for i, a in enumerate(losses):
                for b in losses[i + 1:]:
                    x = [runs[a]["cases"][k][c].get(metric) for k in sorted(runs[a]["cases"])]
                    y = [runs[b]["cases"][k][c].get(metric) for k in sorted(runs[a]["cases"])]
                    ok = [finite(u) and finite(v) for u, v in zip(x, y, strict=True)]
                    xs = np.array([u for u, o in zip(x, ok, strict=True) if o])
                    ys = np.array([v for v, o in zip(y, ok, strict=True) if o])
                    if len(xs) < 2 or np.all(xs == ys):
                        continue
                    pairs.append((a, b, np.median(sign * (xs - ys))))
                    ps.append(float(stats.wilcoxon(xs, ys).pvalue))
            for (a, b, diff), p in zip(pairs, holm(ps), strict=True):
                if p < ALPHA and diff != 0:
                    holm_beats[a if diff > 0 else b] += 1
    summary["holm_beats"] = holm_beats
    summary["classes"] = classes
    return summary


def _against_claimed(arms: dict[str, dict], claimed: str) -> list[tuple[str, str]]:
    """Each other loss minus the claimed best, paired over the held-out cases' mean Dice, Holm over the family:
    (test line, the loss's name when it is significantly better than the claimed one, else '')."""
    others = [loss for loss in arms if loss != claimed]
    tests = [paired(case_scores(arms[claimed]), case_scores(arms[loss])) for loss in others]
    adjusted = holm([t["p"] for t in tests])
    return [(_test_line(f"`{loss}` minus `{claimed}`", t, a), loss if verdict(t, a) == "holds" else "")
            for loss, t, a in zip(others, tests, adjusted, strict=True)]


def roughness(curve: dict) -> float:
    """Mean absolute change of the validation mean Dice between consecutive epochs over the second half of
    training: how unsteady the learning is once the model is past its first rise."""
    values = np.array(curve["val_dice_mean"])
    half = values[len(values) // 2:]
    return float(np.mean(np.abs(np.diff(half)))) if len(half) > 1 else float("nan")


def claim_e(rows: dict) -> tuple[dict, str, dict]:
    text = ("Dice + focal weighting is best for binary vessel segmentation, CE + distance-map weighting for "
            "multi-class, and focal weighting stabilises training under class imbalance")
    runs = rows["e"]
    tasks = {task: {r["arm"]: r for r in runs if r.get("task") == task and r.get("seed", 0) == 0}
             for task in ("binary", "multiclass")}
    if not any(tasks.values()):
        return _pending("e", text, "Dice+focal 92.8 % (binary); CE+distance map up to 93.1 % (multi-class)")
    lines = [f"## (e) {text}", "",
             "`python benchmarks/reproduce.py run --claims e`: the 12 losses of the weighting study (docs/losses.md), "
             "each trained once at the common budget on the 10 training cases (channels T1, T2, TOF) and scored on "
             "the 16 held-out cases (with 8, no pair could survive Holm's correction over 66 tests): **binary** "
             "(vessels) and **multiclass** (cerebrum, cerebellum, brainstem, "
             "vessels). Rank score: mean rank over classes and the four metrics (Dice, HD95, ASSD, sensitivity; "
             "1 = best), from `versaseg.tasks.loss_study.compare` (what `versaseg study losses` reports). "
             "Significance: the number of (loss, class, metric) comparisons won by a two-sided Wilcoxon test at "
             "0.05, uncorrected (`study losses`' score) and after Holm's correction over the 66 pairs of each "
             "(class, metric).", ""]
    found, verdict_parts, ours_parts = {}, [], []
    curves = {}
    for task, arms in tasks.items():
        if not arms:
            continue
        ranking = loss_ranking(arms)
        order = sorted(arms, key=lambda loss: ranking["losses"][loss]["rank_score"])
        classes = ranking["classes"]
        lines += [f"**{task}** ({len(arms)} of {len(LOSSES)} losses finished)", "",
                  "| loss | rank score | significance (uncorrected) | significance (Holm) | " +
                  " | ".join(f"Dice {c}" for c in classes) + " | validation roughness |",
                  "|---|---:|---:|---:|" + "---:|" * (len(classes) + 1)]
        for loss in order:
            entry = ranking["losses"][loss]
            dice = [mean_sd([m[c].get("dice") for m in arms[loss]["cases"].values()]) for c in classes]
            lines.append(f"| {loss} | {entry['rank_score']:.2f} | {entry['significance_score']} | "
                         f"{ranking['holm_beats'][loss]} | " + " | ".join(dice) +
                         f" | {roughness(arms[loss]['curve']):.4f} |")
        claimed = CLAIMED_BEST[task]
        position = order.index(claimed) + 1 if claimed in order else None
        found[task] = (order[0], position)
        top_holm = max(ranking["holm_beats"].values())
        lines += ["", f"Best rank score: `{order[0]}`; the research's best, `{claimed}`, ranks "
                  f"{position if position else '–'} of {len(order)}"
                  + (f" (Holm significance {ranking['holm_beats'][claimed]}; the highest is {top_holm})"
                     if claimed in order else " (not finished)") + ".", ""]
        complete = len(arms) == len(LOSSES)
        best_dice = mean_score(arms[order[0]])
        ours_parts.append(f"{task}: best `{order[0]}` (mean Dice {best_dice:.3f}); `{claimed}` ranks "
                          f"{position or '–'}/{len(order)}")
        head_to_head = _against_claimed(arms, claimed) if claimed in arms else []
        if head_to_head:
            lines += [f"Every other loss against `{claimed}` (mean Dice per held-out case; Holm over the "
                      f"{len(head_to_head)} tests):", "", *[line for line, _ in head_to_head], ""]
        if complete:
            better = [name for _, name in head_to_head if name]
            if position != 1 or better:
                lines += [_why_e(task, arms, claimed, order[0]), ""]
            word = ("holds" if position == 1 and not better else
                    f"does not hold ({', '.join(f'`{b}`' for b in better)} significantly better)" if better else
                    f"does not hold as stated (`{claimed}` ranks {position}; no loss is significantly better "
                    "after Holm: the data do not separate the top losses)")
            verdict_parts.append(f"{task}: {word}" + _unconverged(arms))
        else:
            verdict_parts.append(f"{task}: pending ({len(arms)}/{len(LOSSES)})")
        curves[f"claim e: {task}"] = {loss: arms[loss]["curve"] for loss in order if arms[loss].get("curve")}
        pairs = [(f, b) for f, b in (("ce_focal", "ce"), ("dice_focal", "dice")) if f in arms and b in arms]
        for focal, base in pairs:
            lines.append(f"- {task}: validation roughness `{focal}` {roughness(arms[focal]['curve']):.4f} against "
                         f"`{base}` {roughness(arms[base]['curve']):.4f} (one run each: descriptive, no test).")
        lines.append("")
    stability_lines, stability_verdict = _e_stability([r for r in runs if r.get("task") == "binary"])
    lines += stability_lines
    if stability_verdict:
        verdict_parts.append(stability_verdict)
    lines += [f"![validation curves]({IMAGES}/curves_e.png)", ""]
    return ({"claim": "(e) " + text, "paper": "Dice+focal 92.8 % mean Dice (binary); CE+distance map up to 93.1 % "
             "(multi-class)", "ours": "; ".join(ours_parts), "verdict": "; ".join(verdict_parts)},
            "\n".join(lines), curves)


def _why_e(task: str, arms: dict[str, dict], claimed: str, best: str) -> str:
    """Why the claimed loss is not the best here, from the runs: how far apart the losses are, how many of them the
    data cannot tell from the best (Holm over the tests against it), and the class where the claimed loss falls
    furthest behind."""
    means = {loss: mean_score(row) for loss, row in arms.items()}
    others = [loss for loss in arms if loss != best]
    tests = [paired(case_scores(arms[best]), case_scores(arms[loss])) for loss in others]
    adjusted = holm([t["p"] for t in tests])
    tied = [loss for loss, t, a in zip(others, tests, adjusted, strict=True) if verdict(t, a) != "reversed"]
    classes = [c for c in next(iter(arms[best]["cases"].values())) if not c.startswith("mean")]
    gaps = {c: mean_score(arms[claimed], [c]) - mean_score(arms[best], [c]) for c in classes}
    worst = min(gaps, key=gaps.get)
    text = (f"**Why it does not hold as stated ({task}).** The {len(arms)} losses reach mean Dice "
            f"{min(means.values()):.3f} to {max(means.values()):.3f}; {len(tied)} of the {len(others)} others are "
            f"not significantly worse than the best, `{best}` ({means[best]:.3f}), after Holm's correction over the "
            f"{len(others)} tests against it. `{claimed}` reaches {means[claimed]:.3f}"
            + (f", {gaps[worst]:+.3f} on {worst}" if len(classes) > 1 else "") + ".")
    if max(means.values()) - min(means.values()) < 0.02:
        text += (" The whole study lies within 0.02 Dice: at this budget and on these data the weighting decides "
                 "little, and which loss ranks first is decided by differences smaller than the case-to-case "
                 "spread.")
    return text


def seed_spread(rows: list[dict]) -> dict[str, float]:
    """Per held-out case the standard deviation over the seeds' runs of the case's mean Dice: how much the result
    for that case depends on the run rather than on the loss."""
    per_seed = [case_scores(r) for r in rows]
    cases = sorted(set.intersection(*(set(s) for s in per_seed)))
    return {case: float(np.std([s[case] for s in per_seed])) for case in cases}


def _e_stability(binary: list[dict]) -> tuple[list[str], str]:
    """The stability check: focal weighting against its unweighted base over 3 seeds of the binary task. Test: per
    held-out case the seed-to-seed sd of the Dice, paired between the two losses (Wilcoxon, Holm over the pairs)."""
    seeds = {}
    for r in binary:
        seeds.setdefault(r["arm"], {})[r.get("seed", 0)] = r
    wanted = [(f, b) for f, b in (("ce_focal", "ce"), ("dice_focal", "dice"))]
    ready = [(f, b) for f, b in wanted if len(seeds.get(f, {})) >= 3 and len(seeds.get(b, {})) >= 3]
    if not ready:
        done = sum(len(seeds.get(loss, {})) - (0 in seeds.get(loss, {})) for pair in wanted for loss in pair)
        return ([f"**Stability** (focal weighting against its base over 3 seeds, binary task): {done} of 8 "
                 "extra-seed runs finished; the test needs all three seeds of a pair.", ""], "")
    lines = ["**Stability under class imbalance** (binary task: the vessels are ~1 % of the brain). Each focal loss "
             "and its unweighted base trained with seeds 0, 1, 2. Per held-out case, the standard deviation over "
             "the three seeds of its vessel Dice (run-to-run spread); tested paired by case (Wilcoxon, Holm over "
             "the pairs; 'holds' = the focal loss's spread is lower). Roughness: mean over the seeds of the "
             "validation curve's epoch-to-epoch change in the second half.", "",
             "| loss | mean Dice per seed | spread per case (mean) | roughness |", "|---|---|---:|---:|"]
    family, names = [], []
    for focal, base in ready:
        spreads = {}
        for loss in (base, focal):
            rows = [seeds[loss][k] for k in sorted(seeds[loss])]
            spreads[loss] = seed_spread(rows)
            lines.append(f"| {loss} | " + ", ".join(f"{mean_score(r):.3f}" for r in rows)
                         + f" | {np.mean(list(spreads[loss].values())):.4f} | "
                         f"{np.mean([roughness(r['curve']) for r in rows]):.4f} |")
        # a lower spread is better: test base minus focal so that 'holds' reads as focal is steadier
        family.append(paired(spreads[focal], spreads[base]))
        names.append(f"spread of `{base}` minus spread of `{focal}`")
    adjusted = holm([t["p"] for t in family])
    lines += ["", *[_test_line(n, t, a, unit="sd of Dice") for n, t, a in zip(names, family, adjusted, strict=True)],
              ""]
    verdicts = [verdict(t, a) for t, a in zip(family, adjusted, strict=True)]
    complete = len(ready) == len(wanted)
    return lines, ("stabilising: " + (", ".join(f"{f}: {v}" for (f, _), v in zip(ready, verdicts, strict=True)))
                   + ("" if complete else " (pending the other pair)"))


# ---------------------------------------------------------------------------------------------------------- (f)


def _f_budget(key: str) -> int:
    """Total epochs of a claim-f row from its key: 'f|single|E60|seed0' -> 60, 'f|cascade|E30+30|seed0' -> 60."""
    return sum(int(n) for n in key.split("|")[2].removeprefix("E").split("+"))


def _f_tests(arms: dict[str, dict]) -> tuple[list[str], list[dict], list, list[str]]:
    """Cascade minus single stage per structure: names, tests, Holm-adjusted p, verdicts."""
    classes = [c for c in next(iter(arms["cascade"]["cases"].values())) if not c.startswith("mean")]
    family = [paired(case_scores(arms["single stage"], classes=[c]), case_scores(arms["cascade"], classes=[c]))
              for c in classes]
    adjusted = holm([t["p"] for t in family])
    return ([f"{c}: cascade minus single stage" for c in classes], family, adjusted,
            [verdict(t, a) for t, a in zip(family, adjusted, strict=True)])


def _f_coverage(rows: list[dict], budget: int) -> tuple[list[str], bool]:
    """The line on how well stage 1 placed the stage-2 boxes at ``budget`` (the ``f|roi-coverage`` row), and whether
    every box held every voxel of every structure with room to spare (then stage 1's own plateau does not decide
    what stage 2 sees, and the verdict is not provisional for it)."""
    row = next((r for r in rows if r.get("arm") == "roi coverage" and r.get("epochs") == budget), None)
    if row is None:
        return ["- Stage 1's boxes: coverage of the true structures not measured yet "
                "(`f|roi-coverage` pending)."], False
    per = row["coverage"]
    cells = [(case, name, v) for case, structures in per.items() for name, v in structures.items()]
    whole = [c for c in per if all(v["coverage"] >= 1 for v in per[c].values())]
    lowest = min(cells, key=lambda cell: cell[2]["coverage"])
    margins = [v["margin_voxels"] for _, _, v in cells if v["margin_voxels"] is not None]
    localised = len(whole) == len(per) and bool(margins) and min(margins) >= 1
    line = (f"- Stage 1's boxes (`f|roi-coverage`): every voxel of all three structures lies inside the stage-2 box "
            f"in {len(whole)} of {len(per)} held-out cases")
    line += ("" if len(whole) == len(per) else
             f" (lowest: {lowest[1]} of {lowest[0]}, {lowest[2]['coverage'] * 100:.1f} % inside)")
    if margins:
        line += (f"; the structures lie at least {min(margins)} voxels (median {np.median(margins):.0f}) inside the "
                 "box faces that are not the volume's border")
    if localised:
        line += (". Stage 1's validation Dice was still rising (it is listed under Convergence), but its boxes "
                 "already contain all of every structure: more stage-1 training can only move faces that lie in "
                 "background, so its plateau does not make this verdict provisional")
    return [line + "."], localised


def _why_f(arms: dict[str, dict], names: list[str], verdicts: list[str], coverage: dict | None) -> str:
    """Why the cascade does not win every structure, from the per-case differences of the structures that did not
    hold: how many cases it wins, the case it loses most, whether that case lost voxels (sensitivity) or gained
    wrong ones (precision), whether stage 1's box held the structure there, and the difference without that case."""
    single, cascade = arms["single stage"]["cases"], arms["cascade"]["cases"]
    parts = []
    for name, word in zip(names, verdicts, strict=True):
        if word == "holds":
            continue
        structure = name.split(":")[0]
        diffs = {case: cascade[case][structure]["dice"] - single[case][structure]["dice"] for case in single}
        worst = min(diffs, key=diffs.get)
        better = sum(d > 0 for d in diffs.values())
        rest = float(np.mean([d for case, d in diffs.items() if case != worst]))
        s_case, c_case = single[worst][structure], cascade[worst][structure]
        text = (f"{structure}: the cascade is better in {better} of {len(diffs)} cases; its largest loss is {worst} "
                f"({diffs[worst]:+.3f}; sensitivity {s_case['sensitivity']:.2f} -> {c_case['sensitivity']:.2f}, "
                f"precision {s_case['precision']:.2f} -> {c_case['precision']:.2f})")
        held = coverage and coverage.get(worst, {}).get(structure)
        if held and held["coverage"] >= 1:
            text += (f", although stage 1's box held all of it ({held['margin_voxels']} voxels from the nearest "
                     "face): the loss is stage 2's own")
        text += (f"; without {worst} the mean difference is {rest:+.3f}" +
                 (", so one case decides the test" if rest > 0 and better >= len(diffs) - 2 else
                  ", so the cascade is no better on this structure even without it"))
        parts.append(text)
    worst_cases = {min(single, key=lambda c, s=n.split(":")[0]: cascade[c][s]["dice"] - single[c][s]["dice"])
                   for n, w in zip(names, verdicts, strict=True) if w != "holds"}
    weakest = min(single, key=lambda c: np.mean([v["dice"] for v in single[c].values()]))
    tail = ""
    if worst_cases == {weakest}:
        tail = (f" {weakest} is also the case the single stage segments worst (mean Dice "
                f"{np.mean([v['dice'] for v in single[weakest].values()]):.3f}, against "
                f"{np.median([np.mean([v['dice'] for v in single[c].values()]) for c in single]):.3f} for the "
                "median case): the hardest case for both arms, and the one where stage 2, which sees only the crop, "
                "loses more.")
    return "**Why it holds only in part.** " + "; ".join(parts) + "." + tail


def claim_f(rows: dict) -> tuple[dict, str, dict]:
    text = "the two-stage cascade improves the basal ganglia over a single stage"
    budgets: dict[int, dict[str, dict]] = {}
    for row in rows["f"]:
        if "cases" in row:
            budgets.setdefault(_f_budget(row["key"]), {})[row["arm"]] = row
    if not budgets:
        return _pending("f", text, "direction only")
    complete = sorted(b for b, arms in budgets.items() if {"single stage", "cascade"} <= set(arms))
    main = complete[-1] if complete else max(budgets)
    arms = budgets[main]
    lines = [f"## (f) {text}", "",
             "`python benchmarks/reproduce.py run --claims f`: caudate, putamen, pallidum "
             "(`--label-set basal-ganglia`, 10 training and 8 held-out cases at 1.5 mm). Single stage: the 2D "
             "`unet` on whole axial slices for the budget's epochs. Cascade (`versaseg cascade train`, defaults: "
             "stage 1 at 4 mm on the merged structures, stage 2 on full-resolution crops): half the epochs per "
             f"stage, the same number of iterations. Budgets run: {', '.join(map(str, sorted(budgets)))} epochs; "
             f"the verdict is read at {main}.", "", f"**{main} epochs**", "", *_class_table(arms), ""]
    if main in complete:
        names, family, adjusted, verdicts = _f_tests(arms)
        lines += [f"Tests at {main} epochs (Dice per case and structure; Holm over the {len(family)} structures):",
                  ""]
        lines += [_test_line(n, t, a) for n, t, a in zip(names, family, adjusted, strict=True)]
        coverage_lines, localised = _f_coverage(rows["f"], main)
        judged = {arm: ({k: v for k, v in row.items() if k != "stage1_plateau"} if localised else row)
                  for arm, row in arms.items()}
        verdict_text = ("**holds**" if all(v == "holds" for v in verdicts) else
                        "**does not hold**" if not any(v == "holds" for v in verdicts) else "**partly**") + \
            " (" + "; ".join(f"{n.split(':')[0]}: {v}" for n, v in zip(names, verdicts, strict=True)) + ")" + \
            _unconverged(judged)
        ours = f"{main} epochs: " + "; ".join(f"{n.split(':')[0]} {t['mean_a']:.3f} -> {t['mean_b']:.3f}"
                                              for n, t in zip(names, family, strict=True))
        classes = [n.split(":")[0] for n in names]
        hd = [paired(case_scores(arms["single stage"], "hd95", [c]), case_scores(arms["cascade"], "hd95", [c]))
              for c in classes]
        lines.append("- HD95 (mm), cascade minus single stage, not in the family: " + "; ".join(
            f"{c} median {t['median_diff']:+.2f} (p {fmt_p(t['p'])})" for c, t in zip(classes, hd, strict=True)) + ".")
        lines.append(f"- Training time: single stage {arms['single stage']['train_seconds'] / 60:.1f} min, cascade "
                     f"{arms['cascade']['train_seconds'] / 60:.1f} min (both stages, same iterations: stage 2 trains "
                     "on crops).")
        lines += coverage_lines
        for other in [b for b in complete if b != main]:
            o_names, o_family, o_adjusted, o_verdicts = _f_tests(budgets[other])
            lines.append(f"- At {other} epochs: " + "; ".join(
                f"{n.split(':')[0]} {t['mean_a']:.3f} -> {t['mean_b']:.3f} (Holm p {fmt_p(a)}, {v})"
                for n, t, a, v in zip(o_names, o_family, o_adjusted, o_verdicts, strict=True)) +
                _unconverged(budgets[other]) + ".")
    else:
        verdict_text, ours = "pending", "pending"
    curves = {f"claim f: basal ganglia, {main} epochs": {a: r["curve"] for a, r in arms.items() if r.get("curve")}}
    if "cascade" in arms and arms["cascade"].get("stage1_curve"):
        curves[f"claim f: basal ganglia, {main} epochs"]["cascade stage 1"] = arms["cascade"]["stage1_curve"]
    if main in complete and any(v != "holds" for v in verdicts):
        coverage = next((r["coverage"] for r in rows["f"] if r.get("arm") == "roi coverage"
                         and r.get("epochs") == main), None)
        lines += ["", _why_f(arms, names, verdicts, coverage)]
    lines += ["", f"![validation curves]({IMAGES}/curves_f.png)", ""]
    return ({"claim": "(f) " + text, "paper": "direction only (no number in the brief)", "ours": ours,
             "verdict": verdict_text}, "\n".join(lines), curves)
