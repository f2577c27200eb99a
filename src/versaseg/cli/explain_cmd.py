"""``versaseg explain``: feature maps, activation statistics and Grad-CAM of a trained network on one slice."""

from __future__ import annotations

from pathlib import Path

import typer

from versaseg.cli.common import user_errors

HELP = (
    "Show what a trained network computes on one slice of a case: the feature maps of every stage (encoder levels "
    "= skips, bottleneck, decoder levels, FRRN residual stream, output logits) as PNG grids, per-layer activation "
    "statistics (stats.csv/json), a Grad-CAM map per class (MONAI), and, for runs trained with --save-every N, how "
    "one layer's maps, the prediction and the per-class Dice evolved across training. OUT/index.html links it all "
    "with a line of explanation each (docs/explain.md).\n\n"
    "Examples:\n\n"
    "  versaseg explain runs/bg IMG_0000.nii.gz IMG_0001.nii.gz IMG_0002.nii.gz --out explain_bg\n\n"
    "  versaseg explain runs/bg IMG_000*.nii.gz --label IMG.nii.gz --class putamen --layers 'decoder.*' --out x\n\n"
    "  versaseg explain runs/bg --list-layers"
)


@user_errors
def explain(
    run: Path = typer.Argument(..., help="Run directory written by `versaseg train` (config.json + model.pt)."),
    images: list[Path] = typer.Argument(None, help="The case's channel files, in the run's channel order."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (index.html, layers/, stats.csv, cam_*.png, "
                             "timeline); written atomically."),
    label: Path = typer.Option(None, "--label", "-l", help="Ground truth of the case: shown next to the prediction "
                               "and used for the per-class Dice across saved epochs."),
    layers: str = typer.Option("", "--layers", help="Comma-separated layer names or globs (e.g. 'encoder.*,output'); "
                               "default: every stage. See --list-layers."),
    slice_index: int = typer.Option(None, "--slice", help="Slice index along the run's axis (canonical RAS order); "
                                    "default: the slice with the most predicted foreground of the chosen classes, "
                                    "else the middle one."),
    classes: list[str] = typer.Option(None, "--class", help="Class name for Grad-CAM and the automatic slice "
                                      "(repeatable); default: every foreground class."),
    cam_layer: str = typer.Option("", "--cam-layer", help="Layer Grad-CAM reads; default: the first decoder stage."),
    timeline_layer: str = typer.Option("", "--timeline-layer", help="Layer shown across saved epochs; default: the "
                                       "Grad-CAM layer."),
    max_channels: int = typer.Option(16, "--max-channels", help="Channels per layer grid (largest variance first)."),
    list_layers: bool = typer.Option(False, "--list-layers", help="List the run's layers (stages first, then every "
                                     "module name --layers accepts) and exit."),
    device: str = typer.Option("auto", help="auto (CUDA when available) | cpu | cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing explain output folder."),
) -> None:
    """Explain a run's network on one slice (the command help is HELP)."""
    from versaseg.errors import InputError
    from versaseg.io.run_dir import resolve_device
    from versaseg.tasks.explain import ExplainSettings
    from versaseg.tasks.explain import explain as run_explain
    from versaseg.tasks.explain import list_layers as layer_list

    if list_layers:
        entries = layer_list(run)
        typer.echo("stages (default --layers):")
        for layer, channels, default in entries:
            if default:
                typer.echo(f"  {layer.name:<28} {'' if channels is None else channels:>5} ch  {layer.role}")
        typer.echo("other modules (accepted by --layers):")
        for layer, channels, default in entries:
            if not default:
                typer.echo(f"  {layer.name:<28} {'' if channels is None else channels:>5} ch  {layer.role}")
        return
    if out is None:
        raise InputError("--out is required (unless --list-layers)")
    patterns = [p.strip() for p in layers.split(",") if p.strip()]
    settings = ExplainSettings(layers=patterns, slice_index=slice_index, classes=list(classes or []),
                               cam_layer=cam_layer, timeline_layer=timeline_layer, max_channels=max_channels)
    index = run_explain(run, list(images or []), out, label=label, settings=settings, device=resolve_device(device),
                        overwrite=overwrite)
    typer.echo(f"explanation written to {index}")
