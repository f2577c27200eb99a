"""The figures of ``versaseg explain``: feature-map grids, image overlays, and the network across training.

Slices are ``(A, B)`` arrays in canonical order, drawn with A horizontal and B vertical; ``aspect`` is the height of
one voxel over its width (B spacing / A spacing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from versaseg.viz.explain import Layer, top_channels
from versaseg.viz.overlays import class_legend, label_colormap, save_figure


def show_plane(ax, plane: np.ndarray, aspect: float, **kwargs) -> None:
    """Draw a 2D slice (A, B) with A horizontal and B vertical (as the overlays do for canonical arrays)."""
    ax.imshow(np.asarray(plane).T, origin="lower", aspect=aspect, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])


def intensity_window(image: np.ndarray) -> tuple[float, float]:
    """Display range of a slice (A, B): its 0.5 and 99.5 percentiles (a unit range when they coincide)."""
    low, high = (float(v) for v in np.percentile(image, (0.5, 99.5)))
    return (low, high) if high > low else (low, low + 1.0)


def feature_grid(feature_map: np.ndarray, out_png, title: str, max_channels: int = 16,
                 channel_names: Sequence[str] | None = None, aspect: float = 1.0, columns: int = 4,
                 by_variance: bool = True) -> list[int]:
    """Save up to ``max_channels`` channels of ``feature_map (C, A, B)`` (largest variance first, or in channel order
    with ``by_variance=False``; each with its own colour scale) as a PNG grid; returns the channel indices shown."""
    shown = top_channels(feature_map, max_channels) if by_variance else list(range(min(max_channels,
                                                                                       feature_map.shape[0])))
    columns = max(1, min(columns, len(shown)))
    rows = -(-len(shown) // columns)
    a, b = feature_map.shape[1:]
    panel = 1.9
    ratio = b * aspect / a
    fig = Figure(figsize=(panel * columns, panel * ratio * rows + 0.6))
    grid = fig.add_gridspec(rows, columns, wspace=0.04, hspace=0.18, top=1 - 0.5 / (panel * ratio * rows + 0.6),
                            bottom=0.02, left=0.02, right=0.98)
    for k, channel in enumerate(shown):
        ax = fig.add_subplot(grid[k // columns, k % columns])
        show_plane(ax, feature_map[channel], aspect, cmap="viridis")
        name = channel_names[channel] if channel_names else f"ch {channel}"
        ax.set_title(name, fontsize=7, pad=2)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, out_png)
    return shown


HEAT_LABEL = "Grad-CAM: 0 = no contribution, 1 = most"


def overlay_figure(image: np.ndarray, out_png, title: str, panels: Sequence[tuple[str, np.ndarray | None, str]],
                   aspect: float = 1.0, class_count: int = 2, class_names: Sequence[str] | None = None) -> None:
    """One row of panels over a grey ``image (A, B)``: ``(title, overlay (A, B) or None, kind)`` with kind 'labels'
    (colour fill), 'heat' (a [0, 1] map in 'jet', half transparent, with a colour bar) or 'none'. ``class_names``
    (background first) adds a legend of the label colours."""
    vmin, vmax = intensity_window(image)
    colours = label_colormap(max(class_count, len(class_names or ()), 2))
    legend = (0.35 if class_names else 0.0) + (0.4 if any(kind == "heat" for _, _, kind in panels) else 0.0)
    height = 2.6 * image.shape[1] * aspect / image.shape[0] + 0.5 + legend
    fig = Figure(figsize=(2.6 * len(panels), height))
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.02 + legend / height, top=1 - 0.4 / height, wspace=0.05)
    for k, (name, overlay, kind) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        show_plane(ax, image, aspect, cmap="gray", vmin=vmin, vmax=vmax)
        if overlay is not None and kind == "labels":
            rgba = colours[np.clip(overlay, 0, len(colours) - 1).astype(int)]
            rgba[..., 3] *= 0.5
            ax.imshow(np.transpose(rgba, (1, 0, 2)), origin="lower", aspect=aspect, interpolation="nearest")
        elif overlay is not None and kind == "heat":
            show_plane(ax, overlay, aspect, cmap="jet", alpha=0.45, vmin=0.0, vmax=1.0)
            bar = fig.colorbar(ax.images[-1], ax=ax, orientation="horizontal", fraction=0.05, pad=0.02, aspect=30)
            bar.set_alpha(1.0)
            bar.set_label(HEAT_LABEL, fontsize=7)
            bar.ax.tick_params(labelsize=6)
        ax.set_title(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    if class_names:
        class_legend(fig, dict(enumerate(class_names)), colours, fontsize=7)
    save_figure(fig, out_png)


def timeline_figure(frames: Sequence[tuple], out_png: Path, layer: Layer, channels: int, cam_name: str | None,
                    aspect: float, class_names: Sequence[str], image: np.ndarray) -> None:
    """One row per saved epoch: ``channels`` channels of ``layer``, the prediction over ``image (A, B)`` and, with
    ``cam_name``, the Grad-CAM map. ``frames``: ``(epoch, feature (C, A, B), labels (A, B), cam (A, B) or None)``;
    the channels shown are those that vary most in the last frame, the same in every row."""
    shown = top_channels(frames[-1][1], channels)
    columns = len(shown) + 1 + (cam_name is not None)
    a, b = frames[-1][1].shape[1:]
    panel = 1.5
    ratio = b * aspect / a
    height = panel * ratio * len(frames) + 1.1
    fig = Figure(figsize=(panel * columns + 0.6, height))
    grid = fig.add_gridspec(len(frames), columns, wspace=0.04, hspace=0.08, left=0.6 / (panel * columns + 0.6),
                            right=0.99, bottom=0.4 / height, top=1 - 0.6 / height)
    colours = label_colormap(max(len(class_names), 2))
    for row, (epoch, feature, pred, cam_map) in enumerate(frames):
        for col, channel in enumerate(shown):
            ax = fig.add_subplot(grid[row, col])
            show_plane(ax, feature[channel], aspect, cmap="viridis")
            if row == 0:
                ax.set_title(f"ch {channel}", fontsize=7)
            if col == 0:
                ax.set_ylabel(f"epoch {epoch}", fontsize=7)
        ax = fig.add_subplot(grid[row, len(shown)])
        low, high = intensity_window(image)
        show_plane(ax, image, aspect, cmap="gray", vmin=low, vmax=high)
        rgba = colours[np.clip(pred, 0, len(colours) - 1)]
        rgba[..., 3] *= 0.6
        ax.imshow(np.transpose(rgba, (1, 0, 2)), origin="lower", aspect=aspect, interpolation="nearest")
        if row == 0:
            ax.set_title("prediction", fontsize=7)
        if cam_map is not None:
            ax = fig.add_subplot(grid[row, len(shown) + 1])
            show_plane(ax, cam_map, aspect, cmap="jet", vmin=0.0, vmax=1.0)
            if row == 0:
                ax.set_title(f"Grad-CAM {cam_name}", fontsize=7)
    fig.suptitle(f"{layer.name} across training (feature maps: yellow = strong, own scale per panel"
                 + ("; Grad-CAM: red = most contribution)" if cam_name is not None else ")"), fontsize=9)
    class_legend(fig, dict(enumerate(class_names)), colours, fontsize=7)
    save_figure(fig, out_png)


def dice_figure(rows: list[dict], out_png: Path, title: str, class_names: Sequence[str]) -> None:
    """Per-class Dice over the saved epochs, each class in its overlay colour, ticks at the saved epochs."""
    colours = label_colormap(max(len(class_names), 2))
    fig = Figure(figsize=(5.5, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    epochs = [row["epoch"] for row in rows]
    for name in dict.fromkeys(k for row in rows for k in row if k != "epoch"):
        label = name.split("dice_", 1)[-1]
        colour = colours[class_names.index(label)][:3] if label in class_names[1:] else None
        ax.plot(epochs, [row.get(name, np.nan) for row in rows], marker="o", label=label, color=colour)
    ax.set_xticks(epochs)
    ax.set_xlabel("epoch (saved weights)")
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out_png)
