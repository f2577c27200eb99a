"""``versaseg train``."""

from __future__ import annotations

from pathlib import Path

import typer

from versaseg.cli.common import (
    AXIS_HELP,
    json_object_option,
    number_list_option,
    parse_axis,
    user_errors,
    warn_ignored_on_resume,
)
from versaseg.losses.registry import LOSSES, describe_options

HELP = (
    "Train a network on a dataset; runs as one process or under `torchrun --nproc-per-node N` (DDP).\n\n"
    "Losses (--loss). Every loss leaves ignore-label voxels out, works in 2D and 3D, binary and multi-class; class "
    "frequencies are counted per batch over annotated voxels; d is the distance to the true boundary (mm), from "
    "distance maps computed once per case; Dice-type terms pool the batch and include the background class (option "
    "include_background; dice_ce: foreground only). Options: --loss-kwargs. Formulas: docs/losses.md.\n\n"
    + "\n\n".join(f"  {name}: {info.description}" for name, info in LOSSES.items())
)


@user_errors
def train(
    ctx: typer.Context,
    dataset: Path = typer.Argument(..., help="Dataset folder in the nnU-Net v2 layout (dataset.json, imagesTr/, "
                                   "labelsTr/). Voxels with the 'ignore' label are left out of the loss."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to create (config.json, model.pt, "
                             "checkpoint.pt, metrics.csv, curves.png)."),
    network: str = typer.Option("unet", help="Network name from the registry (see `versaseg networks`)."),
    network_kwargs: str = typer.Option("{}", "--network-kwargs", help="JSON object of network options, e.g. "
                                       "'{\"depth\": 4, \"base_width\": 16, \"norm\": \"instance\", "
                                       "\"residual\": false}'."),
    dim: str = typer.Option("2d", help="2d: slice-wise along --axis; 3d: patch-wise."),
    axis: str = typer.Option("axial", help="Slicing axis for 2d: " + AXIS_HELP + "."),
    epochs: int = typer.Option(50, help="Number of epochs."),
    iterations: int = typer.Option(50, "--iterations", help="Training iterations (batches) per epoch."),
    batch_size: int = typer.Option(0, help="Batch size; 0 = 16 slices (2d) or 2 patches (3d)."),
    patch_size: str = typer.Option("", help="Comma-separated patch size (2 values for 2d, 3 for 3d); empty = "
                                   "median case size rounded up to the network's divisor (capped 256/96)."),
    lr: float = typer.Option(2e-3, "--lr", help="AdamW learning rate (polynomial decay over the epochs)."),
    loss: str = typer.Option("dice_ce", help="Loss name, from the list above."),
    loss_kwargs: str = typer.Option("{}", "--loss-kwargs", help="JSON object of loss options, e.g. '{\"gamma\": 1}'. "
                                    "Each loss takes only its own: " + describe_options() + "."),
    augmentation: str = typer.Option("default", help="none | light (flips, gamma, noise) | default (+ affine, "
                                     "elastic, bias field)."),
    val_fraction: float = typer.Option(0.2, help="Fraction of training cases held out for validation Dice."),
    val_every: int = typer.Option(1, help="Validate every N epochs (and after the last)."),
    seed: int = typer.Option(0, help="Random seed; runs on CPU with the same seed are identical."),
    workers: int = typer.Option(0, help="DataLoader worker processes for sampling + augmentation."),
    device: str = typer.Option("auto", help="auto (CUDA when available) | cpu | cuda."),
    save_every: int = typer.Option(0, "--save-every", help="Also keep the network's weights every N epochs (and "
                                   "after the last) as RUN/checkpoints/epoch_NNN.pt, listed in "
                                   "RUN/checkpoints.json, for `versaseg explain`; 0 = off."),
    tensorboard: bool = typer.Option(False, "--tensorboard", help="Also write TensorBoard events to RUN/tensorboard."),
    resume: bool = typer.Option(False, "--resume", help="Continue RUN from its last completed epoch (after a crash "
                                "or kill); the run's own config is used, --epochs may extend it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory's files."),
) -> None:
    """Train a network on a dataset (the command help is HELP)."""
    from versaseg.tasks.training import train as run_training
    from versaseg.training.config import TrainConfig

    kwargs = json_object_option(network_kwargs, "--network-kwargs")
    loss_options = json_object_option(loss_kwargs, "--loss-kwargs")
    patch = number_list_option(patch_size, "--patch-size")
    config = TrainConfig(network=network, network_kwargs=kwargs, dim=dim, axis=parse_axis(axis), patch_size=patch,
                         batch_size=batch_size, epochs=epochs, iterations_per_epoch=iterations, learning_rate=lr,
                         loss=loss, loss_kwargs=loss_options, augmentation=augmentation, val_fraction=val_fraction,
                         val_every=val_every, seed=seed, num_workers=workers, tensorboard=tensorboard,
                         save_every=save_every)
    if resume:
        warn_ignored_on_resume(ctx, out, config)
    else:
        config.validate()
    trainer = run_training(config, dataset, out, resume=resume, overwrite=overwrite, device=device)
    if trainer.dist.is_main:
        typer.echo(f"run written to {out}")
