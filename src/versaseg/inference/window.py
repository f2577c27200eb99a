"""Whole-volume inference: slice-wise for 2D networks, MONAI sliding window with Gaussian blending for 3D.

Both return class probabilities (K, X, Y, Z); optional flip test-time augmentation averages over all flips of the
network's spatial axes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _pad_to_multiple(x: torch.Tensor, divisor: int, minimum: Sequence[int] = ()) -> tuple[torch.Tensor, list[slice]]:
    """Zero-pad the spatial dims of x (B, C, *spatial) up to a multiple of ``divisor`` (and at least ``minimum``),
    centred as the training sampler centres a case smaller than its patch
    (:func:`versaseg.data.sampling.patch_start`), so the network sees borders where it learned them. Returns the
    padded tensor and the slices that crop its output back to ``spatial``."""
    spatial = list(x.shape[2:])
    target = [max(-(-s // divisor) * divisor, m) for s, m in zip(spatial, list(minimum) or [0] * len(spatial),
                                                                     strict=True)]
    before = [(t - s) // 2 for s, t in zip(spatial, target, strict=True)]
    pad = []
    for s, t, b in zip(reversed(spatial), reversed(target), reversed(before), strict=True):
        pad += [b, t - s - b]
    crop = [slice(b, b + s) for s, b in zip(spatial, before, strict=True)]
    return (F.pad(x, pad) if any(pad) else x), crop


def _flip_sets(spatial_dims: int) -> list[tuple[int, ...]]:
    axes = [d + 2 for d in range(spatial_dims)]
    return [combo for r in range(spatial_dims + 1) for combo in itertools.combinations(axes, r)]


def _softmax_with_tta(network: torch.nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
    flips = _flip_sets(x.ndim - 2) if tta else [()]
    total = None
    for axes in flips:
        xi = torch.flip(x, axes) if axes else x
        probs = network(xi).softmax(1)
        probs = torch.flip(probs, axes) if axes else probs
        total = probs if total is None else total + probs
    return total / len(flips)


@torch.no_grad()
def predict_probabilities(network: torch.nn.Module, image: torch.Tensor, dim: str, axis: int,
                          patch_size: Sequence[int], batch_size: int = 8, tta: bool = False,
                          device: torch.device | str = "cpu", overlap: float = 0.5) -> torch.Tensor:
    """Class probabilities for one normalised volume.

    image: (C, X, Y, Z) float32 (CPU). Returns (K, X, Y, Z) float32 on the CPU.
    2D: every slice perpendicular to ``axis`` is padded (centred) to at least ``patch_size`` and the network's divisor,
    as in training, and predicted in batches.
    3D: MONAI ``sliding_window_inference`` with ``patch_size`` windows, ``overlap`` and Gaussian importance weights.
    """
    network.eval()
    divisor = int(getattr(network, "required_divisor", 1))
    device = torch.device(device)
    if dim == "2d":
        slices = image.movedim(axis + 1, 0)  # (N, C, H, W)
        outputs = []
        for start in range(0, slices.shape[0], batch_size):
            batch, crop = _pad_to_multiple(slices[start:start + batch_size].to(device), divisor, patch_size)
            probs = _softmax_with_tta(network, batch, tta)[(..., *crop)]
            outputs.append(probs.float().cpu())
        return torch.cat(outputs).movedim(0, axis + 1).contiguous()  # (K, X, Y, Z)
    from monai.inferers import sliding_window_inference

    x = image[None].to(device)
    x, crop = _pad_to_multiple(x, divisor)
    probs = sliding_window_inference(
        x, roi_size=list(patch_size), sw_batch_size=batch_size,
        predictor=lambda patch: _softmax_with_tta(network, patch, tta),
        overlap=overlap, mode="gaussian", padding_mode="constant",
    )
    probs = torch.as_tensor(probs)[(0, slice(None), *crop)]
    return probs.float().cpu().contiguous()
