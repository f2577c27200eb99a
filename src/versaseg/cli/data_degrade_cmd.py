"""``versaseg data degrade``: simulate sparse, noisy teacher labels from a full label map or a whole dataset."""

from __future__ import annotations

import json
import os
import shutil
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from versaseg.cli.common import AXIS_HELP, axis_name, out_option, parse_axis, user_errors
from versaseg.errors import InputError
from versaseg.io.atomic import atomic_folder

_HELP = (
    "Simulate incomplete, noisy teacher labels: keep only every K-th slice of a fully annotated label map and corrupt "
    "a fraction of the kept slices the way hurried annotation goes wrong (leak: region growing past a weak edge; "
    "over: dilation by 1-3 px; under: erosion by 1-3 px; jitter: smooth random contour displacement; shift: the "
    "adjacent slice's annotation, or a translation by 1-4 px; missed: a small connected component dropped).\n\n"
    "Slices are taken along --axis, in the frame every versaseg command uses: axial, coronal, sagittal (or 2, 1, 0, "
    "the canonical RAS axes), whatever the file's stored orientation. The slices are those of the stored array axis "
    "closest to it (no resampling): for an RAS-stored file --axis axial keeps label[:, :, k] for k = offset, "
    "offset + K, ... (--offset counts along that stored axis). The report names the stored axis too.\n\n"
    "Conventions: by default unannotated voxels get an ignore label (nnU-Net v2): --ignore-label N, or, if not "
    "given, the highest label value + 1 (in --dataset mode: the highest dataset.json label + 1; for a single file: "
    "the highest value in that file + 1, so pass --ignore-label to keep files consistent). --empty-slices instead "
    "leaves unannotated slices all background 0 (3D Slicer).\n\n"
    "With --dataset, LABEL is an nnU-Net v2 dataset folder and OUT a new dataset folder: images (imagesTr, imagesTs) "
    "and labelsTs are hard-linked (copied across file systems), labelsTr is degraded with the same file names, and "
    "dataset.json gets an 'ignore' label (ignore convention) and a 'versaseg_degrade' entry with the parameters. The "
    "first channel guides the leak corruption. Each case draws from its own random stream, seeded with (--seed, crc32 "
    "of the case id), so results do not depend on the case order. The folder is built in a hidden temporary "
    "sibling and renamed into place at the end.\n\n"
    "Outputs keep the input geometry, are written atomically and are never replaced without --overwrite."
)


def _checked_label(volume) -> np.ndarray:
    """The label array (X, Y, Z) after the shared label checks (:func:`versaseg.io.checks.label_values`), in its
    own integer type (a float file of whole numbers becomes int16)."""
    from versaseg.io.checks import label_values

    checked = label_values(volume)
    return volume.array if np.issubdtype(volume.array.dtype, np.integer) else checked


def _checked_guide(image_path: Path, volume) -> np.ndarray:
    """The guide image (X, Y, Z) float32, on ``volume``'s grid and finite (the shared checks)."""
    from versaseg.io.checks import check_same_geometry, image_values
    from versaseg.io.image import read_volume

    image_volume = read_volume(image_path)
    check_same_geometry(image_volume, volume, "image")
    return image_values(image_volume)


@dataclass
class Degradation:
    """What `data degrade` does to every label: keep every ``every``-th slice along canonical RAS ``axis`` from
    ``offset``, corrupt ``noisy_fraction`` of the kept slices (``seed``), mark the rest with ``ignore_label`` (None:
    the highest label + 1) or, with ``empty_slices``, leave them background."""

    every: int
    axis: int
    offset: int
    noisy_fraction: float
    seed: int
    ignore_label: int | None
    empty_slices: bool

    def check(self) -> None:
        """Validate the options that do not depend on the data; raises InputError naming the option."""
        if self.every < 1:
            raise InputError(f"--every must be at least 1, got {self.every}")
        if self.offset < 0:
            raise InputError(f"--offset must be >= 0, got {self.offset}")
        if not 0.0 <= self.noisy_fraction <= 1.0:
            raise InputError(f"--noisy-fraction must be in [0, 1], got {self.noisy_fraction}")
        if self.seed < 0:
            raise InputError(f"--seed must be >= 0, got {self.seed}")
        if self.ignore_label is not None and self.empty_slices:
            raise InputError("--ignore-label and --empty-slices are mutually exclusive (ignore label or empty slices)")
        if self.ignore_label is not None and self.ignore_label < 1:
            raise InputError(f"--ignore-label must be a positive integer above every label value, got "
                             f"{self.ignore_label}")


def _check_offset(offset: int, shape: tuple[int, ...], axis: int, path: Path) -> None:
    if offset >= shape[axis]:
        raise InputError(f"--offset {offset} is beyond the {shape[axis]} slices along axis {axis}", path)


def _write_report(path: Path, data: dict) -> None:
    from versaseg.io.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=2) + "\n")
    typer.echo(f"wrote {path}")


def _ignore_value(ignore_label: int | None, empty_slices: bool, top: int, path: Path, where: str = "") -> int | None:
    """The ignore label to write: None with --empty-slices, else --ignore-label (above every label value ``top``) or
    ``top + 1``."""
    if empty_slices:
        return None
    if ignore_label is None:
        return top + 1
    if ignore_label <= top:
        raise InputError(f"--ignore-label {ignore_label} collides with label value {top}{where}; use a value above "
                         f"{top}", path)
    return ignore_label


def _degrade_file(
    label_path: Path,
    out: Path,
    image_path: Path | None,
    opts: Degradation,
    overwrite: bool,
) -> dict:
    """Degrade one label file into ``out``; returns the report dict."""
    from versaseg.data.degrade import degrade_label
    from versaseg.io.image import orientation_of, read_volume, stored_axis, write_volume
    from versaseg.io.segmentation import segments_for_output

    volume = read_volume(label_path)
    label = _checked_label(volume)
    axis = stored_axis(opts.axis, orientation_of(volume.affine))
    _check_offset(opts.offset, label.shape, axis, label_path)
    ignore = _ignore_value(opts.ignore_label, opts.empty_slices, int(label.max()) if label.size else 0, label_path,
                           " in the file")
    image = None if image_path is None else _checked_guide(image_path, volume)
    degraded, report = degrade_label(label, opts.every, axis, opts.offset, opts.noisy_fraction, opts.seed, ignore,
                                     image)
    write_volume(out, degraded, like=volume, overwrite=overwrite,
                 segments=segments_for_output(degraded, volume.segments, ignore_label=ignore))
    return {**report.to_dict(), "canonical_axis": axis_name(opts.axis)}


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst``, copying when the file systems differ or links are not supported."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _degrade_dataset(
    root: Path,
    out: Path,
    opts: Degradation,
    overwrite: bool,
) -> dict:
    """Degrade every labelsTr file of the dataset ``root`` into the new dataset folder ``out``; returns the report."""
    from versaseg.data.degrade import degrade_label
    from versaseg.io.checks import check_label_set
    from versaseg.io.dataset import IGNORE_NAME, load_dataset
    from versaseg.io.image import orientation_of, read_volume, stored_axis, write_volume

    spec = load_dataset(root)
    dataset_json = root / "dataset.json"
    if spec.ignore_label is not None:
        raise InputError("dataset already has an 'ignore' label; degrade a fully annotated dataset", dataset_json)
    cases = spec.training_cases()
    top = max(spec.labels.values())
    ignore = _ignore_value(opts.ignore_label, opts.empty_slices, top, dataset_json)

    reports = {}
    with atomic_folder(out, overwrite) as tmp:
        for folder in ("imagesTr", "labelsTr"):
            (tmp / folder).mkdir()
        for folder in ("imagesTs", "labelsTs"):
            if (root / folder).is_dir():
                (tmp / folder).mkdir()
                for path in sorted((root / folder).iterdir()):
                    if path.is_file() and not path.name.startswith("."):
                        _link_or_copy(path, tmp / folder / path.name)
        for case in cases:
            for path in case.images:
                _link_or_copy(path, tmp / "imagesTr" / path.name)
            volume = read_volume(case.label)
            label = _checked_label(volume)
            check_label_set(label, spec.labels.values(), volume)
            case_axis = stored_axis(opts.axis, orientation_of(volume.affine))
            _check_offset(opts.offset, label.shape, case_axis, case.label)
            guide = _checked_guide(case.images[0], volume)
            case_seed = [opts.seed, zlib.crc32(case.case_id.encode())]
            degraded, report = degrade_label(label, opts.every, case_axis, opts.offset, opts.noisy_fraction,
                                             case_seed, ignore, guide)
            write_volume(tmp / "labelsTr" / case.label.name, degraded, like=volume)
            reports[case.case_id] = {**report.to_dict(), "canonical_axis": axis_name(opts.axis)}
            typer.echo(f"{case.case_id}: {report.summary()}")
        spec.root = tmp
        if ignore is not None:
            spec.labels = {**spec.labels, IGNORE_NAME: ignore}
        spec.extra = {
            **spec.extra,
            "versaseg_degrade": {
                "source": str(root),
                "every": opts.every,
                "axis": axis_name(opts.axis),
                "offset": opts.offset,
                "noisy_fraction": opts.noisy_fraction,
                "seed": opts.seed,
                "convention": "ignore" if ignore is not None else "empty",
                "ignore_label": ignore,
            },
        }
        spec.save()
    return {"dataset": str(root), "output": str(out), "cases": reports}


@user_errors
def degrade(
    label: Annotated[
        Path,
        typer.Argument(
            help="Fully annotated label map (.nii.gz, .nii, .nrrd, .nhdr, .mha, .mhd); with --dataset, an "
            "nnU-Net v2 dataset folder.",
            show_default=False,
        ),
    ],
    every: Annotated[
        int,
        typer.Option("--every", help="Annotate every K-th slice (K >= 1; 1 keeps every slice).", show_default=False),
    ],
    out_arg: Annotated[
        Path | None,
        typer.Argument(metavar="[OUT]", help="Old place of --out (deprecated).", show_default=False, hidden=True),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output label map (same geometry as LABEL); with --dataset, the new dataset folder.",
            show_default=False,
        ),
    ] = None,
    axis: Annotated[
        str,
        typer.Option("--axis", help="Axis along which slices are taken: " + AXIS_HELP + "."),
    ] = "axial",
    offset: Annotated[
        int,
        typer.Option("--offset", help="Index of the first annotated slice along --axis."),
    ] = 0,
    noisy_fraction: Annotated[
        float,
        typer.Option(
            "--noisy-fraction",
            help="Fraction in [0, 1] of annotated slices to corrupt (rounded half up; slices with foreground first).",
        ),
    ] = 0.0,
    seed: Annotated[
        int,
        typer.Option("--seed", help="Random seed (>= 0); the same seed gives the same output."),
    ] = 0,
    ignore_label: Annotated[
        int | None,
        typer.Option(
            "--ignore-label",
            help="Value of unannotated voxels (nnU-Net ignore label); must exceed every "
            "label value. Default: highest label value + 1.",
            show_default=False,
        ),
    ] = None,
    empty_slices: Annotated[
        bool,
        typer.Option(
            "--empty-slices",
            help="Leave unannotated slices all background 0 (3D Slicer convention) instead of using an ignore label.",
        ),
    ] = False,
    dataset: Annotated[
        bool,
        typer.Option(
            "--dataset",
            help="LABEL is a dataset folder (nnU-Net v2 layout) and OUT a new dataset folder: "
            "degrade every labelsTr file.",
        ),
    ] = False,
    image: Annotated[
        Path | None,
        typer.Option(
            "--image",
            help="Intensity image (same grid as LABEL) whose intensities guide leak corruptions "
            "(single-file mode; --dataset uses each case's first channel).",
            show_default=False,
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write the per-slice report (annotated slices; corruption kind, parameters and "
            "changed voxels) as JSON.",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option("--overwrite", help="Replace existing outputs (OUT, --report) instead of refusing."),
    ] = False,
) -> None:
    """Simulate sparse, noisy teacher labels (help text: ``_HELP``)."""
    from versaseg.io.atomic import check_writable
    from versaseg.io.image import file_ending

    out = out_option(out, out_arg)
    opts = Degradation(every, parse_axis(axis), offset, noisy_fraction, seed, ignore_label, empty_slices)
    opts.check()
    if report is not None:
        if report.is_dir():
            raise InputError("--report is a folder; give a JSON file name", report)
        check_writable(report, overwrite)
    if dataset:
        if image is not None:
            raise InputError("--image is for single files; --dataset uses each case's first channel", image)
        if not label.is_dir():
            raise InputError("dataset folder not found (--dataset expects an nnU-Net v2 dataset folder)", label)
        source, target = label.resolve(), out.resolve()
        if target == source or source in target.parents or target in source.parents:
            raise InputError("output folder must differ from the input dataset and not contain or lie inside it", out)
        if out.exists() and not out.is_dir():
            raise InputError("output exists and is not a folder", out)
        check_writable(out, overwrite)
        data = _degrade_dataset(label, out, opts, overwrite)
        typer.echo(f"wrote {out}")
    else:
        if label.is_dir() and (label / "dataset.json").exists():
            raise InputError("is a dataset folder; pass --dataset to degrade every label of it", label)
        if not file_ending(out):
            raise InputError("unknown output file ending; use .nii.gz, .nii, .nrrd, .nhdr, .mha or .mhd", out)
        if out.is_dir():
            raise InputError("is a folder; give an output file name", out)
        check_writable(out, overwrite)
        data = _degrade_file(label, out, image, opts, overwrite)
        typer.echo(f"{label}: {_summary(data)}")
        typer.echo(f"wrote {out}")
    if report is not None:
        _write_report(report, data)


def _summary(data: dict) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(data["corrupted_per_kind"].items()))
    return (
        f"{data['num_annotated']}/{data['num_slices']} slices annotated along {data['canonical_axis']} (stored axis "
        f"{data['axis']}), "
        f"{data['num_corrupted']} corrupted"
        + (f" ({kinds})" if kinds else "")
        + (f"; ignore label {data['ignore_label']}" if data["ignore_label"] is not None else "; empty slices")
    )


degrade.__doc__ = _HELP
