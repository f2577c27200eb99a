"""``versaseg predict``."""

from __future__ import annotations

from pathlib import Path

import typer

from versaseg.cli.common import user_errors


@user_errors
def predict(
    run: Path = typer.Argument(..., help="Run directory written by `versaseg train` (config.json + model.pt)."),
    inputs: list[Path] = typer.Argument(..., help="Image files, folders of images, DICOM series folders, or a "
                                        "dataset folder (its imagesTs/ is predicted). Channels of a case are grouped "
                                        "by the CASE_XXXX suffix."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; each case is written as OUT/CASE<ending> "
                             "with exactly the input's geometry (DICOM inputs -> .nii.gz)."),
    tta: bool = typer.Option(False, "--tta", help="Flip test-time augmentation (average over all axis flips)."),
    largest_component: bool = typer.Option(False, "--largest-component", help="Keep only the largest connected "
                                           "component of each class."),
    probabilities: bool = typer.Option(False, "--probabilities", help="Also write per-class probability maps as "
                                       "OUT/CASE_prob_<class><ending>."),
    batch_size: int = typer.Option(0, help="Slices (2d) or windows (3d) per forward pass; 0 = training batch size."),
    device: str = typer.Option("auto", help="auto (CUDA when available) | cpu | cuda."),
    output_format: str = typer.Option("same", "--format", help="Output file type: same (the input's ending; DICOM "
                                      "-> .nii.gz) | nii.gz | nii | nrrd | mha | seg.nrrd (a 3D Slicer "
                                      "segmentation whose segments carry the class names)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Predict label volumes: slice-wise (2d runs) or sliding window with Gaussian blending (3d runs)."""
    from versaseg.errors import InputError
    from versaseg.inference.predictor import Predictor, collect_inputs
    from versaseg.io.run_dir import resolve_device

    formats = ("same", "nii.gz", "nii", "nrrd", "nhdr", "mha", "mhd", "seg.nrrd")
    if output_format not in formats:
        raise InputError(f"--format must be one of {', '.join(formats)}, got '{output_format}'")
    predictor = Predictor(run, device=resolve_device(device), tta=tta, largest_component=largest_component,
                          batch_size=batch_size or None)
    cases = collect_inputs(inputs, len(predictor.config.channel_names))
    written = predictor.predict_to_folder(cases, out, overwrite=overwrite, save_probabilities=probabilities,
                                          ending=None if output_format == "same" else f".{output_format}")
    typer.echo(f"{len(written)} prediction(s) written to {out}")
