"""The demo: built-in synthetic brains -> train a 2D U-Net -> predict the test cases -> evaluate -> HTML report.

Every step calls the same API as the CLI commands (``train``, ``predict``, ``evaluate``), so the report shows what a
user gets from them.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from versaseg.errors import InputError

DEMO_FILES = ("data", "run", "predictions", "figures", "explain", "evaluation.json", "evaluation.csv", "report.html")


def _prepare(out: Path, overwrite: bool) -> None:
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
    from versaseg.training.config import TrainConfig
    from versaseg.training.distributed import resolve_device
    from versaseg.training.run import train
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
                         network_kwargs={"depth": 4, "base_width": 16}, save_every=max(1, epochs // 3))
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
    shutil.copyfile(out / "run" / "curves.png", figures / "curves.png")

    started = time.perf_counter()
    explained = _explain_first_case(out, test_cases_files[0], data, device)
    timings["explain"] = time.perf_counter() - started

    table = {name: {metric: f"{stats['mean']:.3f} ± {stats['std']:.3f}" for metric, stats in metrics.items()}
             for name, metrics in result.aggregates.items()}
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
        ("Reproduce from the CLI", [
            f"versaseg data synth-brain DATA --cases {cases} --test-cases {test_cases} --spacing {spacing}",
            f"versaseg train {data} --out RUN --epochs {epochs} --iterations {iterations}",
            f"versaseg predict RUN {data} --out PRED",
            f"versaseg evaluate PRED {data / 'labelsTs'} --labels {data / 'dataset.json'}",
            f"versaseg explain RUN {' '.join(str(p) for p in test_cases_files[0].images)} --out EXPLAIN --label "
            f"{test_cases_files[0].label or data / 'labelsTs' / (test_cases_files[0].case_id + '.nii.gz')} "
            "--class vessels",
        ]),
    ]
    report = out / "report.html"
    write_html_report(report, "versaseg demo report", sections)
    return report


def _explain_first_case(out: Path, files, data: Path, device: str) -> list[Path]:
    """``versaseg explain`` of the demo run on one test case; the report's figures (paths relative to ``out``)."""
    from versaseg.tasks.explain import ExplainSettings, explain
    from versaseg.training.distributed import resolve_device

    label = files.label or data / "labelsTs" / f"{files.case_id}.nii.gz"
    explain(out / "run", files.images, out / "explain", label=label,
            settings=ExplainSettings(classes=["vessels"]), device=resolve_device(device), show_progress=False)
    folder = out / "explain"
    layers = sorted((folder / "layers").glob("*.png"))
    wanted = [folder / "prediction.png", folder / "cam_vessels.png", *layers[:1], *layers[-2:-1],
              *sorted(folder.glob("timeline_*.png")), folder / "dice_timeline.png", folder / "index.html"]
    return [path.relative_to(out) for path in wanted if path.exists()]
