"""``versaseg evaluate``: per-case and per-class metrics of predicted label maps against ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from versaseg.cli.common import renamed_option, user_errors
from versaseg.errors import InputError

_HELP = (
    "Evaluate predicted label maps against ground truth: two files or two folders.\n\n"
    "Per case and class: Dice, IoU, sensitivity, precision, signed relative volume difference "
    "rvd = (|P|-|G|)/|G|, and HD95 and ASSD in mm using the voxel spacing (surfaces and distances as MONAI's "
    "HausdorffDistanceMetric with percentile=95 and SurfaceDistanceMetric with symmetric=True). Background is not "
    "reported. Prints a summary table: mean±sample SD over cases per class and for 'mean foreground' (per case, the "
    "mean over classes).\n\n"
    "Empty masks (P = prediction, G = ground truth; nan = undefined, left out of means and counted as n_nan):\n"
    "both empty: Dice=IoU=1, HD95=ASSD=0, rvd=0, sensitivity=precision=nan;\n"
    "only G empty: Dice=IoU=0, HD95=ASSD=nan, rvd=nan, sensitivity=nan, precision=0;\n"
    "only P empty: Dice=IoU=0, HD95=ASSD=nan, rvd=-1, sensitivity=0, precision=nan.\n\n"
    "Ignored voxels (ground truth equal to the 'ignore' label of --dataset-json) are set to background in both maps "
    "before computing, so they count neither as hits nor as errors."
)


@user_errors
def evaluate(
    pred: Annotated[
        Path,
        typer.Argument(
            help="Predicted label map (.nii.gz, .nii, .nrrd, .nhdr, .mha, .mhd; a 3D Slicer .seg.nrrd names its "
            "classes by its segment names), or a folder of them.",
            show_default=False,
        ),
    ],
    gt: Annotated[
        Path,
        typer.Argument(
            help="Ground-truth label map, or a folder of them. Folders are matched by case name (file name without "
            "its image ending); every ground-truth case needs a prediction, extra predictions are ignored with a "
            "warning. Prediction and ground truth must have the same shape and affine (to 1e-3).",
            show_default=False,
        ),
    ],
    dataset_json: Annotated[
        Path | None,
        typer.Option(
            "--dataset-json",
            help="dataset.json (or its folder) naming the classes; voxels whose ground truth is its 'ignore' label "
            "are excluded (set to background in both maps). Without it, every non-zero value found is a class "
            "named label_<value>.",
            show_default=False,
        ),
    ] = None,
    labels: Annotated[Path | None, typer.Option("--labels", hidden=True, help="Old name of --dataset-json.")] = None,
    json_out: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write per-case metrics and per-class aggregates (mean, sample std, median, n, n_nan) as JSON; "
            "undefined values are null.",
            show_default=False,
        ),
    ] = None,
    csv_out: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            help="Write long-format CSV rows case,class,label,metric,value (undefined values are 'nan').",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace existing --json/--csv outputs instead of refusing."),
    ] = False,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, help="Evaluate this many cases in parallel (processes)."),
    ] = 1,
) -> None:
    """Evaluate predicted label maps against ground truth (help text: ``_HELP``)."""
    import warnings

    from versaseg.evaluation.evaluate import evaluate_paths
    from versaseg.io.atomic import check_writable

    dataset_json = renamed_option(dataset_json, labels, "--labels", "--dataset-json")
    for out in (json_out, csv_out):
        if out is not None:
            if out.is_dir():
                raise InputError("is a folder; give an output file name", out)
            check_writable(out, overwrite)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            result = evaluate_paths(pred, gt, dataset_json, workers=workers)
        finally:
            for warning in caught:
                typer.echo(f"warning: {warning.message}", err=True)
    typer.echo(result.summary_table())
    if json_out is not None:
        typer.echo(f"wrote {result.write_json(json_out, overwrite)}")
    if csv_out is not None:
        typer.echo(f"wrote {result.write_csv(csv_out, overwrite)}")


evaluate.__doc__ = _HELP
