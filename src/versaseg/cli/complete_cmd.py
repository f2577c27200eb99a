"""``versaseg complete``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from versaseg.cli.common import user_errors

HELP = (
    "Complete a sparsely and noisily annotated label volume.\n\n"
    "A shape prior is interpolated between the annotated slices (signed distances); a 2D network that reads the "
    "image and the prior learns, on the annotated slices, where the image moves the boundaries; two such models (one "
    "per interleaved fold of the annotated slices) check each other's slices, and annotated slices that disagree "
    "with their held-out prediction far more than the others are judged wrong and corrected. The result covers the "
    "slices between the annotated ones and one annotation gap beyond the first and last; annotated slices keep their "
    "(cleansed) annotation; the output has the input's geometry. About a minute per 1.5 mm brain on 2 CPU cores.\n\n"
    "Label conventions: with --ignore-label N, voxels equal to N are unannotated (nnU-Net); without it, slices "
    "holding any non-zero label are the annotated ones and the others are empty (3D Slicer); --axis auto detects "
    "the annotation axis in both.\n\n"
    "Examples:\n\n"
    "  versaseg complete T1.nii.gz T2.nii.gz --labels sparse.nii.gz --ignore-label 9 --out dense.nii.gz\n\n"
    "  versaseg complete T1.nii.gz --labels slicer_seg.nii.gz --out dense.nii.gz --report report.json"
)


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
    """Complete a sparse, noisy label volume (the command help is HELP)."""
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
                                  seed=seed, device=str(resolve_device(device)))
    result = complete_case(case, ignore_label, "auto" if axis == "auto" else int(axis), settings,
                           progress=lambda msg: typer.echo(msg, err=True))
    write_volume(out, result.labels, case.reference, overwrite=overwrite)
    if report is not None:
        write_text_atomic(report, json.dumps(result.report, indent=2) + "\n")
    wrong = [s["slice"] for s in result.report["slices_judged_wrong"]]
    typer.echo(f"completed label written to {out} ({result.report['seconds']} s); slices judged wrong: {wrong}")
