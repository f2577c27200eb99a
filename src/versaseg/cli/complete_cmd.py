"""``versaseg complete``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from versaseg.cli.common import user_errors


@user_errors
def complete(
    images: list[Path] = typer.Argument(..., help="One or more image files (channels) of the same case."),
    labels: Path = typer.Option(..., "--labels", "-l", help="Sparse label volume with the images' geometry: a few "
                                "annotated slices, possibly with mistakes."),
    out: Path = typer.Option(..., "--out", "-o", help="Dense label volume to write (input geometry)."),
    ignore_label: int = typer.Option(None, "--ignore-label", help="Voxels with this value are unannotated (nnU-Net "
                                     "convention). Without it, slices holding any non-zero label are the annotated "
                                     "ones (3D Slicer convention)."),
    axis: str = typer.Option("auto", help="Annotation axis of the stored array: auto | 0 | 1 | 2."),
    network: str = typer.Option("unet", help="Network from the registry (see `versaseg networks`)."),
    iterations: int = typer.Option(120, help="Training iterations (batches of 16 slices) of each of the two "
                                   "models (one per fold of the annotated slices; one model with --no-cleanse)."),
    cleanse: bool = typer.Option(True, "--cleanse/--no-cleanse", help="Find and correct wrong annotated slices."),
    confidence: float = typer.Option(0.9, help="On a slice judged wrong, held-out probability above which a "
                                     "voxel that disagrees with the annotation is corrected."),
    seed: int = typer.Option(0, help="Random seed."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    report: Path = typer.Option(None, "--report", help="JSON report: slices judged wrong, voxels corrected, time."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Complete a sparsely and noisily annotated label volume: train on the annotated slices, cleanse them, predict
    the rest (between and beyond the annotated slices)."""
    from versaseg.data.case import load_case
    from versaseg.errors import InputError
    from versaseg.io.atomic import check_writable, write_text_atomic
    from versaseg.io.dataset import CaseFiles
    from versaseg.io.image import write_volume
    from versaseg.tasks.completion import CompletionSettings, complete_case
    from versaseg.training.distributed import resolve_device

    if axis not in ("auto", "0", "1", "2"):
        raise InputError(f"--axis must be auto, 0, 1 or 2, got '{axis}'")
    check_writable(out, overwrite)
    if report is not None:
        check_writable(report, overwrite)
    case = load_case(CaseFiles("case", list(images), labels))
    settings = CompletionSettings(network=network, iterations=iterations, cleanse=cleanse, confidence=confidence,
                                  seed=seed,
                                  device=str(resolve_device(device)))
    result = complete_case(case, ignore_label, "auto" if axis == "auto" else int(axis), settings,
                           progress=lambda msg: typer.echo(msg, err=True))
    write_volume(out, result.labels, case.reference, overwrite=overwrite)
    if report is not None:
        write_text_atomic(report, json.dumps(result.report, indent=2) + "\n")
    wrong = [s["slice"] for s in result.report["slices_judged_wrong"]]
    typer.echo(f"completed label written to {out} ({result.report['seconds']} s); slices judged wrong: {wrong}")
