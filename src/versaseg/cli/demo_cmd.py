"""``versaseg demo``."""

from __future__ import annotations

from pathlib import Path

import typer

from versaseg.cli.common import user_errors


@user_errors
def demo(
    out: Path = typer.Option(Path("demo_output"), "--out", "-o", help="Folder for the data, run, predictions, "
                             "evaluation and report.html."),
    epochs: int = typer.Option(30, help="Training epochs."),
    iterations: int = typer.Option(25, help="Iterations per epoch."),
    cases: int = typer.Option(8, help="Training cases to generate."),
    test_cases: int = typer.Option(3, help="Test cases to generate."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    seed: int = typer.Option(0, help="Random seed for data and training."),
    spacing: float = typer.Option(2.5, help="Voxel size in mm of the generated brains (1.5 is research-like, "
                                  "slower)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a previous demo in --out."),
) -> None:
    """Run the main job end to end on built-in synthetic brains (atlas-based T1/T2/TOF) and write OUT/report.html."""
    from versaseg.tasks.demo import run_demo

    report = run_demo(out, epochs=epochs, iterations=iterations, cases=cases, test_cases=test_cases, device=device,
                      overwrite=overwrite, seed=seed, spacing=spacing)
    typer.echo(f"report written to {report}")
