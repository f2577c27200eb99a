"""``versaseg view``."""

from __future__ import annotations

from pathlib import Path

import typer

from versaseg.cli.common import user_errors

HELP = (
    "Write a review page: one self-contained HTML file showing the image with label overlays in three linked planes "
    "(NiiVue, bundled: it opens offline from disk in any WebGL2 browser, no server).\n\n"
    "Controls: plane and slice slider (moves the crosshair), overlay opacity, a checkbox per label layer and per "
    "segment. With --report (of `versaseg complete`), buttons jump to the annotated slices, the slices judged wrong "
    "and the suggested ones; pass the sparse input first and the completion second to compare before and after.\n\n"
    "Examples:\n\n"
    "  versaseg view T1.nii.gz dense.seg.nrrd --out review.html\n\n"
    "  versaseg view T1.nii.gz sparse.nii.gz dense.nii.gz --names input,completion --ignore-label 9 "
    "--report report.json --out review.html"
)


@user_errors
def view(
    image: Path = typer.Argument(..., help="The image (NIfTI, NRRD, MHA, DICOM folder)."),
    labels: list[Path] = typer.Argument(None, help="Label maps to overlay (the image's geometry; .seg.nrrd keeps "
                                        "its segment names and colours)."),
    out: Path = typer.Option(..., "--out", "-o", help="HTML page to write."),
    names: str = typer.Option("", help="Comma list of layer names (default: the file names)."),
    ignore_label: int = typer.Option(None, "--ignore-label", help="Label value not drawn (unannotated voxels)."),
    report: Path = typer.Option(None, "--report", help="Report of `versaseg complete`: marks the annotated, judged "
                                "wrong and suggested slices."),
    title: str = typer.Option("", help="Page title (default: the image file name)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing page."),
) -> None:
    """Write a self-contained HTML review page (the command help is HELP)."""
    from versaseg.data.case import embed_in_reference
    from versaseg.errors import InputError
    from versaseg.io.atomic import check_writable
    from versaseg.io.checks import check_same_geometry, image_values, label_values
    from versaseg.io.dataset import read_json_object
    from versaseg.io.image import case_name, read_volume
    from versaseg.viz.review_page import LabelLayer, completion_marks, write_review_page

    check_writable(out, overwrite)
    labels = labels or []
    layer_names = [n for n in names.split(",") if n] or [case_name(p) for p in labels]
    if len(layer_names) != len(labels):
        raise InputError(f"--names gives {len(layer_names)} names for {len(labels)} label maps")
    volume = read_volume(image)
    image_values(volume)
    layers = []
    for path, name in zip(labels, layer_names, strict=True):
        label = embed_in_reference(read_volume(path), volume)
        check_same_geometry(label, volume, "label")
        label_values(label)
        layers.append(LabelLayer(name, label, label.segments, ignore_label))
    marks = None
    if report is not None:
        if not report.is_file():
            raise InputError("file not found", report)
        try:
            marks = completion_marks(read_json_object(report), volume)
        except (KeyError, TypeError, ValueError) as error:
            raise InputError(f"not a `versaseg complete` report ({type(error).__name__}: {error})", report) from None
    write_review_page(out, volume, layers, title or case_name(image), marks, overwrite=overwrite)
    typer.echo(f"review page written to {out} ({out.stat().st_size / 1e6:.1f} MB); open it in a browser")
