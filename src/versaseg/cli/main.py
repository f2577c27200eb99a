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
