"""Training augmentation from MONAI's dictionary transforms (keys image, label, mask and, when the loss needs it,
distance; channel-first arrays).

Levels: ``none``; ``light`` (flips, intensity); ``default`` (flips, affine, elastic, bias field, gamma, noise).
Label and mask use nearest-neighbour interpolation and zero padding, so voxels pulled in from outside the patch
count as unannotated. The distance maps move with the label under every spatial transform (bilinear, zero padding:
outside voxels are unannotated, so their value never counts); intensity transforms touch only the image. A zoom
moves the distance values with the label but does not rescale them (a scaling of at most 15%).
"""

from __future__ import annotations

import math

from versaseg.errors import InputError

LEVELS = ("none", "light", "default")


def build_augmentation(level: str, dim: int):
    """A MONAI ``Compose`` for ``dim`` (2 or 3) spatial dims, or None for level 'none'."""
    if level not in LEVELS:
        raise InputError(f"unknown augmentation '{level}'; valid: {', '.join(LEVELS)}")
    if level == "none":
        return None
    from monai.data import set_track_meta
    from monai.transforms import (
        Compose,
        Rand2DElasticd,
        Rand3DElasticd,
        RandAdjustContrastd,
        RandAffined,
        RandBiasFieldd,
        RandFlipd,
        RandGaussianNoised,
    )

    set_track_meta(False)
    keys = ("image", "label", "mask", "distance")  # distance only present for the distance-based losses
    modes = ("bilinear", "nearest", "nearest", "bilinear")
    spatial = {"allow_missing_keys": True}
    transforms = [RandFlipd(keys, prob=0.5, spatial_axis=axis, **spatial) for axis in range(dim)]
    if level == "default":
        angle = math.radians(15)
        transforms.append(RandAffined(
            keys, prob=0.3, rotate_range=(angle,) if dim == 2 else (angle, angle, angle),
            scale_range=(0.15,) * dim, mode=modes, padding_mode="zeros", **spatial,
        ))
        if dim == 2:
            transforms.append(Rand2DElasticd(keys, spacing=(16, 16), magnitude_range=(1, 3), prob=0.1,
                                             mode=modes, padding_mode="zeros", **spatial))
        else:
            transforms.append(Rand3DElasticd(keys, sigma_range=(5, 7), magnitude_range=(20, 50), prob=0.05,
                                             mode=modes, padding_mode="zeros", **spatial))
        transforms.append(RandBiasFieldd("image", coeff_range=(0.0, 0.15), prob=0.15))
    transforms += [
        RandAdjustContrastd("image", gamma=(0.7, 1.5), prob=0.3),
        RandGaussianNoised("image", std=0.1, prob=0.15),
    ]
    return Compose(transforms)
