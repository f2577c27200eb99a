"""U-Net speed versus MONAI: training throughput, whole-volume prediction time and peak memory on this machine.

Compares versaseg's ``unet`` with MONAI's ``UNet`` (the anchor, configured as the brief states) and MONAI's
``DynUNet`` (MONAI's nnU-Net network: the same architecture as ours, so the like-for-like implementation check).
Every configuration runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) is its own. Inside a configuration,
the same pre-generated batches (fixed seed) feed every network; warm-up iterations are not timed. Results go into the
section "## U-Net speed versus MONAI UNet" of ``--out`` (other sections are kept).

    python benchmarks/unet_speed.py --out docs/benchmarks.md           # full run, several minutes on 2 cores
    python benchmarks/unet_speed.py --out /tmp/bench.md --quick        # smoke run, about a minute
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from docs_section import cpu_model, write_section

SECTION = "## U-Net speed versus MONAI UNet"
NETWORKS = {
    "versaseg unet": "versaseg `unet(depth=4, base_width=16, norm='instance', residual=R)`: widths 16, 32, 64, 128;"
    " R makes the encoder blocks residual (the decoder stays plain, as in DynUNet)",
    "MONAI UNet": "MONAI `UNet(channels=(16, 32, 64, 128), strides=(2, 2, 2), num_res_units=2 if R else 0, "
    "norm='instance')` (anchor)",
    "MONAI DynUNet": "MONAI `DynUNet(kernel_size=[3]*4, strides=[1, 2, 2, 2], upsample_kernel_size=[2]*3, "
    "filters=[16, 32, 64, 128], res_block=R)` (same architecture as versaseg unet)",
}
ANCHOR = "MONAI UNet"
OURS = "versaseg unet"
CLASSES = 4
MEMORY_ITERATIONS = 3


# --- one configuration, run inside a worker subprocess ---------------------------------------------------------------


def build(network: str, spatial_dims: int, residual: bool):
    import torch
    from monai.networks.nets import DynUNet, UNet

    from versaseg.networks.registry import build_network

    torch.manual_seed(0)
    if network == OURS:
        return build_network(
            "unet", spatial_dims, 1, CLASSES, depth=4, base_width=16, norm="instance", residual=residual
        )
    if network == ANCHOR:
        return UNet(
            spatial_dims,
            1,
            CLASSES,
            channels=(16, 32, 64, 128),
            strides=(2, 2, 2),
            num_res_units=2 if residual else 0,
            norm="instance",
        )
    if network == "MONAI DynUNet":
        return DynUNet(
            spatial_dims,
            1,
            CLASSES,
            kernel_size=[3] * 4,
            strides=[1, 2, 2, 2],
            upsample_kernel_size=[2] * 3,
            filters=[16, 32, 64, 128],
            res_block=residual,
        )
    raise ValueError(network)


def synthetic_batch(generator, batch: int, spatial: tuple[int, ...]):
    """Image ``(B, 1, *spatial)`` and label ``(B, 1, *spatial)`` in ``0..CLASSES-1``: smooth random regions + noise."""
    import torch
    import torch.nn.functional as F

    coarse = torch.rand(batch, 1, *(max(1, s // 16) for s in spatial), generator=generator)
    field = F.interpolate(coarse, size=spatial, mode="bilinear" if len(spatial) == 2 else "trilinear")
    label = (field * CLASSES).long().clamp_(0, CLASSES - 1)
    image = label.float() + 0.5 * torch.randn(label.shape, generator=generator)
    return image, label


def conv_macs(net, spatial: tuple[int, ...]) -> float:
    """Multiply-accumulates of all convolutions for one sample's forward pass, in GMAC."""
    import torch
    from torch import nn

    total = 0

    def hook(module, inputs, output):
        nonlocal total
        kernel = 1
        for k in module.kernel_size:
            kernel *= k
        if isinstance(module, (nn.ConvTranspose2d, nn.ConvTranspose3d)):
            total += inputs[0][0].numel() * module.out_channels * kernel // module.groups
        else:
            total += output[0].numel() * module.in_channels * kernel // module.groups

    hooks = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    with torch.inference_mode():
        net.eval()(torch.zeros(1, 1, *spatial))
    for h in hooks:
        h.remove()
    return total / 1e9


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def train_setup(cfg: dict, network: str):
    """Network, loss and optimizer for one training configuration."""
    import torch
    from monai.losses import DiceCELoss

    net = build(network, len(cfg["spatial"]), cfg["residual"]).train()
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)  # cross-entropy + soft Dice
    return net, loss_fn, torch.optim.Adam(net.parameters(), lr=1e-3)


def train_step(setup, image, label) -> float:
    """One iteration: zero_grad + forward + loss + backward + step; returns its wall time in seconds."""
    net, loss_fn, optimizer = setup
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(net(image), label)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def train_batches(cfg: dict) -> list:
    import torch

    generator = torch.Generator().manual_seed(0)
    return [synthetic_batch(generator, cfg["batch"], tuple(cfg["spatial"])) for _ in range(cfg["distinct_batches"])]


def run_train_time(cfg: dict) -> dict:
    """Time all networks in one process, interleaving their iterations so they share the machine's load equally."""
    batches = train_batches(cfg)
    setups = {network: train_setup(cfg, network) for network in cfg["networks"]}
    times: dict[str, list[float]] = {network: [] for network in setups}
    for i in range(cfg["warmup"] + cfg["iterations"]):
        image, label = batches[i % len(batches)]
        for network, setup in setups.items():
            elapsed = train_step(setup, image, label)
            if i >= cfg["warmup"]:
                times[network].append(elapsed)
    return {"times": times}


def run_train_memory(cfg: dict) -> dict:
    """Peak RSS of one network's training in this fresh process, over ``MEMORY_ITERATIONS`` iterations (the peak
    settles after two or three: the allocator's pools grow at first), and the network's GMAC per sample."""
    batches = train_batches(cfg)
    setup = train_setup(cfg, cfg["network"])
    setup_rss = maxrss_mib()
    for i in range(MEMORY_ITERATIONS):
        train_step(setup, *batches[i % len(batches)])
    peak = maxrss_mib()
    return {"setup_rss": setup_rss, "peak_rss": peak, "gmac": conv_macs(setup[0], tuple(cfg["spatial"]))}


def predict_volume(cfg: dict):
    import torch

    generator = torch.Generator().manual_seed(0)
    return synthetic_batch(generator, 1, tuple(cfg["volume"]))[0]  # (1, 1, X, Y, Z)


def predict_setup(cfg: dict, network: str):
    """The network in eval mode, after a warm-up forward (excluded from timing) on one batch of the used shape."""
    import torch

    net = build(network, 2 if cfg["mode"] == "2d" else 3, False).eval()
    warm = tuple(cfg["roi"]) if cfg["mode"] == "3d" else tuple(cfg["volume"][1:])
    with torch.inference_mode():
        net(torch.zeros(cfg["batch"], 1, *warm))
    return net


def predict(cfg: dict, net, volume) -> float:
    """Label volume ``(X, Y, Z)`` from logits; returns the wall time in seconds."""
    import torch
    from monai.inferers import sliding_window_inference

    start = time.perf_counter()
    with torch.inference_mode():
        if cfg["mode"] == "2d":  # slices along the first axis, in batches
            slices = volume[0].movedim(1, 0)  # (X, 1, Y, Z)
            step = cfg["batch"]
            labels = torch.cat([net(slices[s : s + step]) for s in range(0, len(slices), step)]).argmax(1)
        else:
            logits = sliding_window_inference(
                volume, roi_size=cfg["roi"], sw_batch_size=cfg["batch"], predictor=net, overlap=0.5, mode="gaussian"
            )
            labels = torch.as_tensor(logits).argmax(1)[0]
    elapsed = time.perf_counter() - start
    if labels.shape != tuple(cfg["volume"]):
        raise RuntimeError(f"prediction has shape {tuple(labels.shape)}, expected {tuple(cfg['volume'])}")
    return elapsed


def run_predict_time(cfg: dict) -> dict:
    """Time all networks in one process, alternating whole-volume predictions between them."""
    volume = predict_volume(cfg)
    nets = {network: predict_setup(cfg, network) for network in cfg["networks"]}
    times: dict[str, list[float]] = {network: [] for network in nets}
    for _ in range(cfg["iterations"]):
        for network, net in nets.items():
            times[network].append(predict(cfg, net, volume))
    return {"times": times}


def run_predict_memory(cfg: dict) -> dict:
    """Peak RSS of one whole-volume prediction in this fresh process."""
    volume = predict_volume(cfg)
    net = predict_setup(cfg, cfg["network"])
    setup_rss = maxrss_mib()
    predict(cfg, net, volume)
    return {"setup_rss": setup_rss, "peak_rss": maxrss_mib()}


def worker(cfg: dict) -> None:
    import torch

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    runners = {
        "train-time": run_train_time,
        "train-memory": run_train_memory,
        "predict-time": run_predict_time,
        "predict-memory": run_predict_memory,
    }
    result = runners[cfg["kind"]](cfg)
    print(json.dumps(result))


# --- the driver: configurations, subprocesses, markdown ------------------------------------------------------------


def task_specs(quick: bool) -> list[dict]:
    """The measured tasks; training ones once per residual setting."""
    residuals = (False,) if quick else (False, True)
    train2d = {
        "kind": "train",
        "task": "train 2D",
        "spatial": (64, 64) if quick else (128, 128),
        "batch": 4 if quick else 16,
        "warmup": 1 if quick else 2,
        "iterations": 2 if quick else 8,
        "distinct_batches": 2 if quick else 4,
    }
    train3d = {
        "kind": "train",
        "task": "train 3D",
        "spatial": (32,) * 3 if quick else (64,) * 3,
        "batch": 1 if quick else 2,
        "warmup": 1,
        "iterations": 1 if quick else 3,
        "distinct_batches": 2,
    }
    volume = (32, 48, 32) if quick else (160, 192, 160)
    pred2d = {
        "kind": "predict",
        "task": "predict 2D",
        "mode": "2d",
        "volume": volume,
        "batch": 16,
        "iterations": 1 if quick else 3,
        "residual": False,
    }
    pred3d = {
        "kind": "predict",
        "task": "predict 3D",
        "mode": "3d",
        "volume": volume,
        "batch": 2,
        "roi": (32,) * 3 if quick else (64,) * 3,
        "iterations": 1 if quick else 2,
        "residual": False,
    }
    trains = [{**spec, "residual": r} for spec in (train2d, train3d) for r in residuals]
    return [*trains, pred2d, pred3d]


def measure(spec: dict, threads: int) -> list[dict]:
    """Rows (one per network) for one task: times, peak RSS, GMAC. Each measurement is a fresh subprocess."""
    base = {**spec, "threads": threads}
    networks = list(NETWORKS) if spec["kind"] == "train" else [OURS, ANCHOR]
    times = run_config({**base, "kind": f"{spec['kind']}-time", "networks": networks})["times"]
    rows = []
    for network in networks:
        memory = run_config({**base, "kind": f"{spec['kind']}-memory", "network": network})
        rows.append({**base, "network": network, "times": times[network], **memory})
    return rows


def run_config(cfg: dict) -> dict:
    """Run one measurement in a fresh Python process; returns its JSON result."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(cfg)], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{cfg['task']} ({cfg['kind']}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine(threads: int) -> str:
    import monai
    import torch

    model = cpu_model()
    threads = threads or torch.get_num_threads()
    return (
        f"{model}, {os.cpu_count()} cores visible, {threads} torch threads, torch {torch.__version__}, "
        f"MONAI {monai.__version__}, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def label(row: dict) -> str:
    if row["kind"] == "train":
        return f"{row['task']} {row['batch']} x {'x'.join(map(str, row['spatial']))}"
    roi = f", roi {'x'.join(map(str, row['roi']))}" if row["mode"] == "3d" else ""
    return f"{row['task']} {'x'.join(map(str, row['volume']))}{roi}"


def growth(row: dict) -> float:
    return row["peak_rss"] - row["setup_rss"]


def render(rows: list[dict], quick: bool, threads: int, started: str, loads: tuple, wall: float) -> str:
    """The markdown section: set-up, one table row per (task, network), then the versaseg/MONAI ratios."""
    lines = [SECTION, ""]
    if quick:
        lines += ["*Smoke run (`--quick`): reduced sizes and iterations; not the reference numbers.*", ""]
    lines += [
        f"Machine: {machine(threads)}. Run {started}, {wall / 60:.1f} min; load average {loads[0]:.2f} before, "
        f"{loads[1]:.2f} after (a shared machine: other jobs ran beside this one, so look at 'best' next to "
        "'median'). Produced by `python benchmarks/unet_speed.py --out docs/benchmarks.md`.",
        "",
        "Networks (depth 4: three 2x downsamplings, widths 16, 32, 64, 128, instance norm; R = residual):",
        "",
        *(f"- {text}" for text in NETWORKS.values()),
        "",
        "Training: 1 input channel, 4 classes, Adam (lr 1e-3), loss = cross-entropy + soft Dice (MONAI `DiceCELoss`);"
        " one iteration = zero_grad + forward + loss + backward + step, on the same pre-generated batches (seed 0)"
        " for every network; warm-up iterations are excluded. The networks of one task are timed in one process with"
        " their iterations interleaved, so they share the machine's load alike; their memory is measured each in a"
        f" fresh subprocess over {MEMORY_ITERATIONS} iterations. Prediction: one synthetic volume, eval mode,"
        " `torch.inference_mode`, logits -> argmax labels; 2D slice-wise in batches of 16 slices along the first"
        " axis; 3D MONAI `sliding_window_inference` (overlap 0.5, Gaussian weights, sw_batch_size 2); after a"
        " warm-up forward, the networks' whole-volume predictions alternate in one process (DynUNet left out: it does"
        " versaseg's work, as the training rows show); memory again in a fresh subprocess per network."
        " 'peak RSS' is the process's `ru_maxrss`; 'Δ RSS' its"
        " growth after data and network were built (the working memory of the run). GMAC = multiply-accumulates of"
        " all convolutions per sample (forward).",
        "",
        "| task | R | network | GMAC/sample | median s/iter | best s/iter | throughput (median) | peak RSS MiB "
        "| Δ RSS MiB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        med, best = statistics.median(row["times"]), min(row["times"])
        if row["kind"] == "train":
            unit = "slices/s" if row["task"].endswith("2D") else "patches/s"
            throughput = f"{row['batch'] / med:.2f} {unit}"
        else:
            throughput = f"{med:.2f} s/volume"
        gmac = f"{row['gmac']:.2f}" if "gmac" in row else ""
        lines.append(
            f"| {label(row)} | {'yes' if row['residual'] else 'no'} | {row['network']} | {gmac} | {med:.3f} "
            f"| {best:.3f} | {throughput} | {row['peak_rss']:.0f} | {growth(row):.0f} |"
        )
    lines += [
        "",
        "Why MONAI UNet is the cheaper network at the same widths: its first convolution is strided, so its 16-wide"
        " level already works at half resolution and no convolution runs at full resolution except the final 3x3"
        " transposed conv; versaseg `unet` (like nnU-Net and MONAI's DynUNet) keeps a full-resolution level with"
        " two 3x3 convs in the encoder and two after the last skip concatenation. That level dominates the cost"
        " (the GMAC column); DynUNet, which does the same work, is the like-for-like check of the implementation.",
        "",
        "Ratios of versaseg `unet` to each MONAI network (speed = its time / versaseg's time from the medians, > 1:"
        " versaseg faster; memory = versaseg's Δ RSS / its Δ RSS, < 1: versaseg leaner; GMAC = versaseg's / its):",
        "",
        "| task | R | versus | speed ratio | speed ratio (best) | memory ratio | GMAC ratio |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    by_key = {(r["task"], r["residual"], r["network"]): r for r in rows}
    for row in rows:
        if row["network"] == OURS:
            continue
        ours = by_key[(row["task"], row["residual"], OURS)]
        speed = statistics.median(row["times"]) / statistics.median(ours["times"])
        speed_best = min(row["times"]) / min(ours["times"])
        memory = growth(ours) / growth(row) if growth(row) > 0 else float("nan")
        gmac = f"{ours['gmac'] / row['gmac']:.1f}" if "gmac" in row else ""
        lines.append(
            f"| {label(row)} | {'yes' if row['residual'] else 'no'} | {row['network']} | {speed:.2f} "
            f"| {speed_best:.2f} | {memory:.2f} | {gmac} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks.md"), help="markdown file to update")
    parser.add_argument("--quick", action="store_true", help="smoke run with small sizes and few iterations")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: torch's default)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    started = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    rows = []
    for spec in task_specs(args.quick):
        for row in measure(spec, args.threads):
            rows.append(row)
            times = row["times"]
            print(
                f"{label(row):<36} R={row['residual']!s:<5} {row['network']:<14} "
                f"median {statistics.median(times):8.3f} s  best {min(times):8.3f} s  "
                f"peak RSS {row['peak_rss']:6.0f} MiB",
                flush=True,
            )
    wall = time.perf_counter() - t0
    write_section(args.out, SECTION,
                  render(rows, args.quick, args.threads, started, (load_before, os.getloadavg()[0]), wall))
    print(f"wrote {SECTION!r} to {args.out}")


if __name__ == "__main__":
    main()
