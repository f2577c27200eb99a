"""`versaseg synth train | apply | augment` end to end on a tiny synthetic brain dataset.

The learnable toy: the tiny synth-brain dataset with its TOF channel replaced by 30 * sqrt(T1), a fixed monotone
function of the source, so a small generator learns T1 -> TOF within a few dozen iterations.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from versaseg.cli.main import app
from versaseg.data.pairs import load_pair
from versaseg.data.synthetic.dataset import write_synth_dataset
from versaseg.errors import InputError
from versaseg.evaluation.image_quality import image_quality
from versaseg.evaluation.validation import synthesize_scaled
from versaseg.inference.predictor import Predictor
from versaseg.networks.pix2pix import build_generator
from versaseg.tasks.synthesis import synthesize, train_synthesis
from versaseg.training.checkpoint import list_snapshots
from versaseg.training.config import SynthConfig

RUNNER = CliRunner()
PROGRESS_LINE = re.compile(r"[\w ]+ \d+(/\d+)? \w+ \(\d+ s\)")
SMALL = dict(network_kwargs={"depth": 3, "base_width": 8}, disc_channels=8, batch_size=4, learning_rate=1e-3)


def _cli(*args):
    return RUNNER.invoke(app, [str(a) for a in args])


def _error_line(result) -> str:
    # what a terminal shows: the text after the last carriage return of each line (progress bars clear themselves);
    # off a terminal the progress lines of finished steps ("synthesize 2/4 case (0 s)") may precede the error
    lines = [ln.split("\r")[-1] for ln in result.output.split("\n")]
    lines = [ln for ln in lines if ln.strip() and not PROGRESS_LINE.fullmatch(ln)]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="module")
def toy(root) -> Path:
    brain = write_synth_dataset(root / "brain", cases=3, test_cases=1, tiny=True, workers=1)
    toy = root / "toy"
    shutil.copytree(brain, toy)
    for path in sorted(toy.glob("images*/*_0000.nii.gz")):
        img = nib.load(path)
        t1 = np.asarray(img.dataobj, dtype=np.float32)
        tof = path.with_name(path.name.replace("_0000", "_0002"))
        nib.save(nib.Nifti1Image((30 * np.sqrt(t1)).astype(np.float32), img.affine, img.header), tof)
    return toy


@pytest.fixture(scope="module")
def run(root, toy) -> dict:
    """Train one epoch, then resume to two; returns the run dir and what the first epoch wrote."""
    out = root / "run"
    config = SynthConfig(source="T1", target="TOF", epochs=1, iterations_per_epoch=15, sample_every=1, seed=0,
                         **SMALL)
    train_synthesis(config, toy, out, device="cpu", show_progress=False)
    first = {"metrics": (out / "metrics.csv").read_text(), "epoch": torch.load(out / "checkpoint.pt",
                                                                                weights_only=True)["epoch"]}
    train_synthesis(SynthConfig(source="T1", target="TOF", epochs=2), toy, out, resume=True, device="cpu",
                    show_progress=False)
    return {"dir": out, "first": first}


def _rows(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.csv").read_text().strip().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, map(float, line.split(",")), strict=True)) for line in lines[1:]]


def test_training_learns_the_toy_mapping_and_writes_the_run(run, toy):
    run_dir = run["dir"]
    rows = _rows(run_dir)
    assert [r["epoch"] for r in rows] == [1, 2]
    expected = ["epoch", "g_adv", "g_l1", "d_loss", "lr", "seconds", "samples_per_s", "val_mae", "val_psnr",
                "val_ssim", "val_seconds"]
    assert list(rows[0]) == expected
    assert all(np.isfinite(v) for r in rows for v in r.values())
    assert (run_dir / "samples" / "epoch_001.png").stat().st_size > 0
    assert (run_dir / "samples" / "epoch_002.png").stat().st_size > 0
    assert (run_dir / "curves.png").exists()
    config = SynthConfig.load(run_dir)
    assert (config.source_name, config.target_name, config.source_index, config.target_index) == ("T1", "TOF", 0, 2)
    assert len(config.val_cases) == 1 and len(config.train_cases) == 2
    # the untrained generator (same seed, same initialisation) versus the trained one, on the validation case
    from versaseg.io.dataset import load_dataset

    files = {f.case_id: f for f in load_dataset(toy).training_cases()}[config.val_cases[0]]
    pair = load_pair(files, 0, 2, config.percentiles, None, None)
    torch.manual_seed(config.seed)
    untrained = build_generator(config.network, 2, config.network_kwargs)
    before = image_quality(synthesize_scaled(untrained, pair.source, config), pair.target, pair.mask, 2.0,
                           ssim_axis=2, fill=-1.0)
    assert rows[-1]["val_mae"] < 0.5 * before["mae"]
    assert rows[-1]["val_psnr"] > before["psnr"] + 3
    trained = Predictor(run_dir).require("image")
    after = image_quality(synthesize_scaled(trained.network, pair.source, config), pair.target, pair.mask, 2.0,
                          ssim_axis=2, fill=-1.0)
    assert after["mae"] == pytest.approx(rows[-1]["val_mae"], rel=1e-4)  # metrics.csv reports the saved model


def test_resume_continues_the_epoch_count_and_a_finished_run_trains_nothing(run, toy):
    run_dir = run["dir"]
    assert run["first"]["epoch"] == 0 and run["first"]["metrics"].count("\n") == 2
    metrics = (run_dir / "metrics.csv").read_text()
    assert metrics.startswith(run["first"]["metrics"])  # epoch 1's row is kept, epoch 2's appended
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1
    model = (run_dir / "model.pt").read_bytes()
    train_synthesis(SynthConfig(source="T1", target="TOF", epochs=2), toy, run_dir, resume=True, device="cpu",
                    show_progress=False)
    assert (run_dir / "metrics.csv").read_text() == metrics
    assert (run_dir / "model.pt").read_bytes() == model


def test_an_existing_run_needs_resume_or_overwrite(run, toy):
    config = SynthConfig(source="T1", target="TOF", epochs=1, iterations_per_epoch=1, **SMALL)
    with pytest.raises(InputError, match="pass --resume to continue or --overwrite"):
        train_synthesis(config, toy, run["dir"], device="cpu", show_progress=False)
    line = _error_line(_cli("synth", "train", toy, "--source", "T1", "--target", "TOF", "--out", run["dir"]))
    assert "--overwrite" in line


def test_cli_rejects_unknown_channels_and_identical_source_and_target(root, toy):
    out = root / "never"
    line = _error_line(_cli("synth", "train", toy, "--source", "T1", "--target", "FLAIR", "--out", out))
    assert "FLAIR" in line and "valid: 0 T1, 1 T2, 2 TOF" in line
    line = _error_line(_cli("synth", "train", toy, "--source", "T2", "--target", "1", "--out", out))
    assert "same channel" in line
    assert not out.exists()


def test_geometry_mismatch_between_source_and_target_names_the_file(root, toy):
    bad = root / "bad_geometry"
    shutil.copytree(toy, bad)
    path = bad / "imagesTr" / "synth_001_0002.nii.gz"
    img = nib.load(path)
    affine = img.affine.copy()
    affine[0, 3] += 10
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), affine), path)
    config = SynthConfig(source="T1", target="TOF", epochs=1, iterations_per_epoch=1, **SMALL)
    with pytest.raises(InputError, match="synth_001_0002.nii.gz.*geometry"):
        train_synthesis(config, bad, root / "never2", device="cpu", show_progress=False)
    assert not (root / "never2").exists()


def test_apply_writes_the_inputs_geometry_in_the_targets_range(run, toy, root):
    source = toy / "imagesTs" / "synth_003_0000.nii.gz"
    out = root / "applied.nii.gz"
    result = _cli("synth", "apply", run["dir"], source, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    written, original = nib.load(out), nib.load(source)
    assert written.shape == original.shape
    np.testing.assert_allclose(written.affine, original.affine)
    assert written.header.get_zooms() == pytest.approx(original.header.get_zooms())
    low, high = SynthConfig.load(run["dir"]).target_range
    data = np.asarray(written.dataobj)
    assert data.dtype == np.float32 and low - 1e-3 <= data.min() and data.max() <= high + 1e-3
    real = np.asarray(nib.load(toy / "imagesTs" / "synth_003_0002.nii.gz").dataobj, dtype=np.float32)
    brain = np.asarray(nib.load(toy / "labelsTs" / "synth_003.nii.gz").dataobj) > 0
    assert np.corrcoef(data[brain], real[brain])[0, 1] > 0.7  # the learnt mapping, in the input's voxel order
    # the same image stored with flipped axis order gives the same synthesis, voxel for voxel
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])
    flip[0, 3] = original.shape[0] - 1
    flipped = nib.Nifti1Image(np.asarray(original.dataobj)[::-1].copy(), original.affine @ flip)
    from versaseg.io.image import Volume

    again = synthesize(run["dir"], Volume(np.asarray(flipped.dataobj), flipped.affine))
    np.testing.assert_allclose(again.array[::-1], data, atol=1e-4)
    assert _error_line(_cli("synth", "apply", run["dir"], source, "--out", out)).endswith(
        "output exists; pass --overwrite to replace it")


def test_apply_errors_name_the_file(run, root):
    no_model = root / "no_model"
    no_model.mkdir()
    shutil.copy(run["dir"] / "config.json", no_model / "config.json")
    image = root / "toy" / "imagesTs" / "synth_003_0000.nii.gz"
    line = _error_line(_cli("synth", "apply", no_model, image, "--out", root / "x.nii.gz"))
    assert str(no_model / "model.pt") in line
    img = nib.load(image)
    data = np.asarray(img.dataobj, dtype=np.float32)
    data[3, 3, 3] = np.nan
    nan_path = root / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine), nan_path)
    assert "NaN" in _error_line(_cli("synth", "apply", run["dir"], nan_path, "--out", root / "x.nii.gz"))
    assert not (root / "x.nii.gz").exists()


def test_augment_adds_a_synthetic_channel_that_train_uses(run, toy, root):
    out = root / "augmented"
    result = _cli("synth", "augment", run["dir"], toy, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "dataset.json").read_text())
    assert spec["channel_names"] == {"0": "T1", "1": "T2", "2": "TOF", "3": "synthetic TOF"}
    assert spec["synthesis"]["source_channel"] == "T1" and spec["synthesis"]["run"] == str(run["dir"].resolve())
    assert spec["numTraining"] == 3
    for folder, cases in (("imagesTr", ["synth_000", "synth_001", "synth_002"]), ("imagesTs", ["synth_003"])):
        names = sorted(p.name for p in (out / folder).iterdir())
        assert names == sorted(f"{c}_{k:04d}.nii.gz" for c in cases for k in range(4))
        for case in cases:
            new = nib.load(out / folder / f"{case}_0003.nii.gz")
            reference = nib.load(toy / folder / f"{case}_0000.nii.gz")
            assert new.shape == reference.shape
            np.testing.assert_allclose(new.affine, reference.affine)
    for label in (toy / "labelsTr").iterdir():
        assert (out / "labelsTr" / label.name).read_bytes() == label.read_bytes()
    assert (out / "labelsTs" / "synth_003.nii.gz").read_bytes() == (toy / "labelsTs" / "synth_003.nii.gz").read_bytes()
    # the test case's synthetic channel equals `synth apply` on its source
    applied = synthesize(run["dir"], toy / "imagesTs" / "synth_003_0000.nii.gz").array
    np.testing.assert_allclose(np.asarray(nib.load(out / "imagesTs" / "synth_003_0003.nii.gz").dataobj), applied,
                               atol=1e-4)
    seg = root / "seg_run"
    result = _cli("train", out, "--out", seg, "--epochs", "1", "--iterations", "2", "--batch-size", "2",
                  "--network-kwargs", '{"depth": 2, "base_width": 4}', "--augmentation", "none", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert json.loads((seg / "config.json").read_text())["channel_names"] == ["T1", "T2", "TOF", "synthetic TOF"]
    line = _error_line(_cli("synth", "augment", run["dir"], toy, "--out", out))
    assert "--overwrite" in line


def test_augment_leaves_nothing_when_a_case_is_corrupt(run, toy, root):
    broken = root / "broken"
    shutil.copytree(toy, broken)
    (broken / "imagesTr" / "synth_002_0001.nii.gz").write_bytes(b"not a nifti file")
    out = root / "broken_out"
    line = _error_line(_cli("synth", "augment", run["dir"], broken, "--out", out, "--device", "cpu"))
    assert "synth_002_0001.nii.gz" in line
    assert not out.exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]


def test_3d_training_and_sliding_window_synthesis(root, toy):
    out = root / "run3d"
    config = SynthConfig(source="T1", target="TOF", dim="3d", patch_size=[24, 24, 24], epochs=1,
                         iterations_per_epoch=2, batch_size=2, network_kwargs={"depth": 2, "base_width": 4},
                         disc_channels=4, sample_every=0)
    train_synthesis(config, toy, out, device="cpu", show_progress=False)
    rows = _rows(out)
    assert len(rows) == 1 and np.isfinite(rows[0]["val_ssim"])
    assert not (out / "samples").exists()
    small = SynthConfig(source="T1", target="TOF", dim="3d", patch_size=[16, 16, 16], network_kwargs={"depth": 2})
    with pytest.raises(InputError, match="too small for the discriminator"):
        train_synthesis(small, toy, root / "never3", device="cpu", show_progress=False)
    source = nib.load(toy / "imagesTs" / "synth_003_0000.nii.gz")
    result = synthesize(out, toy / "imagesTs" / "synth_003_0000.nii.gz")
    assert result.shape == source.shape and np.isfinite(result.array).all()


# -- the shared training loop gives pix2pix what segmentation has: DDP, snapshots, val-every, schedules ---------------

def test_ddp_two_cpu_processes_train_identical_generators(root, toy):
    out = root / "ddp"
    out.mkdir()
    torchrun = Path(sys.executable).parent / "torchrun"
    result = subprocess.run([str(torchrun), "--nproc-per-node", "2", "--master-port", str(29700 + os.getpid() % 1000),
                             str(Path(__file__).resolve().parents[1] / "helpers" / "ddp_synth.py"), str(toy),
                             str(out)], capture_output=True, text=True, encoding="utf-8", errors="replace",
                            timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "world 2" in result.stdout
    rank0, rank1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for name in ("generator", "discriminator"):
        assert rank0[name].keys() == rank1[name].keys()
        # the weights agree; batch-norm running statistics are per-rank buffers (DDP broadcasts rank 0's, which
        # model.pt keeps, before every forward)
        weights = [k for k in rank0[name] if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        assert len(weights) > 4 and all(torch.allclose(rank0[name][k], rank1[name][k]) for k in weights), name
    exported = torch.load(out / "run" / "model.pt", weights_only=True)
    assert all(torch.equal(exported[k], rank0["generator"][k]) for k in exported)  # rank 0 wrote the run
    torch.manual_seed(3)
    initial = build_generator("unet", 2, {"depth": 3, "base_width": 4}).state_dict()
    assert any(not torch.equal(initial[k], exported[k]) for k in exported)  # the replicas really trained
    assert len(_rows(out / "run")) == 2


def test_val_every_save_every_schedule_and_grad_clip_from_the_cli(root, toy):
    out = root / "loop"
    result = _cli("synth", "train", toy, "--source", "T1", "--target", "TOF", "--out", out, "--epochs", "4",
                  "--iterations", "2", "--batch-size", "2", "--network-kwargs", '{"depth": 2, "base_width": 4}',
                  "--val-every", "3", "--save-every", "2", "--schedule", "linear", "--grad-clip", "1.0", "--lr",
                  "1e-3", "--sample-every", "0", "--device", "cpu")
    assert result.exit_code == 0, result.output
    config = SynthConfig.load(out)
    assert (config.val_every, config.save_every, config.schedule, config.grad_clip) == (3, 2, "linear", 1.0)
    lines = (out / "metrics.csv").read_text().strip().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    # validation after epoch 3 (every 3rd) and after the last; empty cells elsewhere
    assert [bool(r["val_mae"]) for r in rows] == [False, False, True, True]
    # pix2pix's linear schedule over 4 epochs: constant for 2, then 2/3, 1/3 of the base rate
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 1e-3, 2e-3 / 3, 1e-3 / 3], rel=1e-4)
    snapshots = list_snapshots(out)
    assert [epoch for epoch, _ in snapshots] == [2, 4]
    final = torch.load(out / "model.pt", weights_only=True)
    last = torch.load(snapshots[-1][1], weights_only=True)
    assert final.keys() == last.keys() and all(torch.equal(final[k], last[k]) for k in final)
    first = torch.load(snapshots[0][1], weights_only=True)
    assert any(not torch.equal(first[k], final[k]) for k in final)
    # the snapshots are generators a predictor can load: explain's timeline reads them the same way
    generator = build_generator(config.network, 2, config.network_kwargs)
    generator.load_state_dict(first)
    assert "schedule" in _cli("synth", "train", "--help").output


def test_grad_clip_bounds_the_gradient_each_network_steps_with():
    from versaseg.networks.pix2pix import build_discriminator
    from versaseg.training.steps import Pix2PixStep

    batch = {"source": torch.rand(2, 1, 32, 32) * 2 - 1, "target": torch.rand(2, 1, 32, 32) * 2 - 1}
    norms = {}
    for clip in (0.0, 1e-3):
        torch.manual_seed(0)
        config = SynthConfig(source="T1", target="TOF", grad_clip=clip, **SMALL)
        step = Pix2PixStep(build_generator("unet", 2, SMALL["network_kwargs"]),
                           build_discriminator(2, config.disc_layers, config.disc_channels), config)
        losses = step(batch, step.networks)
        assert set(losses) == {"g_adv", "g_l1", "d_loss"} and np.isfinite(list(losses.values())).all()
        # the generator's gradients as its optimiser used them (the discriminator's also hold the generator step's)
        generator = step.networks["generator"]
        norms[clip] = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in generator.parameters()])))
    assert norms[0.0] > 1e-2  # unclipped, far above the clip
    assert norms[1e-3] <= 1e-3 * 1.001


def test_augment_understands_the_old_argument_order_with_a_warning(run, toy, root):
    out = root / "augmented_old_order"
    result = RUNNER.invoke(app, ["synth", "augment", str(toy), str(run["dir"]), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "warning: synth augment DATASET RUN is deprecated" in result.stderr
    assert "use synth augment RUN DATASET" in result.stderr
    assert json.loads((out / "dataset.json").read_text())["channel_names"]["3"] == "synthetic TOF"
