"""Per-voxel image features for a voxel classifier: multi-scale 3D filters of each image channel (ilastik-style).

A voxel classifier (:mod:`versaseg.training.voxel`) sees the image only through these features, so they carry the
through-plane context a 2D network lacks: every filter is 3D, with sigmas in mm (anisotropic voxels are handled).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

SMOOTHING_MM = (1.5, 3.0, 6.0)  # Gaussian smoothing scales
GRADIENT_MM = (1.5, 3.0)  # gradient-magnitude scales
LAPLACE_MM = 3.0  # Laplacian-of-Gaussian scale (blob/ridge contrast)


def features_per_channel() -> int:
    """Number of feature maps :func:`image_features` makes from one image channel."""
    return 1 + len(SMOOTHING_MM) + len(GRADIENT_MM) + 1


def image_features(image: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Multi-scale features of a normalised image.

    Args:
        image: (C, X, Y, Z) float image (normalised channels).
        spacing: (3,) voxel size in mm of the spatial axes.

    Returns:
        (C * features_per_channel(), X, Y, Z) float32: per channel the intensity, its Gaussian smoothings
        (``SMOOTHING_MM``), gradient magnitudes (``GRADIENT_MM``) and a Laplacian of Gaussian (``LAPLACE_MM``).
    """
    spacing = np.asarray(spacing, dtype=float)
    out = np.empty((image.shape[0] * features_per_channel(), *image.shape[1:]), np.float32)
    i = 0
    for channel in image.astype(np.float32, copy=False):
        maps = [channel]
        maps += [ndimage.gaussian_filter(channel, s / spacing) for s in SMOOTHING_MM]
        maps += [ndimage.gaussian_gradient_magnitude(channel, s / spacing) for s in GRADIENT_MM]
        maps.append(ndimage.gaussian_laplace(channel, LAPLACE_MM / spacing))
        for m in maps:
            out[i] = m
            i += 1
    return out
