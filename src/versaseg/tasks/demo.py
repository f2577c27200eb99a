"""The demo: built-in synthetic brains -> train a 2D U-Net -> predict the test cases -> evaluate -> explain -> a
two-stage cascade for the basal ganglia -> HTML report.

Every step calls the same API as the CLI commands (``train``, ``predict``, ``evaluate``, ``explain``,
``cascade train``/``predict``), so the report shows what a user gets from them.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np

from versaseg.errors import InputError
from versaseg.io.atomic import atomic_path, check_output_folder

DEMO_FILES = ("data", "run", "predictions", "figures", "explain", "cascade", "evaluation.json", "evaluation.csv",
              "report.html")
BASAL_GANGLIA = {1: "caudate", 2: "putamen", 3: "pallidum"}
DEMO_NETWORK = {"depth": 4, "base_width": 16}  # a smaller U-Net than the default, for a demo of minutes on a CPU


def _prepare(out: Path, overwrite: bool) -> None:
    check_output_folder(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise InputError("demo output folder is not empty; pass --overwrite to replace it", out)
        if not (out / "report.html").exists() and not (out / "run").exists() and not (out / "data").exists():
            raise InputError("refusing to --overwrite a non-empty folder that is not a versaseg demo", out)
        for name in DEMO_FILES:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def run_demo(out: str | Path, epochs: int = 30, iterations: int = 25, cases: int = 8, test_cases: int = 3,
             device: str = "auto", overwrite: bool = False, seed: int = 0, spacing: float = 2.5) -> Path:
    """Run the whole pipeline into ``out`` and return the path of ``out/report.html``."""
    from versaseg.data.case import load_case
    from versaseg.data.synthetic.dataset import write_synth_dataset
    from versaseg.evaluation.evaluate import evaluate_paths
    from versaseg.inference.predictor import Predictor
    from versaseg.io.dataset import load_dataset
    from versaseg.io.image import read_volume
    from versaseg.io.run_dir import resolve_device
    from versaseg.tasks.training import train
    from versaseg.training.config import TrainConfig
    from versaseg.viz.overlays import overlay_mosaic
    from versaseg.viz.report import write_html_report

    out = Path(out)
    _prepare(out, overwrite)
    timings = {}
    started = time.perf_counter()
    data = write_synth_dataset(out / "data", cases=cases, test_cases=test_cases, seed=seed, spacing=spacing)
    timings["generate data"] = time.perf_counter() - started

    started = time.perf_counter()
    config = TrainConfig(epochs=epochs, iterations_per_epoch=iterations, dim="2d", axis=2, seed=seed,
                         network_kwargs=dict(DEMO_NETWORK), save_every=max(1, epochs // 3))
    trainer = train(config, data, out / "run", device=device)
    timings["train"] = time.perf_counter() - started

    started = time.perf_counter()
    predictor = Predictor(out / "run", device=resolve_device(device))
    test_cases_files = load_dataset(data).test_cases()
    predictor.predict_to_folder(test_cases_files, out / "predictions")
    timings["predict"] = time.perf_counter() - started

    started = time.perf_counter()
    result = evaluate_paths(out / "predictions", data / "labelsTs", data / "dataset.json", progress=False)
    result.write_json(out / "evaluation.json")
    result.write_csv(out / "evaluation.csv")
    timings["evaluate"] = time.perf_counter() - started

    figures = out / "figures"
    figures.mkdir(exist_ok=True)
    overlays = []
    for files in test_cases_files:
        case = load_case(files)
        truth = read_volume(data / "labelsTs" / f"{files.case_id}.nii.gz").array
        pred = read_volume(out / "predictions" / f"{files.case_id}.nii.gz").array
        png = figures / f"{files.case_id}.png"
        overlay_mosaic(case.reference.array.astype(np.float32), [("ground truth", truth), ("prediction", pred)], png,
                       title=f"{files.case_id}: T1 with ground truth and prediction",
                       spacing=case.reference.spacing)
        overlays.append(Path("figures") / png.name)
    with atomic_path(figures / "curves.png") as tmp:  # a kill mid-copy leaves no truncated PNG
        shutil.copyfile(out / "run" / "curves.png", tmp)

    started = time.perf_counter()
    explained = _explain_first_case(out, test_cases_files[0], data, device)
    timings["explain"] = time.perf_counter() - started

    started = time.perf_counter()
    cascade = _cascade_basal_ganglia(out / "cascade", cases, test_cases, seed, spacing, epochs, iterations, device)
    timings["cascade (basal ganglia)"] = time.perf_counter() - started

    table = _metrics_table(result)
    history = trainer.history[-1]
    sections = [
        ("What ran", [
            f"Data: {cases} training and {test_cases} test synthetic brains at {spacing} mm from the "
            f"Neuromorphometrics "
            f"atlas (`versaseg data synth-brain`: T1, heavy T2, TOF; labels cerebrum, cerebellum, brainstem, "
            f"vessels) written to data/ in the nnU-Net v2 layout.",
            f"Training: 2D U-Net along the axial axis, {epochs} epochs x {iterations} iterations, batch "
            f"{trainer.config.batch_size}, patch {trainer.config.patch_size}; final training loss "
            f"{history['train_loss']:.4f}, validation Dice {history.get('val_dice_mean', float('nan')):.3f}.",
            {phase: f"{seconds:.1f} s" for phase, seconds in timings.items()},
        ]),
        ("Learning curves", [Path("figures") / "curves.png"]),
        ("Test-set metrics (mean ± std over cases; HD95 and ASSD in mm)", [table]),
        ("Test cases", overlays),
        ("What the network computes (versaseg explain)", [
            f"One axial slice of {test_cases_files[0].case_id} through the trained network: the prediction, a "
            "Grad-CAM map of where the vessel class's score comes from, the feature maps of the first encoder "
            f"stage and of the last decoder stage, and how one layer, the prediction and the per-class Dice changed "
            f"at the weights saved every {config.save_every} epochs (`versaseg train --save-every`). Every layer, "
            "its activation statistics and explanations: explain/index.html.",
            *explained]),
        ("Two-stage cascade for small structures (versaseg cascade)", cascade),
        ("Reproduce from the CLI", [
            f"versaseg data synth-brain --out DATA --cases {cases} --test-cases {test_cases} --spacing {spacing}",
            f"versaseg train {data} --out RUN --epochs {epochs} --iterations {iterations} --save-every "
            f"{config.save_every} --network-kwargs '{json.dumps(DEMO_NETWORK)}'",
            f"versaseg predict RUN {data} --out PRED",
            f"versaseg evaluate PRED {data / 'labelsTs'} --dataset-json {data / 'dataset.json'}",
            f"versaseg explain RUN {' '.join(str(p) for p in test_cases_files[0].images)} --out EXPLAIN --label "
            f"{test_cases_files[0].label or data / 'labelsTs' / (test_cases_files[0].case_id + '.nii.gz')} "
            "--class vessels",
            f"versaseg data synth-brain --out DATA_BG --label-set basal-ganglia --cases {cases} "
            f"--test-cases {test_cases} --spacing {spacing}",
            f"versaseg cascade train DATA_BG --out CASCADE --stage1-epochs {max(1, epochs // 3)} --stage2-epochs "
            f"{epochs} --iterations {iterations} --network-kwargs '{json.dumps(DEMO_NETWORK)}'",
            "versaseg cascade predict CASCADE DATA_BG --out PRED_BG --figures",
        ]),
    ]
    report = out / "report.html"
    write_html_report(report, "versaseg demo report", sections)
    return report


def _explain_first_case(out: Path, files, data: Path, device: str) -> list[Path]:
    """``versaseg explain`` of the demo run on one test case; the report's figures (paths relative to ``out``)."""
    from versaseg.io.run_dir import resolve_device
    from versaseg.tasks.explain import ExplainSettings, explain

    label = files.label or data / "labelsTs" / f"{files.case_id}.nii.gz"
    explain(out / "run", files.images, out / "explain", label=label,
            settings=ExplainSettings(classes=["vessels"]), device=resolve_device(device), show_progress=False)
    folder = out / "explain"
    layers = sorted((folder / "layers").glob("*.png"))
    wanted = [folder / "prediction.png", folder / "cam_vessels.png", *layers[:1], *layers[-2:-1],
              *sorted(folder.glob("timeline_*.png")), folder / "dice_timeline.png", folder / "index.html"]
    return [path.relative_to(out) for path in wanted if path.exists()]


def _metrics_table(result) -> dict:
    """{class: {metric: "mean ± std"}} of an evaluation result's aggregates."""
    return {name: {metric: f"{stats['mean']:.3f} ± {stats['std']:.3f}" for metric, stats in metrics.items()}
            for name, metrics in result.aggregates.items()}


def _cascade_basal_ganglia(folder: Path, cases: int, test_cases: int, seed: int, spacing: float, epochs: int,
                           iterations: int, device: str) -> list:
    """``versaseg cascade`` on the same brains with the basal-ganglia labels: train (stage 1 a third of ``epochs``,
    stage 2 all of them), predict the test cases with figures, evaluate; the report section's items."""
    from versaseg.data.synthetic.dataset import write_synth_dataset
    from versaseg.evaluation.evaluate import evaluate_paths
    from versaseg.io.dataset import load_dataset
    from versaseg.io.run_dir import resolve_device
    from versaseg.tasks.cascade import CascadePredictor, CascadeSettings, train_cascade
    from versaseg.training.config import TrainConfig

    data = write_synth_dataset(folder / "data", cases=cases, test_cases=test_cases, seed=seed, spacing=spacing,
                               label_set="basal-ganglia")
    settings = CascadeSettings()
    stage1 = TrainConfig(epochs=max(1, epochs // 3), iterations_per_epoch=iterations, dim="2d", axis=2, seed=seed,
                         network_kwargs=dict(DEMO_NETWORK))
    stage2 = dataclasses.replace(stage1, epochs=epochs)
    started = time.perf_counter()
    train_cascade(data, folder / "run", stage1, stage2, settings, device=device, show_progress=False)
    train_seconds = time.perf_counter() - started
    test_files = load_dataset(data).test_cases()
    for files in test_files:  # the demo knows the ground truth: the figures show it beside the prediction
        files.label = data / "labelsTs" / f"{files.case_id}.nii.gz"
    predictor = CascadePredictor(folder / "run", device=resolve_device(device))
    predictor.predict_to_folder(test_files, folder / "predictions", figures=True, show_progress=False)
    result = evaluate_paths(folder / "predictions", data / "labelsTs", data / "dataset.json", progress=False)
    result.write_json(folder / "evaluation.json")
    rois = json.loads((folder / "predictions" / "cascade_rois.json").read_text())["cases"]
    fractions = ", ".join(f"{r['case']} {r['roi_fraction'] * 100:.1f} %" + (" (fallback: whole volume)"
                                                                           if r["fallback_whole_volume"] else "")
                          for r in rois)
    figures = [Path("cascade") / "predictions" / "figures" / f"{files.case_id}.png" for files in test_files]
    return [
        f"The same brains labelled with the basal ganglia ({', '.join(BASAL_GANGLIA.values())}; together about "
        "0.3 % of the head). Stage 1 segments the three structures as one region on a copy resampled to "
        f"{settings.coarse_spacing:g} mm ({stage1.epochs} epochs); its region plus a {settings.margin_mm:g} mm margin "
        f"is the region of interest (ROI); stage 2 segments the structures at {spacing} mm inside the ROI "
        f"({stage2.epochs} epochs, trained on crops around the ground truth). Training both stages took "
        f"{train_seconds:.0f} s.",
        f"ROI per test case (fraction of the volume stage 2 sees): {fractions}.",
        "Test-set metrics (mean ± std over cases; HD95 and ASSD in mm):",
        _metrics_table(result),
        "In each figure: left, the whole slice with stage 1's coarse region (yellow) and the ROI (cyan box); then "
        "the ROI enlarged with the cascade's labels and with the ground truth. The benchmark on 1.5 mm brains "
        "(docs/benchmarks.md) compares the cascade with a single-stage model.",
        *figures,
    ]
