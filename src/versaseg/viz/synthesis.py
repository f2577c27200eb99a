"""Figures of a synthesis run: ``samples/epoch_NNN.png`` rows of (source | synthetic | real) slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from versaseg.data.pairs import PairedVolume

SAMPLE_SLICES = 3


def write_sample_png(path: Path, volume: PairedVolume, synthetic: np.ndarray, axis: int, title: str = "",
                     slices: int = SAMPLE_SLICES) -> Path:
    """A PNG with one row per slice (evenly spaced through the brain mask along ``axis``) and three columns:
    source | synthetic | real, all in scaled units shown on [-1, 1]."""
    from matplotlib.figure import Figure

    from versaseg.viz.overlays import save_figure, slice_positions

    positions = slice_positions(volume.mask, axis, slices)
    plane_shape = [s for a, s in enumerate(volume.source.shape) if a != axis]
    ratio = plane_shape[1] / plane_shape[0]
    panel = 2.2
    fig = Figure(figsize=(3 * panel, len(positions) * panel * ratio + 0.5))
    for row, position in enumerate(positions):
        for column, (name, array) in enumerate((("source", volume.source), ("synthetic", synthetic),
                                                ("real", volume.target))):
            ax = fig.add_subplot(len(positions), 3, row * 3 + column + 1)
            ax.imshow(np.take(array, position, axis=axis).T, cmap="gray", vmin=-1, vmax=1, origin="lower",
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
            if column == 0:
                ax.set_ylabel(f"{'xyz'[axis]}={position}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)
