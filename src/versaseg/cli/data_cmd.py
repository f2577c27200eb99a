"""``versaseg data ...``: synthetic data and label degradation."""

from __future__ import annotations

import typer

data_app = typer.Typer(
    help="Synthetic multi-modal brain data from real atlases, incomplete-label simulation, previews.",
    no_args_is_help=True,
)


def _register() -> None:
    from versaseg.cli import data_degrade_cmd, data_preview_cmd, data_synth_cmd

    data_app.command("synth-brain")(data_synth_cmd.synth_brain)
    data_app.command("degrade")(data_degrade_cmd.degrade)
    data_app.command("preview")(data_preview_cmd.preview)


_register()
