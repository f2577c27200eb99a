"""Whole-volume inference with any network: slice-wise for 2D networks, MONAI sliding window with Gaussian blending
for 3D. The one function :func:`predict_volume` serves segmentation (class probabilities) and synthesis (an image).

Inputs are padded (with ``fill``) the way the training samplers pad a case smaller than their patch: centred
(:func:`versaseg.data.sampling.patch_start`), up to at least the patch and a multiple of the network's
``required_divisor``. Optional flip test-time augmentation averages over all flips of the network's spatial axes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F

OUTPUTS = ("probabilities", "image")
SLICES_PER_PASS = 16


def inference_batch_size(dim: str, batch_size: int) -> int:
    """Slices per forward pass in 2D (at least :data:`SLICES_PER_PASS`); windows per pass in 3D (the batch size)."""
    return max(batch_size, 1) if dim == "3d" else max(batch_size, SLICES_PER_PASS)


def pad_to_multiple(x: torch.Tensor, divisor: int, minimum: Sequence[int] = (),
                    value: float = 0.0) -> tuple[torch.Tensor, list[slice]]:
    """Pad the spatial dims of x (B, C, *spatial) with ``value`` up to a multiple of ``divisor`` (and at least
    ``minimum``), centred as the training sampler centres a case smaller than its patch, so the network sees borders
    where it learned them. Returns the padded tensor and the slices that crop its output back to ``spatial``."""
    spatial = list(x.shape[2:])
    target = [max(-(-s // divisor) * divisor, m) for s, m in zip(spatial, list(minimum) or [0] * len(spatial),
                                                                     strict=True)]
    before = [(t - s) // 2 for s, t in zip(spatial, target, strict=True)]
    pad = []
    for s, t, b in zip(reversed(spatial), reversed(target), reversed(before), strict=True):
        pad += [b, t - s - b]
    crop = [slice(b, b + s) for s, b in zip(spatial, before, strict=True)]
    return (F.pad(x, pad, value=value) if any(pad) else x), crop


def _flip_sets(spatial_dims: int) -> list[tuple[int, ...]]:
    axes = [d + 2 for d in range(spatial_dims)]
    return [combo for r in range(spatial_dims + 1) for combo in itertools.combinations(axes, r)]


def _forward(network: torch.nn.Module, x: torch.Tensor, output: str, tta: bool) -> torch.Tensor:
    """The network's output for x (B, C, *spatial): softmax probabilities or the raw image, flip-averaged if tta."""
    flips = _flip_sets(x.ndim - 2) if tta else [()]
    total = None
    for axes in flips:
        y = network(torch.flip(x, axes) if axes else x)
        y = y.softmax(1) if output == "probabilities" else y
        y = torch.flip(y, axes) if axes else y
        total = y if total is None else total + y
    return total / len(flips)


@torch.no_grad()
def predict_volume(network: torch.nn.Module, image: torch.Tensor, dim: str, axis: int, patch_size: Sequence[int],
                   batch_size: int = 8, tta: bool = False, device: torch.device | str = "cpu",
                   overlap: float = 0.5, output: str = "probabilities", fill: float = 0.0) -> torch.Tensor:
    """The network's output for one preprocessed volume.

    image: (C, X, Y, Z) float32 (CPU), canonical orientation. Returns (K, X, Y, Z) float32 on the CPU: class
    probabilities (``output="probabilities"``, softmax over the network's K channels) or the network's own output
    (``output="image"``, e.g. a generator's synthetic image). ``fill`` is the padding value (the value of "nothing"
    in the network's input units: 0 for normalised images, -1 for images scaled to [-1, 1]).
    2D: every slice perpendicular to ``axis`` is padded (centred) to at least ``patch_size`` and the network's
    divisor, as in training, and predicted ``batch_size`` slices at a time.
    3D: MONAI ``sliding_window_inference`` with ``patch_size`` windows, ``overlap`` and Gaussian importance weights.
    """
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; valid: {OUTPUTS}")
    network.eval()
    divisor = int(getattr(network, "required_divisor", 1))
    device = torch.device(device)
    image = torch.as_tensor(image, dtype=torch.float32)
    if dim == "2d":
        slices = image.movedim(axis + 1, 0)  # (N, C, H, W)
        outputs = []
        for start in range(0, slices.shape[0], batch_size):
            batch, crop = pad_to_multiple(slices[start:start + batch_size].to(device), divisor, patch_size, fill)
            outputs.append(_forward(network, batch, output, tta)[(..., *crop)].float().cpu())
        return torch.cat(outputs).movedim(0, axis + 1).contiguous()  # (K, X, Y, Z)
    from monai.inferers import sliding_window_inference

    x, crop = pad_to_multiple(image[None].to(device), divisor, patch_size, fill)
    result = sliding_window_inference(
        x, roi_size=list(patch_size), sw_batch_size=batch_size,
        predictor=lambda patch: _forward(network, patch, output, tta),
        overlap=overlap, mode="gaussian", padding_mode="constant", cval=fill,
    )
    return torch.as_tensor(result)[(0, slice(None), *crop)].float().cpu().contiguous()
