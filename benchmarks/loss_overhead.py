"""Training overhead of the distance-based losses: ``ce`` versus ``ce_dtm`` and ``ce_dpt`` on this machine.

A 2D U-Net (versaseg ``unet``, default widths) trains on 128x128 axial slices of phantom brains (5 classes,
two channels), batch 16, default augmentation, through the real ``Trainer`` (sampling, cropping, MONAI augmentation,
forward, loss, backward, step). The distance maps are computed once per case before training and timed separately.
The losses run one after another in interleaved rounds (so they share the machine's load alike); each round times
``--iterations`` iterations after ``--warmup`` untimed ones, and the table gives the median round.

    python benchmarks/loss_overhead.py --docs docs/benchmarks.md             # full run (minutes on 2 cores)
    python benchmarks/loss_overhead.py --iterations 2 --docs /tmp/bench.md   # smoke run
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import time
from pathlib import Path

from docs_section import cpu_model, write_section

SECTION = "## Loss overhead"
BASELINE = "ce"


def make_volumes(cases: int, shape: tuple[int, int, int], spacing: tuple[float, float, float]):
    import numpy as np

    from versaseg.data.sampling import TrainingVolume
    from versaseg.data.synthetic.phantom import CHANNELS, LABELS, make_phantom

    volumes = []
    rng = np.random.default_rng(0)
    for index in range(cases):
        channels, label = make_phantom(shape, spacing, seed=index)
        image = np.stack([channels[name] for name in CHANNELS]).astype(np.float32)
        image = (image - image.mean((1, 2, 3), keepdims=True)) / image.std((1, 2, 3), keepdims=True)
        volumes.append(TrainingVolume.from_arrays(f"phantom_{index}", image, label.astype(np.int16), None, rng,
                                                  spacing=spacing))
    return volumes, len(LABELS), len(CHANNELS)


def time_round(loss: str, volumes, classes: int, channels: int, args) -> float:
    """Seconds per training iteration of ``loss``, over ``args.iterations`` iterations after the warm-up."""
    import torch
    from tqdm import tqdm

    from versaseg.networks.registry import build_network
    from versaseg.training.config import TrainConfig
    from versaseg.training.steps import segmentation_trainer

    labels = {f"class_{k}": k for k in range(classes)}
    config = TrainConfig(loss=loss, dim="2d", axis=2, patch_size=[args.size, args.size], batch_size=args.batch,
                         epochs=2, iterations_per_epoch=args.warmup, labels=labels, augmentation="default", seed=0)
    config.validate()
    torch.manual_seed(0)
    network = build_network("unet", 2, channels, classes)
    trainer = segmentation_trainer(config, network, volumes, torch.device("cpu"))
    bar = tqdm(disable=True)
    trainer.train_epoch(0, bar)
    config.iterations_per_epoch = args.iterations
    return trainer.train_epoch(1, bar)["seconds"] / args.iterations


def run(args) -> dict:
    import torch

    from versaseg.data.distance import signed_distance_maps

    if args.threads:
        torch.set_num_threads(args.threads)
    shape = (args.size, args.size, args.slices)
    volumes, classes, channels = make_volumes(args.cases, shape, tuple(args.spacing))
    precompute = []
    for volume in volumes:  # what Trainer does once per case for the distance losses, timed here on its own
        start = time.perf_counter()
        volume.distance = signed_distance_maps(volume.label, classes, volume.spacing, None, plane_axis=2)
        volume.distance_key = (classes, 2)
        precompute.append(time.perf_counter() - start)
    times: dict[str, list[float]] = {loss: [] for loss in args.losses}
    for _ in range(args.rounds):
        for loss in args.losses:
            times[loss].append(time_round(loss, volumes, classes, channels, args))
    return {"shape": shape, "classes": classes, "precompute": precompute, "times": times,
            "threads": torch.get_num_threads()}


def section(result: dict, args) -> str:
    median = {loss: statistics.median(t) for loss, t in result["times"].items()}
    base = median.get(BASELINE)
    x, y, z = result["shape"]
    lines = [
        SECTION,
        "",
        f"Produced by `benchmarks/loss_overhead.py` on {datetime.date.today()}: {cpu_model()}, "
        f"{result['threads']} torch thread(s), CPU. 2D `unet` (default widths), {args.size}x{args.size} slices, "
        f"batch {args.batch}, default augmentation, {args.cases} phantom cases of {x}x{y}x{z} voxels "
        f"({result['classes']} classes). Per loss: median over {args.rounds} interleaved rounds of "
        f"{args.iterations} timed iterations (after {args.warmup} untimed).",
        "",
        "| loss | s / iteration | vs `ce` |",
        "|---|---:|---:|",
    ]
    for loss, seconds in median.items():
        ratio = f"{seconds / base:.3f}" if base else "-"
        lines.append(f"| `{loss}` | {seconds:.3f} | {ratio} |")
    per_case = statistics.mean(result["precompute"])
    lines += [
        "",
        f"Distance maps (in-plane, {result['classes']} classes, once per case before training): "
        f"{per_case:.2f} s per case of {x}x{y}x{z} voxels; no cost for the losses that do not use them.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per loss and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations before each timed run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the losses")
    parser.add_argument("--losses", type=lambda s: s.split(","), default=["ce", "ce_dtm", "ce_dpt"])
    parser.add_argument("--size", type=int, default=128, help="slice size (the phantom's X and Y)")
    parser.add_argument("--slices", type=int, default=48, help="phantom slices along Z")
    parser.add_argument("--spacing", type=lambda s: [float(v) for v in s.split(",")], default=[1.5, 1.5, 2.0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--cases", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--docs", type=Path, help="markdown file whose '## Loss overhead' section to write")
    args = parser.parse_args(argv)
    result = run(args)
    text = section(result, args)
    print(text)
    if args.docs is not None:
        write_section(args.docs, SECTION, text)


if __name__ == "__main__":
    main()
