"""Label-completion benchmark: nearest-slice copy, shape interpolation, ITK's morphological contour interpolator
(3D Slicer's "Fill between slices") and ``versaseg complete`` (its defaults in both label conventions, ablations of its
settings, and the 2D networks of ``--model cnn``), on sparse and noisy annotations.

Every run takes a fully labelled case, keeps every K-th slice along one axis (the first at K // 2), corrupts a fraction
of the kept slices (:func:`versaseg.data.degrade.degrade_label`, seed fixed per case/axis/K/noise), completes it with a
method and scores the dense result against the full label: Dice and HD95 (mm) per class, and the method's wall time.

Cases: synthetic brains (``versaseg data synth-brain --labels structures``: cerebrum, cerebellum, brainstem, basal
ganglia; generated once into ``--data``) and, with ``--mni``, the real ICBM 2009c T1 template with the
Neuromorphometrics atlas labels mapped to the same four classes.

Results are appended to a JSON-lines file (``--results``); a run already in it is skipped, so repeated invocations with
different grids accumulate (and a killed benchmark resumes). ``--docs`` rewrites the "## Label completion" section of
docs/benchmarks.md from everything in the results file.

The runs behind docs/benchmarks.md (raw results committed in benchmarks/results/completion.jsonl):

    python benchmarks/completion.py --cases 3 --mni --methods nearest,shape,itk,versaseg --every 8,4,16,2 \
        --noise 0.3,0 --axes 0,1,2
    python benchmarks/completion.py --cases 3 --mni --methods versaseg-slicer --every 8 --noise 0.3 --axes 0,1,2
    python benchmarks/completion.py --cases 3 --mni --methods "versaseg:cleanse=1" --every 8 --noise 0.3,0 --axes 0,1,2
    python benchmarks/completion.py --cases 3 --mni --methods versaseg-slicer --every 16 --noise 0.3 --axes 0,1,2
    python benchmarks/completion.py --cases 3 --mni --methods nnunet --every 8 --noise 0.3 --axes 0,1,2
    python benchmarks/completion.py --cases 3 --mni --methods nnunet --every 4 --noise 0 --axes 0,1,2
    python benchmarks/completion.py --cases 1 --mni --methods nnunet:600 --every 8 --noise 0.3 --axes 2
    python benchmarks/completion.py --methods none --cases 0 --docs docs/benchmarks.md     # tables only

Methods: ``nearest``, ``shape``, ``itk``; ``versaseg`` / ``versaseg-slicer`` (``versaseg complete`` as a fresh
process, ignore-label / Slicer convention); ``versaseg:field=value;...`` (CompletionSettings fields changed, via the
API); ``nnunet`` (nnU-Net v2, 2d configuration, its ignore label, trained on the one case for the wall time ``versaseg``
took on the same run, then predicting it: ``benchmarks/nnunet_anchor.py``) and ``nnunet:SECONDS`` (a fixed training
budget); any other name is a registry network for ``--model cnn``.

ITK's interpolator and nnU-Net are optional extras: ``pip install -e .[bench] torch==2.13.0``
(itk-morphologicalcontourinterpolation, nnunetv2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_section import cpu_model, write_section  # noqa: E402

CLASSES = {1: "cerebrum", 2: "cerebellum", 3: "brainstem", 4: "basal ganglia"}
IGNORE = 9
CHEAP = ("nearest", "shape", "itk")
TITLE = "## Label completion"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("benchmark_data/completion"),
                        help="Folder for the generated cases (created once, reused).")
    parser.add_argument("--cases", type=int, default=1, help="Synthetic cases to run on (test cases 0..N-1).")
    parser.add_argument("--mni", action="store_true", help="Also run on the MNI152 template with atlas labels.")
    parser.add_argument("--mni-only", action="store_true", help="Run only on the MNI152 template.")
    parser.add_argument("--methods", default="nearest,shape,itk,unet",
                        help="Comma list of nearest, shape, itk and network names (versaseg complete --network).")
    parser.add_argument("--every", default="8", help="Comma list of K (annotate every K-th slice).")
    parser.add_argument("--noise", default="0,0.3", help="Comma list of noisy-slice fractions.")
    parser.add_argument("--axes", default="2", help="Comma list of annotation axes (0 = sagittal, 1 = coronal, "
                        "2 = axial for these RAS volumes).")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/completion.jsonl"),
                        help="JSON-lines file of finished runs (appended to; runs already in it are skipped).")
    parser.add_argument("--docs", type=Path, default=None, help="Rewrite the section of this markdown file.")
    args = parser.parse_args()

    methods = [m for m in args.methods.split(",") if m]
    grid = [(axis, k, noise) for axis in _ints(args.axes) for k in _ints(args.every)
            for noise in _floats(args.noise)]
    cases = [] if args.mni_only else synthetic_cases(args.data, args.cases)
    if args.mni or args.mni_only:
        cases.append(mni_case(args.data))
    done = {row["key"] for row in read_results(args.results)}
    todo = [(c, a, k, n, m) for c in cases for (a, k, n) in grid for m in methods
            if run_key(c["name"], a, k, n, m) not in done]
    print(f"{len(todo)} runs to do ({len(done)} already in {args.results})", flush=True)
    for number, (case, axis, every, noise, method) in enumerate(todo, 1):
        row = run_one(case, axis, every, noise, method, args.results)
        if row is None:
            continue
        row["commit"], row["machine"] = _commit(), f"{cpu_model()}, {os.cpu_count()} cores"
        append_result(args.results, row)
        mean = np.mean([row["dice"][str(c)] for c in CLASSES])
        print(f"[{number}/{len(todo)}] {row['key']}: mean Dice {mean:.3f}, {row['seconds']:.1f} s", flush=True)
    if args.docs is not None:
        write_section(args.docs, TITLE, render(read_results(args.results)))
        print(f"wrote '{TITLE}' in {args.docs}")


def _commit() -> str:
    """The code version a run used (git's short hash of HEAD, '+' when the tree had uncommitted changes)."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=Path(__file__).parent).stdout

    return git("rev-parse", "--short", "HEAD").strip() + ("+" if git("status", "--porcelain", "-uno").strip() else "")


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def run_key(case: str, axis: int, every: int, noise: float, method: str) -> str:
    return f"{case}|axis{axis}|K{every}|noise{noise:g}|{method}"


# -- cases ---------------------------------------------------------------------------------------------------------


def synthetic_cases(data: Path, count: int) -> list[dict]:
    """Test cases synth_0NN of a 'structures' dataset at 1.5 mm (generated into data/structures if missing)."""
    from versaseg.data.synthetic.dataset import write_synth_dataset

    root = data / "structures"
    if not (root / "dataset.json").exists() or len(list((root / "labelsTs").glob("*.nii.gz"))) < count:
        print(f"generating {count} synthetic test cases into {root}", flush=True)
        write_synth_dataset(root, cases=1, test_cases=count, seed=7, label_set="structures", overwrite=True)
    labels = sorted((root / "labelsTs").glob("*.nii.gz"))[:count]
    cases = []
    for label in labels:
        name = label.name.removesuffix(".nii.gz")
        cases.append({"name": name, "label": label,
                      "images": sorted((root / "imagesTs").glob(f"{name}_*.nii.gz"))})
    return cases


def mni_case(data: Path) -> dict:
    """The ICBM 2009c T1 template (real MR) with the atlas labels as the four classes, at 1.5 mm (written once)."""
    from versaseg.data.synthetic import brain

    root = data / "mni152"
    image, label = root / "mni152_0000.nii.gz", root / "mni152_label.nii.gz"
    if not label.exists():
        root.mkdir(parents=True, exist_ok=True)
        reference = brain.build_reference(1.5)
        truth = brain.tissue_to_label("structures")[reference.tissue]
        nib.save(nib.Nifti1Image(reference.template.astype(np.float32), reference.affine), image)
        nib.save(nib.Nifti1Image(truth.astype(np.uint8), reference.affine), label)
    return {"name": "mni152", "label": label, "images": [image]}


# -- one run -------------------------------------------------------------------------------------------------------


def run_one(case: dict, axis: int, every: int, noise: float, method: str, results: Path) -> dict | None:
    from versaseg.data.degrade import degrade_label
    from versaseg.evaluation.metrics import dice, hd95

    truth_nii = nib.load(case["label"])
    truth = np.asarray(truth_nii.dataobj).astype(np.int16)
    spacing = tuple(float(s) for s in truth_nii.header.get_zooms()[:3])
    seed = [sum(ord(ch) for ch in case["name"]), axis, every, int(round(noise * 100))]
    sparse, report = degrade_label(truth, every, axis=axis, offset=every // 2, noisy_fraction=noise, seed=seed,
                                   ignore_label=IGNORE)
    wrong = sorted(s.index for s in report.slices if s.kind)
    corruptions = {str(s.index): {"kind": s.kind, "dice_cost": round(slice_dice_cost(truth, sparse, axis, s.index), 4)}
                   for s in report.slices if s.kind}
    started = time.perf_counter()
    extra: dict = {}
    if method == "nearest" or method == "shape":
        dense = slice_method(sparse, axis, spacing, method)
    elif method == "itk":
        dense = itk_interpolation(np.where(sparse == IGNORE, 0, sparse), axis)
        if dense is None:
            print("skipping itk: pip install itk-morphologicalcontourinterpolation", flush=True)
            return None
    elif method.startswith("nnunet"):
        budget = paired_budget(results, run_key(case["name"], axis, every, noise, "versaseg"), method)
        dense, extra = nnunet_complete(case, sparse, truth_nii.affine, budget)
    else:
        dense, extra = versaseg_complete(case, sparse, truth_nii.affine, method)
    seconds = time.perf_counter() - started
    row = {"key": run_key(case["name"], axis, every, noise, method), "case": case["name"], "axis": axis,
           "every": every, "noise": noise, "method": method, "seconds": round(seconds, 2),
           "dice": {str(c): round(dice(dense == c, truth == c), 4) for c in CLASSES},
           "hd95": {str(c): round(hd95(dense == c, truth == c, spacing), 2) for c in CLASSES},
           "truly_wrong": wrong, "corruptions": corruptions, **extra}
    # what the output makes of each corrupted slice (the defaults keep the annotation; --cleanse may correct it)
    row["corrupted_cost_after"] = {i: round(slice_dice_cost(truth, dense, axis, int(i)), 4) for i in corruptions}
    return row


def slice_dice_cost(truth: np.ndarray, sparse: np.ndarray, axis: int, index: int) -> float:
    """1 - the corrupted slice's Dice against the truth (mean over the classes on either): what the mistake costs."""
    true_slice, given = np.take(truth, index, axis=axis), np.take(sparse, index, axis=axis)
    present = [c for c in CLASSES if (true_slice == c).any() or (given == c).any()]
    if not present:
        return 0.0
    return 1.0 - float(np.mean([2 * np.sum((true_slice == c) & (given == c))
                                / (np.sum(true_slice == c) + np.sum(given == c)) for c in present]))


def slice_method(sparse: np.ndarray, axis: int, spacing: tuple, method: str) -> np.ndarray:
    from versaseg.data.slice_interpolation import nearest_slice_copy, shape_interpolation

    slices_first = np.moveaxis(sparse, axis, 0)
    ids = np.flatnonzero((slices_first != IGNORE).any(axis=(1, 2)))
    annotated = slices_first[ids]
    if method == "nearest":
        dense = nearest_slice_copy(annotated, ids, slices_first.shape[0])
    else:
        plane = tuple(spacing[d] for d in range(3) if d != axis)
        dense = shape_interpolation(annotated, ids, slices_first.shape[0], list(CLASSES), (spacing[axis], *plane))
    return np.moveaxis(dense, 0, axis)


def itk_interpolation(sparse_zero: np.ndarray, axis: int) -> np.ndarray | None:
    """ITK MorphologicalContourInterpolator along ``axis`` (unannotated slices are 0, the Slicer convention)."""
    try:
        import itk
    except ImportError:
        return None
    array = np.ascontiguousarray(np.transpose(sparse_zero.astype(np.uint8), (2, 1, 0)))  # ITK arrays are (z, y, x)
    image = itk.image_from_array(array)
    interpolator = itk.MorphologicalContourInterpolator.New(image)
    interpolator.SetAxis(int(axis))
    interpolator.Update()
    return np.transpose(np.array(itk.array_from_image(interpolator.GetOutput())), (2, 1, 0)).astype(np.int16)


def versaseg_complete(case: dict, sparse: np.ndarray, affine: np.ndarray, method: str) -> tuple[np.ndarray, dict]:
    """Run ``versaseg complete``: the defaults (``versaseg``: ignore-label convention; ``versaseg-slicer``: 3D Slicer
    convention, unannotated slices 0 and no ignore label) as a fresh CLI process, as a user would, so its time
    includes start-up, loading and writing; ablations and the older 2D-network model through the API on the same
    files. Returns the dense label and the report's facts."""
    import subprocess

    from versaseg.data.case import load_case
    from versaseg.io.dataset import CaseFiles
    from versaseg.tasks.completion import complete_case

    slicer = method == "versaseg-slicer"
    with tempfile.TemporaryDirectory() as tmp:
        path, out, report_path = Path(tmp) / "sparse.nii.gz", Path(tmp) / "dense.nii.gz", Path(tmp) / "report.json"
        nib.save(nib.Nifti1Image(np.where(sparse == IGNORE, 0, sparse).astype(np.uint8) if slicer
                                 else sparse.astype(np.uint8), affine), path)
        if method in ("versaseg", "versaseg-slicer"):
            command = [str(Path(sys.executable).parent / "versaseg"), "complete", *map(str, case["images"]),
                       "--label", str(path), "--out", str(out), "--report", str(report_path)]
            command += [] if slicer else ["--ignore-label", str(IGNORE)]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"versaseg complete failed: {done.stderr.strip()}")
            report = json.loads(report_path.read_text())
            labels = np.asarray(nib.load(out).dataobj)
        else:
            loaded = load_case(CaseFiles(case["name"], list(case["images"]), path))
            result = complete_case(loaded, IGNORE, "auto", completion_settings(method), progress=lambda message: None)
            report, labels = result.report, result.labels
    judged = [s["slice"] for s in report["slices_judged_wrong"]]
    return labels.astype(np.int16), {"judged_wrong": judged, "voxels_corrected": report["voxels_corrected"],
                                     "time_split_s": report["time_split_s"],
                                     "extrapolated_fraction": report["extrapolated_fraction"],
                                     "slices": report["slices"]}


def paired_budget(results: Path, versaseg_key: str, method: str) -> float:
    """nnU-Net's training budget: ``nnunet:SECONDS``, or for ``nnunet`` the wall time of ``versaseg complete``
    (defaults, fresh process, all of it: start-up, loading, training, check, prediction, writing) on the same run,
    read from the results file (so run ``versaseg`` first)."""
    _, _, fixed = method.partition(":")
    if fixed:
        return float(fixed)
    rows = [r for r in read_results(results) if r["key"] == versaseg_key]
    if not rows:
        raise SystemExit(f"method nnunet trains for the time versaseg took on the same run: run {versaseg_key} "
                         "first")
    return float(rows[-1]["seconds"])


def nnunet_complete(case: dict, sparse: np.ndarray, affine: np.ndarray, budget_s: float) -> tuple[np.ndarray, dict]:
    """nnU-Net v2, 2d configuration, ignore label, trained on this one case for ``budget_s`` seconds and predicting
    it (``benchmarks/nnunet_anchor.py`` as a fresh process: how it runs nnU-Net is in that script's docstring)."""
    import subprocess

    try:
        import nnunetv2  # noqa: F401
    except ImportError:
        raise SystemExit("method nnunet needs nnU-Net v2: pip install -e .[bench] torch==2.13.0") from None
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "sparse.nii.gz", Path(tmp) / "dense.nii.gz"
        nib.save(nib.Nifti1Image(sparse.astype(np.uint8), affine), path)
        command = [sys.executable, str(Path(__file__).with_name("nnunet_anchor.py")), *map(str, case["images"]),
                   "--sparse", str(path), "--ignore-label", str(IGNORE), "--out", str(out),
                   "--budget-s", f"{budget_s:.1f}"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nnU-Net anchor failed: {done.stderr.strip()[-2000:]}")
        split = json.loads(done.stdout.strip().splitlines()[-1])
        labels = np.asarray(nib.load(out).dataobj).astype(np.int16)
    return labels, {"budget_s": round(budget_s, 1), "nnunet": split}


def completion_settings(method: str):
    """``versaseg`` (the defaults), ``versaseg:field=value;...`` (an ablation of CompletionSettings fields), or a
    network name (the 2D-network model of earlier versions, ``model=cnn``)."""
    from dataclasses import fields

    from versaseg.tasks.completion import CompletionSettings

    name, _, overrides = method.partition(":")
    if name != "versaseg":
        return CompletionSettings(model="cnn", network=method)
    types = {f.name: type(getattr(CompletionSettings(), f.name)) for f in fields(CompletionSettings)}
    values = {}
    for item in filter(None, overrides.split(";")):
        key, _, value = item.partition("=")
        kind = types[key]
        values[key] = value in ("1", "true", "True") if kind is bool else kind(value)
    return CompletionSettings(**values)


# -- results -------------------------------------------------------------------------------------------------------


def read_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_result(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")


def _mean_dice(row: dict) -> float:
    return float(np.mean([row["dice"][str(c)] for c in CLASSES]))


def _mean_hd95(row: dict) -> float:
    return float(np.mean([row["hd95"][str(c)] for c in CLASSES]))


def _select(rows: list[dict], **where) -> list[dict]:
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def _avg(rows: list[dict], value) -> float:
    return float(np.mean([value(r) for r in rows]))


LABELS = {"nearest": "nearest slice copy", "shape": "shape interpolation (signed distance)",
          "itk": "ITK MorphologicalContourInterpolator", "versaseg": "versaseg complete (defaults, ignore label)",
          "versaseg-slicer": "versaseg complete (defaults, Slicer convention)",
          "versaseg:cleanse=1": "versaseg complete --cleanse",
          "nnunet": "nnU-Net v2 2d, ignore label, trained for versaseg's time"}


def _label(method: str) -> str:
    if method.startswith("nnunet:"):
        return f"nnU-Net v2 2d, ignore label, trained {method.partition(':')[2]} s"
    return LABELS.get(method, f"versaseg complete ({method})" if method.startswith("versaseg")
                      else f"versaseg complete --model cnn --network {method}")


def _key(r: dict) -> tuple:
    return r["case"], r["axis"], r["every"], r["noise"]


def render(rows: list[dict]) -> str:
    """The markdown section from all result rows."""
    if not rows:
        return f"{TITLE}\n\nNo results yet.\n"
    methods = {r["method"] for r in rows}
    order = [m for m in CHEAP if m in methods] + sorted(methods - set(CHEAP))
    commits = sorted({r.get("commit", "?") for r in rows if r["method"] not in CHEAP})
    lines = [TITLE, "",
             f"`python benchmarks/completion.py --cases 3 --mni …` (the commands are in the script's docstring) on "
             f"{cpu_model()} (2 cores, no GPU); raw results, one JSON line per run: "
             "`benchmarks/results/completion.jsonl` (re-render with `--docs`, resume with the same command). Every "
             "K-th slice kept (the first at K // 2), a fraction of the kept slices corrupted by `versaseg data "
             "degrade`'s corruption kinds (leak, over, under, jitter, shift, missed), completed, and scored against "
             "the full label: Dice and HD95 (mm) per class, mean foreground Dice over the four classes. Synthetic "
             "cases are 1.5 mm `synth-brain --label-set structures` test cases (118 x 139 x 118 voxels); `mni152` is "
             "the real ICBM 2009c T1 template (1.5 mm) with the Neuromorphometrics atlas labels. The versaseg rows "
             "run `versaseg complete` as a fresh process (start-up, loading and writing included in its time); "
             "ablations (`versaseg:field=value`) call the API. "
             f"versaseg runs on commit(s) {', '.join(commits)}. `nnunet` is nnU-Net v2 (its own planning, "
             "preprocessing, 2d trainer and predictor, the unannotated voxels as its `ignore` label) trained on "
             "the one case for as long as `versaseg` took on the same run, then predicting that case "
             "(`benchmarks/nnunet_anchor.py` says exactly how); its time adds nnU-Net's planning, preprocessing "
             "and prediction to that budget.", ""]
    for title, part in (("Synthetic brains", [r for r in rows if r["case"] != "mni152"]),
                        ("MNI152 template (real image, atlas labels)", _select(rows, case="mni152"))):
        if part:
            lines += [f"### {title}", ""] + _tables(part, order)
    lines += (["### All cases", ""] + verdicts(rows) + conventions(rows) + timing(rows) + nnunet_runs(rows)
              + slice_check(rows))
    return "\n".join(lines) + "\n"


def _tables(part: list[dict], order: list[str]) -> list[str]:
    lines: list[str] = []
    headline = [r for r in part if r["every"] == 8 and r["noise"] == 0.3]
    if headline:
        lines += ["K = 8, 30 % noisy slices (mean over the runs: cases x axes):", "",
                  "| method | " + " | ".join(f"Dice {n}" for n in CLASSES.values())
                  + " | mean Dice | mean HD95 mm | median time s | runs |", "|---" * (len(CLASSES) + 5) + "|"]
        for method in order:
            sub = _select(headline, method=method)
            if sub:
                seconds = float(np.median([r["seconds"] for r in sub]))
                cells = [f"{_avg(sub, lambda r, c=c: r['dice'][str(c)]):.3f}" for c in CLASSES]
                lines.append(f"| {_label(method)} | "
                             + " | ".join(cells) + f" | **{_avg(sub, _mean_dice):.3f}** | "
                             f"{_avg(sub, _mean_hd95):.1f} | {seconds:.0f} | {len(sub)} |")
        lines.append("")
    settings = sorted({(r["every"], r["noise"]) for r in part})
    lines += ["Mean foreground Dice by K and noisy fraction (mean over the cases and axes run, run count in "
              "brackets; '–' = not run):", "",
              "| method | " + " | ".join(f"K={k}, {round(n * 100)} %" for k, n in settings) + " |",
              "|---" * (len(settings) + 1) + "|"]
    for method in order:
        cells = []
        for k, n in settings:
            sub = _select(part, method=method, every=k, noise=n)
            cells.append("–" if not sub else f"{_avg(sub, _mean_dice):.3f} ({len(sub)})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append("")
    axes = sorted({r["axis"] for r in part})
    if len(axes) > 1:
        lines += ["Mean foreground Dice by annotation axis (all K and noise levels run on that axis):", "",
                  "| method | " + " | ".join(f"axis {a}" for a in axes) + " |", "|---" * (len(axes) + 1) + "|"]
        for method in order:
            cells = []
            for a in axes:
                sub = _select(part, method=method, axis=a)
                cells.append("–" if not sub else f"{_avg(sub, _mean_dice):.3f} ({len(sub)})")
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines + network_study(part, order)


def network_study(part: list[dict], order: list[str]) -> list[str]:
    """The networks compared on exactly the same runs (case, axis, K, noise), by K and noisy fraction."""
    networks = [m for m in order if m not in CHEAP and not m.startswith(("versaseg", "nnunet"))]  # --model cnn networks
    if len(networks) < 2:
        return []

    common = set.intersection(*({_key(r) for r in _select(part, method=m)} for m in networks))
    if not common:
        return []
    settings = sorted({(k[2], k[3]) for k in common})
    lines = ["Network study: `versaseg complete` with each network on the same runs only (mean foreground Dice, "
             "paired runs in brackets; ITK on those runs for reference):", "",
             "| network | " + " | ".join(f"K={k}, {round(n * 100)} %" for k, n in settings) + " | all |",
             "|---" * (len(settings) + 2) + "|"]
    for method in [*networks, "itk"]:
        cells, everything = [], []
        for k, n in settings:
            sub = [r for r in _select(part, method=method, every=k, noise=n) if _key(r) in common]
            everything += sub
            cells.append("–" if not sub else f"{_avg(sub, _mean_dice):.3f} ({len(sub)})")
        total = f"{_avg(everything, _mean_dice):.3f}" if everything else "–"
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {total} |")
    return lines + [""]


def _paired(rows: list[dict], method: str, anchor: str) -> list[tuple[dict, dict]]:
    other = {_key(r): r for r in _select(rows, method=anchor)}
    return [(r, other[_key(r)]) for r in _select(rows, method=method) if _key(r) in other]


def verdicts(rows: list[dict], method: str = "versaseg") -> list[str]:
    """The issue's targets for the default method, on all cases (synthetic and MNI152) and axes run."""
    mine = _select(rows, method=method)
    if not mine:
        return []
    out = [f"Targets for `{method}` (mean foreground Dice over every case and axis run):", "",
           "| target | reached | runs | verdict |", "|---|---|---|---|"]
    for k, noises, goal in ((8, (0.3,), 0.93), (16, (0.3,), 0.85), (4, (0.0, 0.3), 0.96)):
        for noise in noises:
            sub = [r for r in mine if r["every"] == k and r["noise"] == noise]
            if sub:
                value = _avg(sub, _mean_dice)
                out.append(f"| K = {k}, {round(noise * 100)} % noisy: >= {goal} | {value:.3f} | {len(sub)} | "
                           f"{'met' if value >= goal else 'missed'} |")
    for anchor in ("itk", "shape", "nnunet"):
        pairs = _paired(rows, method, anchor)
        if pairs:
            worst = min(pairs, key=lambda p: _mean_dice(p[0]) - _mean_dice(p[1]))
            diff = _mean_dice(worst[0]) - _mean_dice(worst[1])
            below = sum(_mean_dice(a) < _mean_dice(b) for a, b in pairs)
            where = worst[0]["key"].rsplit("|", 1)[0]
            out.append(f"| never below {anchor} (paired runs) | worst {diff:+.3f} ({where}); below in {below} "
                       f"| {len(pairs)} | {'met' if below == 0 else 'missed'} |")
    pairs = [(a, b) for a, b in _paired(rows, method, "itk") if a["every"] >= 8]
    if pairs:
        cells = [(a["dice"][str(c)] - b["dice"][str(c)], c) for a, b in pairs for c in CLASSES]
        below = [(d, c) for d, c in cells if d < 0]
        worst = min(cells)
        out.append(f"| every class above itk at K >= 8 | below in {len(below)} of {len(cells)} class-runs "
                   f"(worst {worst[0]:+.3f}, {CLASSES[worst[1]]}) | {len(pairs)} | "
                   f"{'met' if not below else 'missed'} |")
    return out + [""]


def conventions(rows: list[dict]) -> list[str]:
    """The ignore-label and Slicer conventions, and --cleanse, against the defaults on the same runs."""
    out = []
    for other, what in (("versaseg-slicer", "Slicer convention (unannotated slices 0, annotated background-only "
                                            "slices indistinguishable from unannotated ones)"),
                        ("versaseg:cleanse=1", "`--cleanse` (slices judged wrong corrected)")):
        pairs = _paired(rows, other, "versaseg")
        if not pairs:
            continue
        if not out:
            out = ["Variants against the defaults (ignore label, check without correction) on the same runs:", "",
                   "| variant | settings | runs | mean Dice variant | mean Dice defaults | median paired diff | "
                   "worst paired diff |", "|---|---|---|---|---|---|---|"]
        # --cleanse per noise level: on clean annotations it must not cost (target: never more than 0.002)
        groups = [pairs] if other == "versaseg-slicer" else [
            [p for p in pairs if p[0]["noise"] == n] for n in sorted({a["noise"] for a, _ in pairs})]
        for group in groups:
            diffs = [_mean_dice(a) - _mean_dice(b) for a, b in group]
            settings = ", ".join(f"K={k}/{round(n * 100)} %" for k, n in sorted({(a["every"], a["noise"])
                                                                                  for a, _ in group}))
            out.append(f"| {what} | {settings} | {len(group)} | {_avg([a for a, _ in group], _mean_dice):.3f} | "
                       f"{_avg([b for _, b in group], _mean_dice):.3f} | {np.median(diffs):+.3f} | "
                       f"{min(diffs):+.3f} |")
    return out + [""] + cleansed_slices(rows) if out else []


def cleansed_slices(rows: list[dict], method: str = "versaseg:cleanse=1") -> list[str]:
    """Per corruption kind: the corrupted slices' Dice in the annotation (what the defaults output, since they keep
    annotated slices) and in the ``--cleanse`` output, over the runs that recorded it."""
    mine = [r for r in _select(rows, method=method) if "corrupted_cost_after" in r and r["corruptions"]]
    if not mine:
        return []
    kinds: dict[str, list[tuple[float, float]]] = {}
    for r in mine:
        for index, c in r["corruptions"].items():
            kinds.setdefault(c["kind"], []).append((1 - c["dice_cost"], 1 - r["corrupted_cost_after"][index]))
    out = [f"Corrupted slices before and after `--cleanse` ({len(mine)} runs with noise): the slice's Dice against "
           "the truth in the annotation (= the defaults' output, which keeps annotated slices) and in the cleansed "
           "output.", "",
           "| corruption | slices | Dice before | Dice after | improved by >= 0.05 | worsened by >= 0.05 |",
           "|---|---|---|---|---|---|"]
    for kind in sorted(kinds) + ["all"]:
        pairs = [p for k in kinds for p in kinds[k]] if kind == "all" else kinds[kind]
        before, after = np.mean([b for b, _ in pairs]), np.mean([a for _, a in pairs])
        up = sum(a - b >= 0.05 for b, a in pairs)
        down = sum(b - a >= 0.05 for b, a in pairs)
        out.append(f"| {kind} | {len(pairs)} | {before:.3f} | {after:.3f} | {up} | {down} |")
    return out + [""]


def timing(rows: list[dict], method: str = "versaseg") -> list[str]:
    """Wall time of ``versaseg complete`` (fresh process) per K, and the median split over its steps."""
    mine = [r for r in _select(rows, method=method) if "time_split_s" in r]
    if not mine:
        return []
    steps = list(dict.fromkeys(k for r in mine for k in r["time_split_s"]))
    out = [f"Time of `{method}` per volume (fresh `versaseg complete` process, seconds; steps are the report's "
           "`time_split_s`, the rest is process start-up and imports). Target: <= 30 s at K >= 4.", "",
           "| K | runs | median total | max total | " + " | ".join(f"median {s}" for s in steps) + " |",
           "|---" * (len(steps) + 4) + "|"]
    for k in sorted({r["every"] for r in mine}):
        sub = [r for r in mine if r["every"] == k]
        cells = [f"{np.median([r['time_split_s'].get(s, 0.0) for r in sub]):.1f}" for s in steps]
        out.append(f"| {k} | {len(sub)} | {np.median([r['seconds'] for r in sub]):.1f} | "
                   f"{max(r['seconds'] for r in sub):.1f} | " + " | ".join(cells) + " |")
    return out + [""]


def nnunet_runs(rows: list[dict]) -> list[str]:
    """How far nnU-Net got in its budget: iterations, and where its time went, per method and K."""
    mine = [r for r in rows if r["method"].startswith("nnunet") and "nnunet" in r]
    if not mine:
        return []
    out = ["nnU-Net v2 anchor runs (medians; seconds; patch and batch size from nnU-Net's own 2d plan). Against the "
           "same runs of `versaseg`:", "",
           "| method | K | noise | runs | training budget | iterations | patch x batch | plan + preprocess | "
           "prediction | total | mean Dice nnU-Net | mean Dice versaseg |", "|---" * 12 + "|"]
    versaseg = {_key(r): r for r in _select(rows, method="versaseg")}
    for method, k, noise in sorted({(r["method"], r["every"], r["noise"]) for r in mine}):
        sub = [r for r in mine if (r["method"], r["every"], r["noise"]) == (method, k, noise)]
        paired = [versaseg[_key(r)] for r in sub if _key(r) in versaseg]
        split = [r["nnunet"] for r in sub]
        plan = split[0]
        out.append(f"| {method} | {k} | {round(noise * 100)} % | {len(sub)} | "
                   f"{np.median([r['budget_s'] for r in sub]):.0f} | "
                   f"{np.median([s['iterations'] for s in split]):.0f} | "
                   f"{'x'.join(map(str, plan['patch_size']))} x {plan['batch_size']} | "
                   f"{np.median([s['plan_preprocess_s'] for s in split]):.0f} | "
                   f"{np.median([s['prediction_s'] for s in split]):.0f} | "
                   f"{np.median([r['seconds'] for r in sub]):.0f} | {_avg(sub, _mean_dice):.3f} | "
                   + (f"{_avg(paired, _mean_dice):.3f} |" if paired else "– |"))
    return out + [""]


def slice_check(rows: list[dict], method: str = "versaseg") -> list[str]:
    """Recall and precision of "judged wrong" against the corruptions `degrade` recorded, per corruption kind."""
    mine = [r for r in _select(rows, method=method) if "corruptions" in r and "slices" in r and r["noise"] > 0]
    if not mine:
        return []
    kinds: dict[str, list[int]] = {}
    judged_total = judged_corrupted = clean_total = clean_judged = 0
    for r in mine:
        judged = set(r["judged_wrong"])
        checked = {s["slice"] for s in r["slices"]}
        ends = (min(checked), max(checked)) if checked else ()
        corrupted = {int(i): c for i, c in r["corruptions"].items()}
        judged_total += len(judged)
        judged_corrupted += len(judged & set(corrupted))
        clean = checked - set(corrupted) - set(ends)
        clean_total += len(clean)
        clean_judged += len(judged & clean)
        for index, c in corrupted.items():
            if index in ends or index not in checked:
                continue  # the end slices are never judged
            counts = kinds.setdefault(c["kind"], [0, 0, 0, 0])
            counts[0] += 1
            counts[1] += index in judged
            if c["dice_cost"] >= 0.05:
                counts[2] += 1
                counts[3] += index in judged
    out = [f"Slice check of `{method}` (held-out fold models; end slices excluded), over {len(mine)} runs with "
           "noise. Recall = corrupted slices judged wrong / corrupted slices; the target counts the slices whose "
           "corruption costs the slice >= 0.05 Dice (target recall >= 0.8, precision >= 0.8).", "",
           "| corruption | slices | judged wrong | recall | slices costing >= 0.05 Dice | recall on those |",
           "|---|---|---|---|---|---|"]
    total = [0, 0, 0, 0]
    for kind, c in sorted(kinds.items()):
        total = [a + b for a, b in zip(total, c, strict=True)]
        out.append(f"| {kind} | {c[0]} | {c[1]} | {c[1] / max(1, c[0]):.2f} | {c[2]} | {c[3] / max(1, c[2]):.2f} |")
    out.append(f"| all | {total[0]} | {total[1]} | {total[1] / max(1, total[0]):.2f} | {total[2]} | "
               f"{total[3] / max(1, total[2]):.2f} |")
    out += ["", f"Precision: {judged_corrupted} of {judged_total} slices judged wrong were corrupted "
            f"({judged_corrupted / max(1, judged_total):.2f}); {clean_judged} of {clean_total} clean slices were "
            "judged wrong.", ""]
    return out


if __name__ == "__main__":
    main()
