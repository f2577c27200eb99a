"""Synthetic brain generation: speed of ``data synth-brain`` on this machine, class frequencies and the doc figures.

Measures, each in a fresh Python process (imports, reference anatomy and process start-up included):

* the headline: 20 cases at 1.5 mm with 2 worker processes (the issue's target: under 2 minutes on 2 cores);
* a breakdown in one process: reference anatomy build, then per case the generation and the NIfTI writing;
* ``--tiny`` (4 mm) datasets of 2 cases, one process.

Then counts the labels of every generated case (brain label set, and a basal-ganglia dataset) and writes

* the section "## Synthetic brain generation" of ``--out`` (other sections are kept),
* the section "## Class frequencies" of ``--doc`` (other sections are kept),
* ``synth_brain_case0.png``, ``synth_brain_case1.png`` (brain set) and ``synth_brain_basal_ganglia.png`` into
  ``--images`` (``versaseg data preview`` mosaics titled with the machine).

    python benchmarks/synth_speed.py --out docs/benchmarks.md --doc docs/synth_brain.md --images docs/images
    python benchmarks/synth_speed.py --out /tmp/bench.md --doc /tmp/doc.md --images /tmp/img --cases 4   # smoke run
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from docs_section import cpu_model, write_section

SECTION = "## Synthetic brain generation"
FREQUENCY_SECTION = "## Class frequencies"
COMMAND = "python benchmarks/synth_speed.py --out docs/benchmarks.md --doc docs/synth_brain.md --images docs/images"

_DATASET_CODE = """
import json, sys, time
start = time.perf_counter()
from versaseg.data.synthetic.dataset import write_synth_dataset
write_synth_dataset(sys.argv[1], cases=int(sys.argv[2]), spacing=float(sys.argv[3]), workers=int(sys.argv[4]),
                    label_set=sys.argv[5], tiny=sys.argv[6] == "tiny", seed=0)
print(json.dumps({"inside_s": time.perf_counter() - start}))
"""

_BREAKDOWN_CODE = """
import json, sys, tempfile, time
from pathlib import Path
start = time.perf_counter()
from versaseg.data.synthetic import brain
from versaseg.io.image import Volume, write_volume
imported = time.perf_counter()
spacing = (float(sys.argv[1]),) * 3
reference = brain.build_reference(brain.reference_spacing(spacing))
built = time.perf_counter()
shape = brain.head_shape(spacing)
generate, write = [], []
with tempfile.TemporaryDirectory() as folder:
    for seed in range(int(sys.argv[2])):
        t0 = time.perf_counter()
        case = brain.generate_case(shape, spacing, seed, "brain", reference)
        t1 = time.perf_counter()
        like = Volume(case.label, case.affine)
        for name, image in case.channels.items():
            write_volume(Path(folder) / f"{seed}_{name}.nii.gz", image, like)
        write_volume(Path(folder) / f"{seed}_label.nii.gz", case.label, like)
        generate.append(t1 - t0)
        write.append(time.perf_counter() - t1)
print(json.dumps({"import_s": imported - start, "reference_s": built - imported, "generate_s": generate,
                  "write_s": write, "shape": list(shape), "voxels": int(shape[0] * shape[1] * shape[2])}))
"""


def run_fresh(code: str, *args: str) -> tuple[float, dict]:
    """Run ``code`` in a fresh interpreter; returns (wall seconds from spawn to exit, its last stdout line as JSON)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          encoding="utf-8", check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"benchmark step failed:\n{proc.stderr}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> str:
    model = cpu_model()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{model}, {os.cpu_count()} cores visible ({usable} usable), Python {platform.python_version()}, "
            f"numpy {np.__version__}, {platform.system()} {platform.release()}")


def label_counts(root: Path) -> tuple[dict[str, int], np.ndarray]:
    """The dataset's labels {name: value} and per-case label voxel counts (cases, classes) of labelsTr."""
    from versaseg.io.image import read_volume

    labels = json.loads((root / "dataset.json").read_text())["labels"]
    rows = []
    for path in sorted((root / "labelsTr").glob("*.nii.gz")):
        rows.append(np.bincount(np.asarray(read_volume(path).array).ravel(), minlength=len(labels)))
    return labels, np.array(rows, float)


def frequency_table(labels: dict[str, int], counts: np.ndarray, title: str) -> list[str]:
    volume = counts / counts.sum(axis=1, keepdims=True)
    foreground = counts / counts[:, 1:].sum(axis=1, keepdims=True)
    lines = [f"{title} ({len(counts)} cases):", "",
             "| label | value | % of volume (mean) | % of foreground (mean) | % of foreground (min - max) |",
             "|---|---:|---:|---:|---:|"]
    for name, value in sorted(labels.items(), key=lambda kv: kv[1]):
        if value == 0:
            lines.append(f"| {name} | 0 | {100 * volume[:, 0].mean():.2f} | | |")
            continue
        share = 100 * foreground[:, value]
        lines.append(f"| {name} | {value} | {100 * volume[:, value].mean():.3f} | {share.mean():.2f} | "
                     f"{share.min():.2f} - {share.max():.2f} |")
    return lines + [""]


def previews(brain_root: Path, basal_root: Path, images: Path, machine_name: str) -> list[Path]:
    from versaseg.data.case import load_case
    from versaseg.io.dataset import load_dataset
    from versaseg.viz.preview import case_mosaic

    written = []
    jobs = [(brain_root, 0, "synth_brain_case0.png"), (brain_root, 1, "synth_brain_case1.png"),
            (basal_root, 0, "synth_brain_basal_ganglia.png")]
    for root, index, name in jobs:
        spec = load_dataset(root)
        files = spec.training_cases()[index]
        case = load_case(files, set(spec.labels.values()))
        channels = [(spec.channel_names[c], case.image[c]) for c in sorted(spec.channel_names)]
        title = (f"versaseg data synth-brain --label-set {spec.extra['label_set']} --spacing 1.5 --seed 0: "
                 f"{files.case_id}   ({machine_name.split(',')[0]}, benchmarks/synth_speed.py)")
        written.append(case_mosaic(channels, case.label, images / name, spacing=case.spacing,
                                   class_names={v: k for k, v in spec.labels.items()}, mip_channel="TOF",
                                   title=title))
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"), help="benchmarks markdown to update")
    parser.add_argument("--doc", type=Path, default=Path("docs/synth_brain.md"), help="doc whose class-frequency "
                        "section to update")
    parser.add_argument("--images", type=Path, default=Path("docs/images"), help="folder for the preview PNGs")
    parser.add_argument("--cases", type=int, default=20, help="cases of the headline run")
    parser.add_argument("--basal-cases", type=int, default=6, help="cases of the basal-ganglia dataset")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the headline run")
    args = parser.parse_args(argv)

    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    name = machine()
    load_before = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="synth_speed_"))
    try:
        brain_root, basal_root = scratch / "brain", scratch / "basal"
        print(f"headline: {args.cases} cases at 1.5 mm, {args.workers} workers ...", flush=True)
        headline_wall, headline = run_fresh(_DATASET_CODE, brain_root, args.cases, 1.5, args.workers, "brain", "-")
        size_mb = sum(p.stat().st_size for p in brain_root.rglob("*") if p.is_file()) / 1e6
        print(f"  {headline_wall:.1f} s", flush=True)
        print("breakdown (one process, 3 cases) ...", flush=True)
        _, breakdown = run_fresh(_BREAKDOWN_CODE, 1.5, 3)
        print("tiny ...", flush=True)
        tiny_wall, tiny = run_fresh(_DATASET_CODE, scratch / "tiny", 2, 4.0, 1, "brain", "tiny")
        _, tiny_breakdown = run_fresh(_BREAKDOWN_CODE, 4.0, 3)
        print(f"basal ganglia: {args.basal_cases} cases ...", flush=True)
        basal_wall, _ = run_fresh(_DATASET_CODE, basal_root, args.basal_cases, 1.5, args.workers, "basal-ganglia",
                                  "-")
        load_after = os.getloadavg()[0]

        brain_labels, brain_counts = label_counts(brain_root)
        basal_labels, basal_counts = label_counts(basal_root)
        cases_info = json.loads((brain_root / "dataset.json").read_text())["cases"]
        lengths = np.array([info["vessel_length_mm"] for info in cases_info.values()])

        generate, write = np.array(breakdown["generate_s"]), np.array(breakdown["write_s"])
        shape = "x".join(map(str, breakdown["shape"]))
        lines = [
            SECTION, "",
            f"Machine: {name}. Run {started}; load average {load_before:.2f} before, {load_after:.2f} after (a shared "
            f"machine: other jobs may have run beside this one). Produced by `{COMMAND}`.", "",
            "Each row is a fresh Python process, timed from start to exit (imports, building the reference anatomy "
            "from the atlas files, generating, writing NIfTI files).", "",
            "| run | cases | grid | workers | wall s | s per case |",
            "|---|---:|---|---:|---:|---:|",
            f"| `synth-brain --cases {args.cases}` (1.5 mm) | {args.cases} | {shape} | {args.workers} | "
            f"{headline_wall:.1f} | {headline_wall / args.cases:.2f} |",
            f"| `synth-brain --label-set basal-ganglia` (1.5 mm) | {args.basal_cases} | {shape} | {args.workers} | "
            f"{basal_wall:.1f} | {basal_wall / args.basal_cases:.2f} |",
            f"| `synth-brain --tiny --cases 2` (4 mm) | 2 | {'x'.join(map(str, tiny_breakdown['shape']))} | 1 | "
            f"{tiny_wall:.2f} | {tiny_wall / 2:.2f} |",
            "",
            (f"Target: 20 cases at 1.5 mm in under 2 minutes on 2 cores: **{headline_wall:.0f} s** "
             f"({'met' if headline_wall < 120 else 'NOT met'})" if args.cases == 20 else
             f"Smoke run with {args.cases} cases (the target, 20 cases in under 2 minutes, needs --cases 20)")
            + f"; dataset size {size_mb:.0f} MB (int16 images, gzip level 1).", "",
            "Breakdown in one process (1.5 mm, 3 cases): "
            f"imports {breakdown['import_s']:.2f} s, reference anatomy (1 mm grid) {breakdown['reference_s']:.2f} s "
            "once per process, then per case: generation "
            f"{generate.mean():.2f} s (min {generate.min():.2f}), writing 4 NIfTI files {write.mean():.2f} s. "
            f"Tiny (4 mm, reference at 2.67 mm): reference {tiny_breakdown['reference_s']:.2f} s, generation "
            f"{np.mean(tiny_breakdown['generate_s']):.3f} s and writing {np.mean(tiny_breakdown['write_s']):.3f} s "
            f"per case; the 2-case tiny dataset took {tiny['inside_s']:.2f} s inside its process "
            f"({tiny_wall:.2f} s with interpreter start-up and imports).", "",
            f"Arterial tree per case (brain set, 1.5 mm): centreline length {lengths.mean():.0f} mm "
            f"(min {lengths.min():.0f}, max {lengths.max():.0f}).", "",
        ]
        lines += frequency_table(brain_labels, brain_counts, "Class frequencies, `--labels brain`, 1.5 mm")
        write_section(args.out, SECTION, "\n".join(lines))

        doc = [FREQUENCY_SECTION, "",
               f"Measured by `{COMMAND}` on {name.split(',')[0]} ({started}): label voxel counts of every generated "
               f"case (seed 0, 1.5 mm, default field of view {shape}). 'Foreground' is every non-zero label.", ""]
        doc += frequency_table(brain_labels, brain_counts, "`--labels brain`")
        doc += frequency_table(basal_labels, basal_counts, "`--labels basal-ganglia`")
        write_section(args.doc, FREQUENCY_SECTION, "\n".join(doc))
        for path in previews(brain_root, basal_root, args.images, name):
            print(f"wrote {path}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"wrote {SECTION!r} to {args.out} and {FREQUENCY_SECTION!r} to {args.doc}")


if __name__ == "__main__":
    main()
