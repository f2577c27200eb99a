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
        complete_cmd,
        data_cmd,
        demo_cmd,
        evaluate_cmd,
        networks_cmd,
        predict_cmd,
        study_cmd,
        train_cmd,
    )

    app.command("train", help=train_cmd.HELP)(train_cmd.train)
    app.command("predict")(predict_cmd.predict)
    app.command("evaluate")(evaluate_cmd.evaluate)
    app.command("complete", help=complete_cmd.HELP)(complete_cmd.complete)
    app.command("demo")(demo_cmd.demo)
    app.command("networks")(networks_cmd.networks)
    app.add_typer(data_cmd.data_app, name="data")
    app.add_typer(study_cmd.study_app, name="study")


_register()

if __name__ == "__main__":
    app()
