"""``versaseg complete``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from versaseg.cli.common import AXIS_HELP, axis_name, parse_axis, renamed_option, user_errors

HELP = (
    "Complete a sparsely and noisily annotated label volume.\n\n"
    "A shape prior is interpolated between the annotated slices (signed distances); a per-voxel classifier reads "
    "multi-scale 3D features of the image and the prior and learns, on the annotated slices, where the image moves "
    "the boundaries; two such models (one per interleaved fold of the annotated slices) check each other's slices, "
    "and annotated slices that disagree with their held-out prediction far more than the others are judged wrong "
    "(reported; --cleanse also corrects them). The result covers the slices between the annotated ones and one "
    "annotation gap beyond the first and last; annotated slices keep their annotation; the output has the input's "
    "geometry. About 13-25 s per 1.5 mm brain on 2 CPU cores (--model cnn, the 2D network of versaseg 0.1: about "
    "a minute or two).\n\n"
    "Label conventions: with --ignore-label N, voxels equal to N are unannotated (nnU-Net); without it, slices "
    "holding any non-zero label are the annotated ones and the others are empty (3D Slicer); --axis auto detects "
    "the annotation axis in both (--axis axial, coronal or sagittal, or 2, 1, 0 in canonical RAS, names it "
    "whatever the files' stored orientation). Slices on several planes (a few axial and a few sagittal, say) "
    "complete in one call in the ignore-label convention (where the unannotated voxels are marked, the planes can "
    "be told apart).\n\n"
    "The annotator's loop: --suggest N lists the N slices to annotate next; --view page.html writes a review page "
    "(the image, the input and the completion in three linked planes, buttons for the annotated, judged-wrong and "
    "suggested slices) that opens offline in a browser.\n\n"
    "Examples:\n\n"
    "  versaseg complete T1.nii.gz T2.nii.gz --label sparse.nii.gz --ignore-label 9 --out dense.nii.gz\n\n"
    "  versaseg complete T1.nii.gz --label slicer_seg.nii.gz --out dense.nii.gz --report report.json\n\n"
    "  versaseg complete T1.nrrd --label Segmentation.seg.nrrd --out completed.seg.nrrd\n\n"
    "3D Slicer segmentations (.seg.nrrd, one layer) are read and written: the output keeps the input's segment "
    "names, colours and terminology; a segment named 'ignore' is taken as the ignore label. A segmentation Slicer "
    "cropped to its segments is placed back on the image grid."
)


@user_errors
def complete(
    images: list[Path] = typer.Argument(..., help="One or more image files (channels) of the same case."),
    label: Path = typer.Option(None, "--label", "-l", help="Sparse label volume with the images' geometry: a few "
                               "annotated slices, possibly with mistakes.", show_default=False),
    labels: Path = typer.Option(None, "--labels", hidden=True, help="Old name of --label."),
    out: Path = typer.Option(..., "--out", "-o", help="Dense label volume to write (input geometry)."),
    ignore_label: int = typer.Option(None, "--ignore-label", help="Voxels with this value are unannotated (nnU-Net "
                                     "convention). Without it, slices holding any non-zero label are the annotated "
                                     "ones (3D Slicer convention)."),
    axis: str = typer.Option("auto", help="Annotation axis: auto (detected) | " + AXIS_HELP + "."),
    model: str = typer.Option("voxel", help="voxel: an MLP on multi-scale 3D image features and the prior "
                              "(seconds); cnn: a 2D network on image slices and the prior (minutes)."),
    network: str = typer.Option("unet", help="--model cnn: network from the registry (see `versaseg networks`); "
                                "unet-frrn is the most accurate at every 16th slice (docs/completion.md)."),
    model_iterations: int = typer.Option(None, "--model-iterations", help="--model cnn: training iterations "
                                         "(batches of 16 slices) of each of the two check models and of the "
                                         "completion models. Default 120.", show_default=False),
    iterations: int = typer.Option(None, "--iterations", hidden=True, help="Old name of --model-iterations."),
    check: bool = typer.Option(True, "--check/--no-check", help="Judge every annotated slice with two models that "
                               "did not train on it and report the outliers (--report, command line)."),
    cleanse: bool = typer.Option(False, "--cleanse/--no-cleanse", help="Also correct the slices judged wrong "
                                 "(voxels the held-out model contradicts with --confidence). Off by default: on the "
                                 "benchmark the check misses most corrupted slices and a false alarm on a small "
                                 "structure costs more than the corrections gain (docs/completion.md)."),
    confidence: float = typer.Option(0.9, help="On a slice judged wrong, held-out probability above which a "
                                     "voxel that disagrees with the annotation is corrected."),
    seed: int = typer.Option(0, help="Random seed."),
    device: str = typer.Option("auto", help="auto | cpu | cuda."),
    suggest: int = typer.Option(0, "--suggest", min=0, help="Also list the N slices whose annotation would help "
                                "most (the models' doubt: entropy plus disagreement), on the command line and in "
                                "the report ('suggested': stored axis and slice)."),
    suggest_axes: str = typer.Option("annotated", "--suggest-axes", help="Where suggestions may lie: annotated "
                                     "(the annotated planes), all, or a comma-separated list of axes as for --axis "
                                     "(axial,sagittal or 2,0)."),
    report: Path = typer.Option(None, "--report", help="JSON report: slices judged wrong, voxels corrected, time."),
    view: Path = typer.Option(None, "--view", help="Also write a review page (HTML, opens offline): the image with "
                              "the input and the completion in three linked planes, buttons for the annotated and "
                              "judged-wrong slices (see `versaseg view`)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
) -> None:
    """Complete a sparse, noisy label volume (the command help is HELP)."""
    from versaseg.data.case import load_case
    from versaseg.errors import InputError
    from versaseg.io.atomic import check_writable, write_text_atomic
    from versaseg.io.dataset import CaseFiles
    from versaseg.io.image import stored_axis, write_volume
    from versaseg.io.run_dir import resolve_device
    from versaseg.io.segmentation import segments_for_output
    from versaseg.tasks.completion import MODELS, CompletionSettings, complete_case

    label = renamed_option(label, labels, "--labels", "--label")
    if label is None:
        raise InputError("missing --label: the sparse label volume to complete")
    iterations = renamed_option(model_iterations, iterations, "--iterations", "--model-iterations") or 120
    axis = parse_axis(axis, allow_auto=True)
    if suggest_axes not in ("annotated", "all"):
        suggest_axes = [parse_axis(a, "--suggest-axes") for a in suggest_axes.split(",")]
    check_writable(out, overwrite)
    for extra in (report, view):
        if extra is not None:
            check_writable(extra, overwrite)
    if model not in MODELS:
        raise InputError(f"--model must be one of {', '.join(MODELS)}, got '{model}'")
    started = time.perf_counter()
    case = load_case(CaseFiles("case", list(images), label))
    loaded = time.perf_counter() - started
    ignore_label = _ignore_label(ignore_label, case.label_segments, label)
    if axis != "auto":  # the canonical axis the user named -> the stored array axis the completion works on
        axis = stored_axis(axis, case.orientation)
    if isinstance(suggest_axes, list):
        suggest_axes = ",".join(str(stored_axis(a, case.orientation)) for a in suggest_axes)
    settings = CompletionSettings(model=model, network=network, iterations=iterations, check=check, cleanse=cleanse,
                                  confidence=confidence, seed=seed, device=str(resolve_device(device)),
                                  suggest=suggest, suggest_axes=suggest_axes)
    result = complete_case(case, ignore_label, axis, settings,
                           progress=lambda msg: typer.echo(msg, err=True))
    result.report["time_split_s"] = {"load": round(loaded, 2), **result.report["time_split_s"]}
    written = time.perf_counter()
    write_volume(out, result.labels, case.reference, overwrite=overwrite,
                 segments=segments_for_output(result.labels, case.label_segments, ignore_label=ignore_label))
    result.report["time_split_s"]["write"] = round(time.perf_counter() - written, 2)
    if report is not None:
        write_text_atomic(report, json.dumps(result.report, indent=2) + "\n")
    if view is not None:
        _write_view(view, images[0], case, label, result, ignore_label, overwrite)
    wrong = [s["slice"] for s in result.report["slices_judged_wrong"]]
    split = ", ".join(f"{k} {v:.1f}" for k, v in result.report["time_split_s"].items())
    typer.echo(f"completed label written to {out} ({split} s); slices judged wrong: {wrong}")
    if result.report["suggested"]:
        typer.echo("annotate next: " + ", ".join(
            f"{axis_name(case.orientation[s['axis'], 0])} slice {s['slice']} (stored axis {s['axis']})"
            for s in result.report["suggested"]))


def _ignore_label(given: int | None, segments: tuple | None, path: Path) -> int | None:
    """``--ignore-label``, or for a Slicer segmentation without it the label value of its segment named "ignore"
    (what `versaseg data degrade` writes); a given value that names a real segment is an error."""
    from versaseg.errors import InputError
    from versaseg.io.segmentation import IGNORE_SEGMENT_NAME

    named = {s.name: s.label_value for s in segments or ()}
    if given is None:
        return named.get(IGNORE_SEGMENT_NAME)
    clash = [name for name, value in named.items() if value == given and name != IGNORE_SEGMENT_NAME]
    if clash:
        raise InputError(f"--ignore-label {given} is the label value of segment '{clash[0]}'", path)
    return given


def _write_view(page: Path, image: Path, case, labels: Path, result, ignore_label: int | None,
                overwrite: bool) -> None:
    """The review page of a completion: the first image channel, the sparse input and the completion."""
    from versaseg.io.image import case_name, read_volume
    from versaseg.io.segmentation import segments_for_output
    from versaseg.viz.review_page import LabelLayer, completion_marks, write_review_page

    volume = read_volume(image)
    sparse = case.to_original(case.label)
    layers = [LabelLayer("input", volume.like(sparse), case.label_segments, ignore_label),
              LabelLayer("completion", volume.like(result.labels),
                         segments_for_output(result.labels, case.label_segments, ignore_label=ignore_label))]
    write_review_page(page, volume, layers, f"{case_name(labels)} completed", completion_marks(result.report, volume),
                      overwrite=overwrite)
    typer.echo(f"review page written to {page}", err=True)
