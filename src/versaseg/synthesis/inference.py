"""Whole-volume synthesis with a generator, in scaled [-1, 1] units: 2D slice-wise in batches, 3D sliding window."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from versaseg.synthesis.data import FILL

SLICES_PER_PASS = 16


def inference_batch_size(dim: str, batch_size: int) -> int:
    """Slices per forward pass in 2D (at least :data:`SLICES_PER_PASS`); windows per pass in 3D (the batch size)."""
    return max(batch_size, 1) if dim == "3d" else max(batch_size, SLICES_PER_PASS)


def pad_to_multiple(x: torch.Tensor, divisor: int, minimum: Sequence[int] = (), value: float = FILL) -> torch.Tensor:
    """Pad the trailing spatial dims of ``x`` (B, C, *spatial) with ``value`` up to a multiple of ``divisor`` (and at
    least ``minimum``); the original content stays at index 0 of every axis."""
    spatial = list(x.shape[2:])
    minimum = list(minimum) or [0] * len(spatial)
    pad: list[int] = []
    for s, m in zip(reversed(spatial), reversed(minimum), strict=True):
        pad += [0, max(-(-s // divisor) * divisor, m) - s]
    return F.pad(x, pad, value=value) if any(pad) else x


@torch.no_grad()
def synthesize_scaled(generator: torch.nn.Module, source: np.ndarray, dim: str, axis: int,
                      patch_size: Sequence[int], batch_size: int = 8, device: torch.device | str = "cpu",
                      overlap: float = 0.5) -> np.ndarray:
    """The generator's output for a whole scaled source volume.

    source: (X, Y, Z) float32 in [-1, 1], canonical orientation. Returns (X, Y, Z) float32 in [-1, 1].
    2D: every slice perpendicular to ``axis`` is padded (with the darkest value) to the generator's divisor and
    synthesised, ``batch_size`` slices at a time. 3D: MONAI ``sliding_window_inference`` with ``patch_size`` windows,
    ``overlap`` and Gaussian blending.
    """
    generator.eval()
    divisor = int(getattr(generator, "required_divisor", 1))
    device = torch.device(device)
    image = torch.from_numpy(np.ascontiguousarray(source, dtype=np.float32))
    shape = tuple(image.shape)
    if dim == "2d":
        slices = image.movedim(axis, 0)[:, None]  # (N, 1, H, W)
        outputs = []
        for start in range(0, slices.shape[0], batch_size):
            batch = pad_to_multiple(slices[start:start + batch_size].to(device), divisor)
            outputs.append(generator(batch)[:, 0, : slices.shape[2], : slices.shape[3]].float().cpu())
        return torch.cat(outputs).movedim(0, axis).contiguous().numpy()
    from monai.inferers import sliding_window_inference

    x = pad_to_multiple(image[None, None].to(device), divisor, minimum=patch_size)
    out = sliding_window_inference(x, roi_size=list(patch_size), sw_batch_size=batch_size, predictor=generator,
                                   overlap=overlap, mode="gaussian", padding_mode="constant", cval=FILL)
    out = torch.as_tensor(out)[0, 0, : shape[0], : shape[1], : shape[2]]
    return out.float().cpu().contiguous().numpy()
