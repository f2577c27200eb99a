"""Label post-processing."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage


def keep_largest_component(labels: np.ndarray, classes: Iterable[int]) -> np.ndarray:
    """For each class in ``classes``, keep only its largest 26-connected component; the rest becomes background.

    labels: (X, Y, Z) int. Returns a new array.
    """
    out = labels.copy()
    structure = np.ones((3,) * labels.ndim, bool)
    for value in classes:
        components, count = ndimage.label(labels == value, structure=structure)
        if count <= 1:
            continue
        sizes = np.bincount(components.ravel())[1:]
        out[(components > 0) & (components != 1 + int(np.argmax(sizes)))] = 0
    return out


def select_components(mask: np.ndarray, rule: str, major_fraction: float = 0.1) -> np.ndarray:
    """The 26-connected components of ``mask`` (X, Y, Z) bool that ``rule`` keeps: ``"all"``, ``"largest"`` or
    ``"major"`` (those of at least ``major_fraction`` of the largest one's voxels). Returns (X, Y, Z) bool."""
    if rule == "all" or not mask.any():
        return mask
    components, _ = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.bincount(components.ravel())[1:]
    if rule == "largest":
        keep = [int(np.argmax(sizes)) + 1]
    else:
        keep = [i + 1 for i, size in enumerate(sizes) if size >= major_fraction * sizes.max()]
    return np.isin(components, keep)
