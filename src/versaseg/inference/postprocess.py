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
