"""``versaseg study losses``: which loss for this dataset, with statistics."""

from __future__ import annotations

from pathlib import Path

import typer

from versaseg.cli.common import AXIS_HELP, json_object_option, parse_axis, user_errors

study_app = typer.Typer(help="Controlled comparisons with statistics (losses).", no_args_is_help=True)

LOSSES_HELP = (
    "Train every listed loss with identical settings and seed, evaluate every held-out case (Dice, HD95, ASSD, "
    "sensitivity per class), and compare: pairwise Wilcoxon signed-rank tests per class and metric; significance "
    "score = losses beaten with p < 0.05; rank score = mean rank over classes and metrics (1 = best).\n\n"
    "Writes OUT/summary.md, summary.json, results.csv (one row per loss, fold, case, class, metric), plots/"
    "box_<class>_<metric>.png and runs/<loss>/fold<k>/ (each a normal run directory). A killed study continues "
    "where it stopped when run again with the same command (finished runs are reused, a half-trained run resumes "
    "from its checkpoint).\n\n"
    "--quick: 3 epochs x 10 iterations, batch 8, a 2D U-Net of base width 8 (overriding --epochs, --iterations, "
    "--batch-size and --network-kwargs) - a smoke-level comparison that finishes in minutes; use the defaults (or "
    "more) for conclusions.\n\n"
    "Example:\n\n"
    "  versaseg data synth-brain --out data/synth --cases 10 --spacing 2.5\n\n"
    "  versaseg study losses data/synth --out study --losses ce,ce_focal,dice,dice_inverse --folds 5"
)


@user_errors
def losses(
    dataset: Path = typer.Argument(..., help="Dataset folder (nnU-Net v2 layout); its training cases are split."),
    out: Path = typer.Option(..., "--out", "-o", help="Study folder (created; re-run to resume)."),
    loss_names: str = typer.Option(",".join(("ce", "ce_inverse", "ce_median", "ce_focal", "ce_dtm", "ce_dpt",
                                             "dice", "dice_inverse", "dice_median", "dice_focal", "dice_dtm",
                                             "dice_dpt")),
                                   "--losses", help="Comma-separated loss names (see `versaseg train --help`)."),
    classes: str = typer.Option("", help="Comma-separated class names to evaluate (default: every class)."),
    folds: int = typer.Option(None, "--folds", help="K-fold cross-validation over the training cases."),
    test_split: float = typer.Option(None, "--test-split", help="Fraction of cases held out (one split; the default "
                                     "is 0.3 when --folds is not given)."),
    epochs: int = typer.Option(20, help="Epochs per run."),
    iterations: int = typer.Option(25, help="Iterations per epoch."),
    network: str = typer.Option("unet", help="Network (see `versaseg networks`)."),
    network_kwargs: str = typer.Option('{"depth": 4, "base_width": 16}', "--network-kwargs",
                                       help="JSON object of network options (as for `versaseg train`)."),
    batch_size: int = typer.Option(0, "--batch-size", help="Samples per iteration (0 = the trainer's default)."),
    dim: str = typer.Option("2d", help="2d or 3d."),
    axis: str = typer.Option("axial", help="Slicing axis for 2d: " + AXIS_HELP + "."),
    seed: int = typer.Option(0, help="Seed of the split and of every run."),
    quick: bool = typer.Option(False, "--quick", help="3 epochs x 10 iterations, batch 8, base width 8."),
    device: str = typer.Option("auto", help="auto (CUDA when available) | cpu | cuda: training and prediction."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete an existing study in OUT and start again "
                                   "(without it, an existing study resumes)."),
) -> None:
    from versaseg.errors import InputError
    from versaseg.io.run_dir import resolve_device
    from versaseg.tasks.loss_study import StudySettings, run_study

    if folds is not None and test_split is not None:
        raise InputError("give --folds or --test-split, not both")
    settings = StudySettings(losses=[s.strip() for s in loss_names.split(",") if s.strip()],
                             classes=[c.strip() for c in classes.split(",") if c.strip()] or None, folds=folds,
                             test_split=test_split if test_split is not None else (None if folds else 0.3),
                             epochs=epochs, iterations=iterations, batch_size=batch_size, network=network,
                             network_kwargs=json_object_option(network_kwargs, "--network-kwargs"), dim=dim,
                             axis=parse_axis(axis), seed=seed, device=device)
    if quick:
        settings.epochs, settings.iterations, settings.batch_size = 3, 10, 8
        settings.network_kwargs = {"depth": 4, "base_width": 8}
    resolve_device(device)  # an unknown or unavailable device is an error before anything is written
    summary = run_study(dataset, out, settings, progress=lambda message: typer.echo(message, err=True),
                        overwrite=overwrite)
    best = min(summary["losses"], key=lambda loss: summary["losses"][loss]["rank_score"])
    typer.echo(f"wrote {out / 'summary.md'}; best rank score: {best} "
               f"({summary['losses'][best]['rank_score']:.2f})")


def _register() -> None:
    study_app.command("losses", help=LOSSES_HELP)(losses)


_register()
