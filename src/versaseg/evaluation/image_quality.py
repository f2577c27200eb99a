"""Image-quality metrics of a synthetic image against the real one, inside a mask: MAE, PSNR, SSIM.

- MAE = mean |pred - target| over the mask voxels, in the images' units.
- PSNR = 10 log10(data_range^2 / MSE), MSE over the mask voxels (inf when the images agree exactly there).
- SSIM: Wang et al.'s SSIM map (Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03, constants from ``data_range``)
  computed with MONAI's :func:`monai.metrics.regression.compute_ssim_and_cs` and averaged over the mask voxels. Before
  the map is computed both images are set to the same constant ``fill`` outside the mask and edge-padded by half a
  window, so the map has one value per voxel and voxels outside the mask cannot change any of the three numbers.
  ``ssim_axis`` = k computes 2D SSIM slice by slice perpendicular to axis k (as a 2D model sees the volume);
  ``None`` computes the SSIM of the array's own dimensionality (2D or 3D).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SSIM_KERNEL = 11
SSIM_SIGMA = 1.5


def ssim_map(pred: np.ndarray, target: np.ndarray, data_range: float, ssim_axis: int | None = None,
             kernel_size: int = SSIM_KERNEL, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Per-voxel SSIM of two arrays of the same shape (2D or 3D); returns an array of that shape (float64)."""
    from monai.metrics.regression import compute_ssim_and_cs

    x = torch.as_tensor(np.asarray(pred, dtype=np.float64))
    y = torch.as_tensor(np.asarray(target, dtype=np.float64))
    if ssim_axis is not None and x.ndim == 3:
        x, y = x.movedim(ssim_axis, 0)[:, None], y.movedim(ssim_axis, 0)[:, None]  # (N, 1, H, W)
    else:
        x, y = x[None, None], y[None, None]
    spatial_dims = x.ndim - 2
    half = kernel_size // 2
    pad = [half] * (2 * spatial_dims)
    x, y = F.pad(x, pad, mode="replicate"), F.pad(y, pad, mode="replicate")
    ssim, _ = compute_ssim_and_cs(x, y, spatial_dims, [kernel_size] * spatial_dims, [sigma] * spatial_dims,
                                  data_range=float(data_range))
    ssim = ssim[:, 0].double()
    if ssim_axis is not None and np.ndim(pred) == 3:
        return ssim.movedim(0, ssim_axis).numpy()
    return ssim[0].numpy()


def image_quality(pred: np.ndarray, target: np.ndarray, mask: np.ndarray | None, data_range: float,
                  ssim_axis: int | None = None, fill: float | None = None) -> dict[str, float]:
    """MAE, PSNR (dB) and SSIM of ``pred`` against ``target`` inside ``mask`` (module docstring).

    Args:
        pred, target: arrays of one shape (2D or 3D), same intensity units.
        mask: bool array of that shape (None = everywhere); must hold at least one voxel.
        data_range: the intensity range of the units (2 for images scaled to [-1, 1]); sets PSNR's peak and SSIM's
            constants.
        ssim_axis: 2D SSIM slice-wise perpendicular to this axis of a 3D array; None = SSIM in the array's dimension.
        fill: the value both images get outside the mask before SSIM; default the target's minimum inside the mask.
    Returns ``{"mae", "psnr", "ssim"}`` as floats.
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {pred.shape} differs from target shape {target.shape}")
    mask = np.ones(pred.shape, bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != pred.shape:
        raise ValueError(f"mask shape {mask.shape} differs from image shape {pred.shape}")
    if not mask.any():
        raise ValueError("the mask is empty")
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    difference = pred[mask] - target[mask]
    mae = float(np.abs(difference).mean())
    mse = float((difference**2).mean())
    psnr = float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))
    fill = float(target[mask].min()) if fill is None else float(fill)
    ssim = ssim_map(np.where(mask, pred, fill), np.where(mask, target, fill), data_range, ssim_axis)
    return {"mae": mae, "psnr": psnr, "ssim": float(ssim[mask].mean())}
