"""``versaseg synth train | apply | augment``: modality synthesis with pix2pix."""

from __future__ import annotations

from pathlib import Path

import typer

from versaseg.cli.common import (
    AXIS_HELP,
    json_object_option,
    number_list_option,
    parse_axis,
    renamed_option,
    user_errors,
    warn_deprecated,
    warn_ignored_on_resume,
)

synth_app = typer.Typer(
    help="Modality synthesis with pix2pix: learn to turn one MR channel into another (e.g. T2 -> TOF), apply it to "
    "images, and add the synthetic channel to a dataset as an extra input of `versaseg train`.",
    no_args_is_help=True,
)

TRAIN_HELP = (
    "Train a pix2pix synthesiser (Isola et al. 2017) from paired channels of a dataset: a U-Net generator "
    "(the registered 'unet', 1 input and 1 output channel, tanh output; default depth 5, base width 32 in 2d and "
    "depth 4, base width 16 in 3d) and a conditional PatchGAN discriminator (MONAI PatchDiscriminator: 3 stride-2 and "
    "2 stride-1 4x4 convs, so each real/fake logit sees a 70x70 patch in 2d, 70^3 in 3d) that judges (source, target) "
    "pairs. Loss: adversarial (binary cross-entropy on the patch logits, or least squares with --gan-loss lsgan) + "
    "--lambda-l1 x L1; Adam, lr 2e-4, betas (0.5, 0.999), for both networks, constant for the first half of the "
    "epochs and then decaying linearly (--schedule). The loop is the one `versaseg train` uses: torchrun runs it with "
    "DistributedDataParallel, --val-every and --save-every work the same.\n\n"
    "Intensities: each image is clipped to its own --percentiles (whole volume) and mapped to [-1, 1]; the run "
    "stores the target's typical range (median over training cases) so `synth apply` writes target-like units.\n\n"
    "2d trains on slices perpendicular to --axis that contain brain (whole slices, padded, by default); 3d on "
    "random --patch-size patches. A --val-fraction of the cases is held out: after each epoch RUN/metrics.csv gets "
    "a row (epoch, "
    "g_adv, g_l1, d_loss, lr, seconds, samples_per_s and, on validated epochs, val_mae, val_psnr, val_ssim, "
    "val_seconds) with MAE, PSNR (data range 2) and SSIM of the synthetic vs the real target inside the brain mask "
    "(label > 0; Otsu foreground of the source without labels), "
    "in the scaled [-1, 1] units. RUN also holds config.json, model.pt (generator), checkpoint.pt (--resume), "
    "curves.png and samples/epoch_NNN.png (source | synthetic | real) every --sample-every epochs and after the last."
    "\n\nChannels are names from dataset.json channel_names or indices.\n\n"
    "Examples:\n\n"
    "  versaseg data synth-brain --out data/synth --cases 10 --spacing 2.5\n\n"
    "  versaseg synth train data/synth --source T2 --target TOF --out runs/t2_tof --epochs 50\n\n"
    "  versaseg synth train data/synth --source T2 --target TOF --out runs/t2_tof --epochs 80 --resume"
)

APPLY_HELP = (
    "Synthesise the run's target modality from one source image (the run's source modality) and write it with the "
    "input's exact geometry (affine, spacing, direction) as float32 in the target's typical intensity range.\n\n"
    "Example:\n\n"
    "  versaseg synth apply runs/t2_tof patient_T2.nii.gz --out patient_synthTOF.nii.gz"
)

AUGMENT_HELP = (
    "Copy DATASET to --out and add the run's synthetic target as a new last channel CASE_000N of every case "
    "(imagesTr and imagesTs), synthesised from the run's source channel (found by name in dataset.json, else by "
    "index). dataset.json gets the channel (named 'synthetic <target>') and a 'synthesis' entry recording the run and "
    "the source channel; labels are copied unchanged, so `versaseg train OUT` uses the channel like any other. The "
    "new dataset is built in a hidden temporary folder and renamed into place at the end.\n\n"
    "Example:\n\n"
    "  versaseg synth augment runs/t2_tof data/synth --out data/synth_plus_tof\n\n"
    "RUN comes first, as in `predict RUN INPUTS` (what is used, then what is read); the older order DATASET RUN is "
    "still understood for one release, with a warning.\n\n"
    "  versaseg train data/synth_plus_tof --out runs/seg4ch"
)


@user_errors
def train(
    ctx: typer.Context,
    dataset: Path = typer.Argument(..., help="Dataset folder (nnU-Net v2 layout) whose cases hold both channels."),
    source: str = typer.Option(..., "--source", help="Input channel: name (e.g. T2) or index."),
    target: str = typer.Option(..., "--target", help="Channel to synthesise: name (e.g. TOF) or index."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory to create."),
    dim: str = typer.Option("2d", help="2d: slice-wise along --axis; 3d: patch-wise."),
    axis: str = typer.Option("axial", help="Slicing axis for 2d: " + AXIS_HELP + "."),
    epochs: int = typer.Option(50, help="Number of epochs."),
    iterations: int = typer.Option(50, "--iterations", help="Training iterations (batches) per epoch."),
    batch_size: int = typer.Option(0, "--batch-size", help="Batch size; 0 = 4 slices (2d) or 2 patches (3d)."),
    patch_size: str = typer.Option(None, "--patch-size", help="Comma-separated patch size (2 values for 2d, 3 for "
                                   "3d); empty = whole slices padded to the generator's divisor (2d) or 64,64,64 "
                                   "(3d)."),
    patch: str = typer.Option(None, "--patch", hidden=True, help="Old name of --patch-size."),
    network: str = typer.Option("unet", help="Generator network from the registry (see `versaseg networks`)."),
    network_kwargs: str = typer.Option("{}", "--network-kwargs", help="JSON object of generator options; {} = "
                                       "depth 5, base width 32 (2d) or depth 4, base width 16 (3d)."),
    lambda_l1: float = typer.Option(100.0, "--lambda-l1", help="Weight of the L1 term."),
    gan_loss: str = typer.Option("bce", "--gan-loss", help="bce (pix2pix) | lsgan (least squares)."),
    lr: float = typer.Option(2e-4, "--lr", help="Adam learning rate of both networks (betas 0.5, 0.999)."),
    percentiles: str = typer.Option("0.5,99.9", "--percentiles", help="LOW,HIGH intensity percentiles mapped to "
                                    "-1 and 1 (values outside are clipped)."),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Fraction of cases held out for validation."),
    sample_every: int = typer.Option(5, "--sample-every", help="Write samples/epoch_NNN.png every N epochs and "
                                     "after the last (0 = never)."),
    val_every: int = typer.Option(1, "--val-every", help="Validate every N epochs (and after the last)."),
    save_every: int = typer.Option(0, "--save-every", help="Also keep the generator's weights every N epochs (and "
                                   "the last) in RUN/checkpoints/epoch_NNN.pt, listed in RUN/checkpoints.json; "
                                   "0 = off."),
    schedule: str = typer.Option("linear", "--schedule", help="Learning-rate schedule of both networks: linear "
                                 "(pix2pix: constant for the first half of the epochs, then linearly to 0) | poly "
                                 "(nnU-Net's (1 - epoch/epochs)^0.9) | constant."),
    grad_clip: float = typer.Option(0.0, "--grad-clip", help="Clip each network's gradient norm to this per step "
                                    "(0 = off, as in pix2pix)."),
    workers: int = typer.Option(0, "--workers", help="Data-loader worker processes for batch sampling."),
    seed: int = typer.Option(0, help="Random seed (split, initialisation, sampling)."),
    device: str = typer.Option("auto", help="auto (CUDA when available) | cpu | cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue RUN from its last completed epoch; the run's own "
                                "config is used, --epochs may extend it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing run directory's files."),
) -> None:
    from versaseg.tasks.synthesis import train_synthesis
    from versaseg.training.config import SynthConfig

    kwargs = json_object_option(network_kwargs, "--network-kwargs")
    patch_size = number_list_option(renamed_option(patch_size, patch, "--patch", "--patch-size") or "",
                                    "--patch-size")
    config = SynthConfig(source=source, target=target, dim=dim, axis=parse_axis(axis), patch_size=patch_size,
                         batch_size=batch_size, epochs=epochs, iterations_per_epoch=iterations, network=network,
                         network_kwargs=kwargs, gan_loss=gan_loss, lambda_l1=lambda_l1, learning_rate=lr,
                         percentiles=number_list_option(percentiles, "--percentiles", float), val_fraction=val_fraction,
                         sample_every=sample_every, val_every=val_every, save_every=save_every, schedule=schedule,
                         grad_clip=grad_clip, num_workers=workers, seed=seed)
    if resume:
        warn_ignored_on_resume(ctx, out, config)
    train_synthesis(config, dataset, out, resume=resume, overwrite=overwrite, device=device)
    typer.echo(f"run written to {out}")


@user_errors
def apply(
    run: Path = typer.Argument(..., help="Run directory of `versaseg synth train` (config.json, model.pt)."),
    image: Path = typer.Argument(..., help="Source-modality image (NIfTI, NRRD, MHA or a DICOM series folder)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output image, e.g. SYNTH.nii.gz."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
) -> None:
    from versaseg.tasks.synthesis import apply_to_file

    written = apply_to_file(run, image, out, overwrite=overwrite, device=device)
    typer.echo(f"wrote {written}")


@user_errors
def augment(
    run: Path = typer.Argument(..., help="Run directory of `versaseg synth train`."),
    dataset: Path = typer.Argument(..., help="Dataset folder (nnU-Net v2 layout) holding the run's source channel."),
    out: Path = typer.Option(..., "--out", "-o", help="New dataset folder (DATASET2)."),
    name: str = typer.Option("", "--name", help="Name of the new channel in dataset.json (default 'synthetic "
                             "<target>')."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing --out folder."),
) -> None:
    from versaseg.tasks.synthesis import augment_dataset

    if (run / "dataset.json").is_file() and (dataset / "config.json").is_file():
        warn_deprecated("synth augment DATASET RUN", "synth augment RUN DATASET")
        run, dataset = dataset, run
    written = augment_dataset(dataset, run, out, overwrite=overwrite, device=device, channel_name=name or None)
    typer.echo(f"wrote {written}")


def _register() -> None:
    synth_app.command("train", help=TRAIN_HELP)(train)
    synth_app.command("apply", help=APPLY_HELP)(apply)
    synth_app.command("augment", help=AUGMENT_HELP)(augment)


_register()
