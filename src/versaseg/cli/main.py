"""The ``versaseg`` command. Each command lives in its own module and imports heavy libraries lazily."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="versaseg",
    help="Trustworthy segmentations from imperfect medical image data: train, predict and evaluate FCNs on "
    "nnU-Net-layout datasets with incomplete/noisy labels, missing modalities and imbalanced classes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _max_voxels_option(value: str | None) -> int | None:
    """Parse ``--max-voxels`` ('2e9', '5000000000') into a voxel count; a bad value is a usage error (exit 2)."""
    if value is None:
        return None
    from versaseg.io.header import parse_voxel_count

    try:
        return parse_voxel_count(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.callback()
def main(
    ctx: typer.Context,
    max_voxels: str = typer.Option(  # read as text ('2e9'); the callback hands on the voxel count
        None, "--max-voxels", metavar="N", callback=_max_voxels_option,
        help="Largest number of voxels an image header may declare (default 1.2e9, or the environment variable "
        "VERSASEG_MAX_VOXELS); a header declaring more is refused before anything is allocated.",
    ),
) -> None:
    """Trustworthy segmentations from imperfect medical image data."""
    if max_voxels is None:
        return
    import os

    from versaseg.io.header import ENV_MAX_VOXELS, set_max_voxels

    limit, before = max_voxels, os.environ.get(ENV_MAX_VOXELS)  # already a voxel count (the callback parsed it)
    set_max_voxels(limit)
    os.environ[ENV_MAX_VOXELS] = str(limit)  # worker processes (torchrun, data loaders) inherit the limit

    def restore() -> None:  # the command has finished (matters when the app runs inside another process: tests)
        set_max_voxels(None)
        if before is None:
            os.environ.pop(ENV_MAX_VOXELS, None)
        else:
            os.environ[ENV_MAX_VOXELS] = before

    ctx.call_on_close(restore)


def _register() -> None:
    from versaseg.cli import (
        cascade_cmd,
        complete_cmd,
        data_cmd,
        demo_cmd,
        evaluate_cmd,
        explain_cmd,
        networks_cmd,
        predict_cmd,
        study_cmd,
        synth_cmd,
        train_cmd,
        view_cmd,
    )

    app.command("train", help=train_cmd.HELP)(train_cmd.train)
    app.command("predict")(predict_cmd.predict)
    app.command("evaluate")(evaluate_cmd.evaluate)
    app.command("complete", help=complete_cmd.HELP)(complete_cmd.complete)
    app.command("demo")(demo_cmd.demo)
    app.command("networks")(networks_cmd.networks)
    app.command("explain", help=explain_cmd.HELP)(explain_cmd.explain)
    app.command("view", help=view_cmd.HELP)(view_cmd.view)
    app.add_typer(data_cmd.data_app, name="data")
    app.add_typer(study_cmd.study_app, name="study")
    app.add_typer(synth_cmd.synth_app, name="synth")
    app.add_typer(cascade_cmd.cascade_app, name="cascade")


_register()

if __name__ == "__main__":
    app()
