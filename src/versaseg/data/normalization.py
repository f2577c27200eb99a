"""Per-channel intensity normalisation, fitted on the training set and recorded in the run's config.

Schemes (one per channel):
- ``zscore``: per image, (x - mean) / std over the whole volume (MR; nnU-Net's default for non-CT channels).
- ``ct``: clip to the training foreground's 0.5/99.5 percentiles, then (x - mean) / std of that foreground;
  the four numbers are fitted once and stored, so CT Hounsfield units keep their meaning across cases.
- ``none``: leave intensities as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from versaseg.errors import InputError

SCHEMES = ("zscore", "ct", "none")


def default_scheme(channel_name: str) -> str:
    """``ct`` for channels named CT (as nnU-Net does), ``zscore`` otherwise."""
    return "ct" if channel_name.strip().upper() == "CT" else "zscore"


def fit_normalization(
    images: Sequence[np.ndarray], labels: Sequence[np.ndarray], channel_names: Sequence[str], ignore_label: int | None
) -> list[dict]:
    """Fit one scheme per channel. images: (C, X, Y, Z) arrays; labels: (X, Y, Z) arrays. Returns JSON-able dicts."""
    params = []
    for channel, name in enumerate(channel_names):
        scheme = default_scheme(name)
        entry: dict = {"channel": name, "scheme": scheme}
        if scheme == "ct":
            samples = []
            for image, label in zip(images, labels, strict=True):
                fg = (label > 0) if ignore_label is None else (label > 0) & (label != ignore_label)
                values = image[channel][fg]
                samples.append(values[:: max(1, values.size // 100_000)])
            values = np.concatenate(samples) if samples else np.zeros(1)
            if values.size == 0:
                values = np.concatenate([img[channel].ravel() for img in images])
            lower, upper = np.percentile(values, [0.5, 99.5])
            clipped = np.clip(values, lower, upper)
            entry.update(lower=float(lower), upper=float(upper), mean=float(clipped.mean()),
                         std=float(max(clipped.std(), 1e-8)))
        params.append(entry)
    return params


def normalize(image: np.ndarray, params: Sequence[dict]) -> np.ndarray:
    """Apply fitted schemes. image: (C, *spatial) -> float32 (C, *spatial)."""
    if image.shape[0] != len(params):
        raise InputError(f"image has {image.shape[0]} channels, the model expects {len(params)}")
    out = np.empty(image.shape, dtype=np.float32)
    for channel, entry in enumerate(params):
        data = image[channel].astype(np.float32)
        scheme = entry["scheme"]
        if scheme == "zscore":
            data = (data - data.mean()) / max(float(data.std()), 1e-8)
        elif scheme == "ct":
            data = (np.clip(data, entry["lower"], entry["upper"]) - entry["mean"]) / entry["std"]
        elif scheme != "none":
            raise InputError(f"unknown normalisation scheme '{scheme}'; valid: {', '.join(SCHEMES)}")
        out[channel] = data
    return out
