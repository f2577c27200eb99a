"""``versaseg explain``: feature-map grids, statistics that match a direct hook, Grad-CAM, timeline, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from versaseg.cli.main import app
from versaseg.data.case import load_case
from versaseg.data.normalization import normalize
from versaseg.io.dataset import CaseFiles
from versaseg.networks.registry import build_network
from versaseg.tasks.explain import ExplainSettings, explain
from versaseg.tasks.training import train
from versaseg.training.config import TrainConfig


@pytest.fixture(scope="module")
def bg_dataset(tmp_path_factory) -> Path:
    from versaseg.data.synthetic.dataset import write_synth_dataset

    return write_synth_dataset(tmp_path_factory.mktemp("bg") / "data", cases=2, test_cases=1, label_set="basal-ganglia",
                               tiny=True, workers=1)


@pytest.fixture(scope="module")
def run_2d(bg_dataset, tmp_path_factory) -> Path:
    """A 2D U-Net trained for two epochs of two iterations, weights kept after each epoch."""
    config = TrainConfig(network_kwargs={"depth": 3, "base_width": 4}, epochs=2, iterations_per_epoch=2, batch_size=2,
                         augmentation="none", save_every=1)
    out = tmp_path_factory.mktemp("runs") / "unet2d"
    train(config, bg_dataset, out, device="cpu")
    return out


def _images(bg_dataset: Path) -> tuple[list[Path], Path]:
    images = sorted((bg_dataset / "imagesTs").glob("*.nii.gz"))
    return images, bg_dataset / "labelsTs" / (images[0].name[: -len("_0000.nii.gz")] + ".nii.gz")


def _untrained_run(template: Path, out: Path, **changes) -> Path:
    """A run directory with ``template``'s dataset facts, other settings and random weights (no training needed)."""
    out.mkdir(parents=True)
    config = TrainConfig.load(template)
    for key, value in changes.items():
        setattr(config, key, value)
    config.save(out)
    torch.manual_seed(0)
    network = build_network(config.network, config.spatial_dims, len(config.channel_names), config.num_classes,
                            **config.network_kwargs)
    torch.save(network.state_dict(), out / "model.pt")
    return out


def test_explain_writes_layers_stats_cam_and_timeline(run_2d, bg_dataset, tmp_path):
    images, label = _images(bg_dataset)
    out = tmp_path / "explain"
    index = explain(run_2d, images, out, label=label, show_progress=False)
    record = json.loads((out / "explain.json").read_text())
    names = [layer["name"] for layer in record["layers"]]
    assert names == ["encoder.0", "encoder.1", "encoder.2", "decoder.0", "decoder.1", "output"]
    pngs = sorted(p.name for p in (out / "layers").glob("*.png"))
    assert pngs == [f"{i:02d}_{n}.png" for i, n in enumerate(names)]
    html = index.read_text(encoding="utf-8")
    assert all(f"layers/{p}" in html for p in pngs) and "stats.csv" in html and "Grad-CAM" in html
    assert record["classes"] == ["caudate", "putamen", "pallidum"]

    # the statistics are those of the layer's output on the chosen slice, computed here with a hook of our own
    config = TrainConfig.load(run_2d)
    network = build_network(config.network, 2, 3, 4, **config.network_kwargs)
    network.load_state_dict(torch.load(run_2d / "model.pt", weights_only=True))
    case = load_case(CaseFiles("c", images))
    plane = np.take(normalize(case.image, config.normalization), record["slice"], axis=config.axis + 1)
    seen = {}
    network.decoder[0].register_forward_hook(lambda m, i, o: seen.update(x=o.detach().clone()))
    with torch.no_grad():
        network.eval()(torch.from_numpy(plane)[None])
    direct = seen["x"][0].double().numpy()
    stats = {row["layer"]: row for row in json.loads((out / "stats.json").read_text())["layers"]}["decoder.0"]
    assert stats["channels"] == direct.shape[0] and stats["size"] == "22x26"
    for key, value in (("mean", direct.mean()), ("std", direct.std()), ("max", direct.max()),
                       ("fraction_inactive", (direct <= 0).mean())):
        assert stats[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key

    # Grad-CAM: one map per class with the slice's shape, in [0, 1], not constant, high where the textbook
    # definition is high (gradient-averaged channel weights, rectified weighted sum, upsampled, min-max scaled)
    cam = np.load(out / "cam_putamen.npy")
    assert cam.shape == (44, 52) and cam.min() >= 0 and cam.max() <= 1 and cam.std() > 0
    x = torch.from_numpy(plane)[None]
    seen.clear()
    network.decoder[0].register_forward_hook(lambda m, i, o: seen.__setitem__("a", o))
    logits = network(x)
    region = logits.argmax(1) == 2  # Seg-Grad-CAM: the class's logits where it is predicted (everywhere if nowhere)
    score = (logits[:, 2] * region).sum() if region.any() else logits[:, 2].sum()
    grad = torch.autograd.grad(score, seen["a"])[0]
    reference = torch.relu((grad.mean((2, 3), keepdim=True) * seen["a"]).sum(1, keepdim=True))
    reference = torch.nn.functional.interpolate(reference, size=(44, 52), mode="bilinear")[0, 0].detach().numpy()
    assert np.corrcoef(cam.ravel(), reference.ravel())[0, 1] > 0.99
    assert cam.ravel()[np.argmax(reference)] == pytest.approx(1.0, abs=0.05)
    # across training: both saved epochs, this case's Dice per class against --label
    timeline = (out / "timeline.csv").read_text().splitlines()
    assert timeline[0] == "epoch,dice_caudate,dice_putamen,dice_pallidum" and len(timeline) == 3
    assert [c["epoch"] for c in record["checkpoints"]] == [1, 2]
    assert (out / "timeline_decoder.0.png").exists() and (out / "dice_timeline.png").exists()


def test_layer_patterns_slice_class_and_overwrite_via_cli(run_2d, bg_dataset, tmp_path):
    images, _ = _images(bg_dataset)
    out = tmp_path / "x"
    runner = CliRunner()
    args = ["explain", str(run_2d), *map(str, images), "--out", str(out), "--layers", "encoder.*,encoder.0.0.0",
            "--slice", "20", "--class", "putamen", "--max-channels", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    record = json.loads((out / "explain.json").read_text())
    assert [layer["name"] for layer in record["layers"]] == ["encoder.0", "encoder.1", "encoder.2", "encoder.0.0.0"]
    assert record["slice"] == 20 and record["classes"] == ["putamen"]
    assert sorted(p.name for p in out.glob("cam_*")) == ["cam_putamen.npy", "cam_putamen.png"]
    rows = json.loads((out / "stats.json").read_text())["layers"]
    assert all(len(row["shown_channels"].split()) == 2 for row in rows)
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0
    listing = runner.invoke(app, ["explain", str(run_2d), "--list-layers"])
    assert listing.exit_code == 0 and "bottleneck" in listing.output and "encoder.0.0.0" in listing.output


def test_frrn_residual_stream_and_3d_runs(run_2d, bg_dataset, tmp_path):
    images, _ = _images(bg_dataset)
    frrn = _untrained_run(run_2d, tmp_path / "frrn", network="frrn", network_kwargs={"depth": 3, "base_width": 4,
                                                                                      "residual_width": 4})
    out = explain(frrn, images, tmp_path / "e_frrn", settings=ExplainSettings(classes=["caudate"]),
                  show_progress=False).parent
    names = [layer["name"] for layer in json.loads((out / "explain.json").read_text())["layers"]]
    assert "encoder.0.0:z" in names and "merge" in names
    assert (out / "layers" / f"{names.index('encoder.0.0:z'):02d}_encoder.0.0_z.png").exists()
    stats = {row["layer"]: row for row in json.loads((out / "stats.json").read_text())["layers"]}
    assert stats["encoder.0.0:z"]["size"] == "44x52" and stats["encoder.0.0:z"]["channels"] == 4

    unet3d = _untrained_run(run_2d, tmp_path / "u3d", dim="3d", patch_size=[16, 16, 16])
    out = explain(unet3d, images, tmp_path / "e_3d", settings=ExplainSettings(classes=["caudate"], slice_index=21),
                  show_progress=False).parent
    stats = {row["layer"]: row for row in json.loads((out / "stats.json").read_text())["layers"]}
    assert stats["encoder.1"]["size"] == "8x8x8"
    cam = np.load(out / "cam_caudate.npy")
    assert cam.shape == (16, 16)


@pytest.mark.parametrize("case", ["no_model", "channels", "geometry", "layer", "class", "slice", "cam_layer"])
def test_bad_input_is_one_line_exit_2(case, run_2d, bg_dataset, tmp_path):
    images, _ = _images(bg_dataset)
    run, extra = run_2d, []
    if case == "no_model":
        run = tmp_path / "run"
        run.mkdir()
        shutil.copy(run_2d / "config.json", run)
    elif case == "channels":
        images = images[:2]
    elif case == "geometry":
        img = nib.load(images[1])
        shifted = tmp_path / images[1].name
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine @ np.diag([1.0, 1.0, 2.0, 1.0])), shifted)
        images = [images[0], shifted, images[2]]
    else:
        extra = {"layer": ["--layers", "nope.*"], "class": ["--class", "thalamus"], "slice": ["--slice", "44"],
                 "cam_layer": ["--cam-layer", "output"]}[case]
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["explain", str(run), *map(str, images), "--out", str(out), *extra])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:")
    expected = {"no_model": "model.pt", "channels": "expects 3 channel", "geometry": "geometry", "layer": "nope.*",
                "class": "thalamus", "slice": "--slice 44", "cam_layer": "--cam-layer"}[case]
    assert expected in lines[0]
    assert not out.exists()


def test_overlay_figure_legend_names_every_class_colour(tmp_path):
    """A reader who did not train the run can map colours to classes: the legend shows every class's colour, also
    of a class absent from this slice; a heat panel gets a colour bar (more rows of pixels)."""
    from matplotlib.image import imread

    from versaseg.viz.explain_figures import overlay_figure
    from versaseg.viz.overlays import label_colormap

    image = np.zeros((40, 40), np.float32)
    labels = np.zeros((40, 40), np.int64)
    labels[5:15, 5:15] = 1
    names = ["background", "one", "two", "three"]
    plain, legend = tmp_path / "plain.png", tmp_path / "legend.png"
    overlay_figure(image, plain, "t", [("prediction", labels, "labels")], 1.0, len(names))
    overlay_figure(image, legend, "t", [("prediction", labels, "labels")], 1.0, len(names), names)
    colours = label_colormap(len(names))[:, :3]

    def has(png, colour):
        return bool((np.abs(imread(png)[..., :3] - colour).max(-1) < 0.02).any())

    assert not has(plain, colours[3]) and has(legend, colours[3]) and has(legend, colours[2])
    heat = tmp_path / "heat.png"
    overlay_figure(image, heat, "t", [("cam", np.ones((40, 40)) * 0.5, "heat")], 1.0, len(names), names)
    assert imread(heat).shape[0] > imread(legend).shape[0]
