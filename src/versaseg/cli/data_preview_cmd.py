"""``versaseg data preview``: a PNG mosaic of one case's channels in three planes with its label overlay."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from versaseg.cli.common import user_errors
from versaseg.errors import InputError

_HELP = (
    "Draw one case as a PNG: a row per plane (axial, coronal, sagittal), a column per channel, a column with the "
    "label map over the first channel, and a maximum-intensity projection (MIP) column of the angiography channel "
    "(a channel named TOF/MRA/angio, or --mip NAME).\n\n"
    "Two ways to name the case:\n\n"
    "  a dataset folder and a case id: versaseg data preview DATASET --case synth_003 --out case.png "
    "(the case is looked up in imagesTr/labelsTr, then imagesTs/labelsTs; channel and class names come from "
    "dataset.json; without --case, the first training case);\n\n"
    "  the case's image files, one per channel in channel order, and optionally its label file: versaseg data preview "
    "t1.nii.gz t2.nii.gz tof.nii.gz --label seg.nii.gz --out case.png (channels are named after the files).\n\n"
    "Volumes are shown in RAS+ orientation with their true voxel aspect. Slices are evenly spaced through the "
    "labelled region (the whole volume without a label), each moved if needed to the nearest slice that shows at "
    "least half of the largest labelled cross-section (so small bilateral structures are not missed at the midline)."
)
_ANGIO_NAMES = ("tof", "mra", "angio")


@user_errors
def preview(
    source: Annotated[list[Path], typer.Argument(
        help="A dataset folder (nnU-Net v2 layout), or the case's channel image files in channel order.",
        show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.", show_default=False)],
    case: Annotated[str | None, typer.Option(
        "--case", "-c", help="Case id inside the dataset folder; default: the first training case.",
        show_default=False)] = None,
    label: Annotated[Path | None, typer.Option(
        "--label", "-l", help="Label file of the case when SOURCE lists image files.", show_default=False)] = None,
    mip: Annotated[str | None, typer.Option(
        "--mip", help="Channel to show as a maximum-intensity projection; default: the angiography channel, if any; "
        "'none' for no MIP column.", show_default=False)] = None,
    slices: Annotated[int, typer.Option("--slices", help="Slices per plane (rows per view).")] = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing PNG.")] = False,
) -> None:
    from versaseg.data.case import load_case
    from versaseg.io.atomic import check_writable
    from versaseg.io.dataset import CaseFiles, load_dataset
    from versaseg.io.image import case_name
    from versaseg.viz.preview import case_mosaic

    if not out.name.lower().endswith(".png"):
        raise InputError("--out must be a .png file", out)
    check_writable(out, overwrite)
    if slices < 1 or slices > 8:
        raise InputError(f"--slices must be between 1 and 8, got {slices}")
    if len(source) == 1 and source[0].is_dir():
        if label is not None:
            raise InputError("--label is for image files; a dataset folder brings its own labels", label)
        spec = load_dataset(source[0])
        files = _dataset_case(spec, case)
        channel_names = [spec.channel_names[i] for i in sorted(spec.channel_names)]
        class_names = {value: name for name, value in spec.labels.items()}
        label_values = set(spec.labels.values())
        title = f"{spec.root.name} / {files.case_id}"
    else:
        if case is not None:
            raise InputError("--case is for a dataset folder; give the image files or the folder, not both")
        for path in source:
            if path.is_dir():
                raise InputError("give either one dataset folder or image files, not a mix", path)
        files = CaseFiles(case_name(source[0]), list(source), label)
        channel_names = [case_name(p) for p in source]
        class_names, label_values = None, None
        title = files.case_id
    loaded = load_case(files, label_values)
    if class_names is None and loaded.label is not None:
        class_names = {int(v): f"label_{int(v)}" for v in sorted(set(loaded.label.ravel().tolist()) - {0})}
    mip_channel = _mip_channel(mip, channel_names)
    channels = list(zip(channel_names, loaded.image, strict=True))
    written = case_mosaic(channels, loaded.label, out, spacing=loaded.spacing, class_names=class_names,
                          mip_channel=mip_channel, slices=slices, title=title)
    typer.echo(f"wrote {written}")


preview.__doc__ = _HELP


def _dataset_case(spec, case: str | None):
    """The CaseFiles of ``case`` (training first, then test cases with labelsTs labels); InputError if absent."""
    training = spec.training_cases() if (spec.root / "imagesTr").is_dir() else []
    testing = spec.test_cases()
    for files in testing:
        label = spec.root / "labelsTs" / f"{files.case_id}{spec.file_ending}"
        files.label = label if label.exists() else None
    everything = training + testing
    if not everything:
        raise InputError("dataset has no cases in imagesTr or imagesTs", spec.root)
    if case is None:
        return everything[0]
    for files in everything:
        if files.case_id == case:
            return files
    known = ", ".join(f.case_id for f in everything[:5]) + (", ..." if len(everything) > 5 else "")
    raise InputError(f"case '{case}' not found in imagesTr or imagesTs (cases: {known})", spec.root)


def _mip_channel(option: str | None, names: list[str]) -> str | None:
    if option is not None:
        if option.lower() == "none":
            return None
        if option not in names:
            raise InputError(f"--mip '{option}' is not a channel; channels: {', '.join(names)}")
        return option
    for name in names:
        if any(key in name.lower() for key in _ANGIO_NAMES):
            return name
    return None
