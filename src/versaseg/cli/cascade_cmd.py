"""``versaseg cascade train`` / ``versaseg cascade predict``: two-stage coarse-to-fine segmentation."""

from __future__ import annotations

from pathlib import Path

import typer

from versaseg.cli.common import AXIS_HELP, json_object_option, parse_axis, user_errors

cascade_app = typer.Typer(
    help="Two-stage coarse-to-fine segmentation of small structures: stage 1 finds the region of interest at low "
    "resolution over the whole volume, stage 2 segments the structures at full resolution inside it (docs/cascade.md).",
    no_args_is_help=True,
)

TRAIN_HELP = (
    "Train a two-stage cascade on a dataset (nnU-Net layout).\n\n"
    "Stage 1 is trained on a copy of the dataset resampled to --coarse-spacing mm (SimpleITK: linear for images, "
    "one-hot linear for labels), with the target classes merged into one region (--stage1-classes merged) or kept "
    "apart (all). Stage 2 is trained at the dataset's resolution on crops around each case's ground-truth structures "
    "plus --margin-mm, each face moved at random by up to --jitter-mm so the boxes look like stage 1's. Both are "
    "normal runs (RUN/stage1, RUN/stage2) trained with the same trainer as `versaseg train`; RUN/cascade.json holds "
    "the settings, RUN/work the derived datasets. Both stages hold out the same original cases for validation.\n\n"
    "Example:\n\n"
    "  versaseg cascade train data/SynthBG --out runs/bg_cascade --epochs 30 --margin-mm 12"
)


@cascade_app.command("train", help=TRAIN_HELP)
@user_errors
def train(
    dataset: Path = typer.Argument(..., help="Dataset folder in the nnU-Net v2 layout."),
    out: Path = typer.Option(..., "--out", "-o", help="Cascade run directory to create."),
    network: str = typer.Option("unet", help="Network of both stages (see `versaseg networks`)."),
    network_kwargs: str = typer.Option("{}", "--network-kwargs", help="JSON object of network options for both "
                                       "stages."),
    stage1_network: str = typer.Option("", "--stage1-network", help="Stage-1 network; empty = --network."),
    stage2_network: str = typer.Option("", "--stage2-network", help="Stage-2 network; empty = --network."),
    stage1_network_kwargs: str = typer.Option("", "--stage1-network-kwargs", help="Stage-1 network options (JSON); "
                                              "empty = --network-kwargs."),
    stage2_network_kwargs: str = typer.Option("", "--stage2-network-kwargs", help="Stage-2 network options (JSON); "
                                              "empty = --network-kwargs."),
    loss: str = typer.Option("dice_ce", help="Loss of both stages (see `versaseg train --help`)."),
    loss_kwargs: str = typer.Option("{}", "--loss-kwargs", help="JSON object of loss options for both stages."),
    stage1_loss: str = typer.Option("", "--stage1-loss", help="Stage-1 loss; empty = --loss (with --loss-kwargs)."),
    stage2_loss: str = typer.Option("", "--stage2-loss", help="Stage-2 loss; empty = --loss (with --loss-kwargs)."),
    dim: str = typer.Option("2d", help="2d: slice-wise along --axis; 3d: patch-wise (both stages)."),
    axis: str = typer.Option("axial", help="Slicing axis for 2d: " + AXIS_HELP + "."),
    epochs: int = typer.Option(50, help="Epochs of each stage."),
    stage1_epochs: int = typer.Option(0, "--stage1-epochs", help="Stage-1 epochs; 0 = --epochs."),
    stage2_epochs: int = typer.Option(0, "--stage2-epochs", help="Stage-2 epochs; 0 = --epochs."),
    iterations: int = typer.Option(50, "--iterations", help="Training iterations (batches) per epoch."),
    batch_size: int = typer.Option(0, help="Batch size; 0 = 16 slices (2d) or 2 patches (3d)."),
    lr: float = typer.Option(2e-3, "--lr", help="AdamW learning rate."),
    augmentation: str = typer.Option("default", help="none | light | default (see `versaseg train --help`)."),
    val_fraction: float = typer.Option(0.2, help="Fraction of the original cases held out for validation Dice."),
    coarse_spacing: float = typer.Option(4.0, "--coarse-spacing", help="Stage-1 voxel size in mm (isotropic; axes "
                                         "that are already coarser keep their voxel size)."),
    stage1_classes: str = typer.Option("merged", "--stage1-classes", help="merged: stage 1 segments all target "
                                       "classes as one region; all: stage 1 segments every class."),
    margin_mm: float = typer.Option(12.0, "--margin-mm", help="Margin (mm) added on every side of the region of "
                                    "interest, in training crops and at prediction."),
    jitter_mm: float = typer.Option(-1.0, "--jitter-mm", help="Each face of a training crop moves by a random "
                                    "amount up to this (mm); negative = the stage-1 voxel size."),
    crops_per_case: int = typer.Option(2, "--crops-per-case", help="Jittered stage-2 training crops per case."),
    roi: str = typer.Option("major", "--roi", help="Default prediction ROI rule for stage-1 components: major "
                            "(>= 10 % of the largest component; keeps both sides of bilateral structures), all, "
                            "largest."),
    seed: int = typer.Option(0, help="Random seed (crops and both trainings)."),
    save_every: int = typer.Option(0, "--save-every", help="Keep intermediate weights every N epochs in each "
                                   "stage's checkpoints/ (see `versaseg explain`); 0 = off."),
    val_every: int = typer.Option(1, "--val-every", help="Validate each stage every N epochs (and after its last)."),
    workers: int = typer.Option(0, "--workers", help="Data-loader worker processes for batch sampling."),
    device: str = typer.Option("auto", help="auto (CUDA when available) | cpu | cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing cascade run."),
) -> None:
    from versaseg.tasks.cascade import CascadeSettings, train_cascade
    from versaseg.training.config import TrainConfig

    kwargs = json_object_option(network_kwargs, "--network-kwargs")
    kwargs1 = json_object_option(stage1_network_kwargs, "--stage1-network-kwargs") if stage1_network_kwargs else kwargs
    kwargs2 = json_object_option(stage2_network_kwargs, "--stage2-network-kwargs") if stage2_network_kwargs else kwargs
    loss_options = json_object_option(loss_kwargs, "--loss-kwargs")

    def config(net: str, net_kwargs: dict, stage_loss: str, stage_epochs: int) -> TrainConfig:
        return TrainConfig(network=net or network, network_kwargs=dict(net_kwargs), dim=dim, axis=parse_axis(axis),
                           batch_size=batch_size, epochs=stage_epochs or epochs, iterations_per_epoch=iterations,
                           learning_rate=lr, loss=stage_loss or loss,
                           loss_kwargs=dict(loss_options) if not stage_loss else {}, augmentation=augmentation,
                           val_fraction=val_fraction, seed=seed, save_every=save_every, val_every=val_every,
                           num_workers=workers)

    settings = CascadeSettings(coarse_spacing=coarse_spacing, stage1_classes=stage1_classes, margin_mm=margin_mm,
                               jitter_mm=None if jitter_mm < 0 else jitter_mm, crops_per_case=crops_per_case, roi=roi)
    run = train_cascade(dataset, out, config(stage1_network, kwargs1, stage1_loss, stage1_epochs),
                        config(stage2_network, kwargs2, stage2_loss, stage2_epochs), settings, device=device,
                        overwrite=overwrite, log=lambda msg: typer.echo(msg, err=True))
    typer.echo(f"cascade run written to {run}")


@cascade_app.command("predict")
@user_errors
def predict(
    run: Path = typer.Argument(..., help="Cascade run directory written by `versaseg cascade train`."),
    inputs: list[Path] = typer.Argument(..., help="Image files, folders of images, DICOM series folders, or a "
                                        "dataset folder (its imagesTs/); channels grouped by the CASE_XXXX suffix."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: OUT/CASE<ending> with the input's geometry, "
                             "OUT/cascade_rois.json (stage-2 box per case in the input's voxel indices)."),
    roi: str = typer.Option("", "--roi", help="Stage-1 components that make the region of interest: major | all | "
                            "largest; empty = the run's setting."),
    margin_mm: float = typer.Option(-1.0, "--margin-mm", help="Margin (mm) around stage 1's region; negative = the "
                                    "run's setting."),
    save_stage1: bool = typer.Option(False, "--save-stage1", help="Also write stage 1's foreground on the input "
                                     "grid as OUT/CASE_stage1<ending>."),
    figures: bool = typer.Option(False, "--figures", help="Also draw OUT/figures/CASE.png per case: stage 1's "
                                 "region and the ROI over the whole slice, the labels inside the ROI (axial, coronal, "
                                 "sagittal)."),
    tta: bool = typer.Option(False, "--tta", help="Flip test-time augmentation in both stages."),
    batch_size: int = typer.Option(0, help="Slices (2d) or windows (3d) per forward pass; 0 = training batch size."),
    device: str = typer.Option("auto", help="auto (CUDA when available) | cpu | cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Predict with a cascade: stage 1 on a coarse copy, stage 2 inside its region of interest; if stage 1 finds
    nothing, a warning is printed and stage 2 runs on the whole volume."""
    import warnings

    from versaseg.tasks.cascade import predict_cascade

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        written = predict_cascade(run, inputs, out, device=device, roi=roi or None,
                                  margin_mm=None if margin_mm < 0 else margin_mm, save_stage1=save_stage1,
                                  figures=figures, overwrite=overwrite, batch_size=batch_size or None, tta=tta)
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            typer.echo(f"warning: {warning.message}", err=True)
    typer.echo(f"{len(written)} prediction(s) written to {out}")
