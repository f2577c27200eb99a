"""Label overlays on image slices: an axial/coronal/sagittal mosaic with one column per label map.

Figures are drawn with matplotlib's object-oriented API on an explicit Agg canvas (no screen needed, and the global
pyplot backend of an interactive session is left alone) and saved atomically.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from versaseg.io.atomic import atomic_path
from versaseg.io.segmentation import DISTINCT_RGB255 as _DISTINCT

# (name, fixed axis, horizontal axis, vertical axis) of each view, for arrays in canonical RAS+ (X, Y, Z) order.
VIEWS = (("axial", 2, 0, 1), ("coronal", 1, 0, 2), ("sagittal", 0, 1, 2))
_AXIS_NAMES = "xyz"
PANEL_INCHES = 2.2
DPI = 100


def label_colormap(n: int) -> np.ndarray:
    """RGBA colours (n, 4) float32 in [0, 1] for label values 0..n-1.

    Row 0 (background) is fully transparent; rows 1.. are fixed, distinct, opaque colours (the same value always gets
    the same colour; beyond the built-in list, hues follow the golden ratio).
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"label_colormap needs n >= 1, got {n}")
    colours = np.zeros((n, 4), np.float32)
    for value in range(1, n):
        if value <= len(_DISTINCT):
            rgb = np.array(_DISTINCT[value - 1], np.float32) / 255.0
        else:
            hue = (value * 0.618033988749895) % 1.0
            rgb = np.array(colorsys.hsv_to_rgb(hue, 0.85, 0.95), np.float32)
        colours[value, :3] = rgb
        colours[value, 3] = 1.0
    return colours


def save_figure(fig: Figure, out_png: str | Path, dpi: int = DPI) -> Path:
    """Render ``fig`` with the Agg canvas and write it as PNG atomically (temporary file, then rename)."""
    out_png = Path(out_png)
    FigureCanvasAgg(fig)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, facecolor="white")
    return out_png


def slice_positions(mask: np.ndarray, axis: int, count: int) -> list[int]:
    """``count`` slice indices along ``axis``, evenly spaced inside the extent of ``mask`` (X, Y, Z) bool.

    With ``count`` = 1 this is the middle of the extent; an empty mask uses the whole volume.
    """
    size = mask.shape[axis]
    other = tuple(a for a in range(mask.ndim) if a != axis)
    present = np.flatnonzero(mask.any(axis=other)) if mask.any() else np.array([0, size - 1])
    low, high = int(present.min()), int(present.max())
    return [int(round(low + (high - low) * (k + 1) / (count + 1))) for k in range(count)]


def _window(image: np.ndarray) -> tuple[float, float]:
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(finite, (0.5, 99.5)))
    return (low, high) if high > low else (low, low + 1.0)


def _display(plane: np.ndarray, horizontal: int, vertical: int) -> np.ndarray:
    """A 2D slice in (vertical, horizontal) order for imshow; the slice keeps the volume's remaining axis order."""
    return plane.T if horizontal < vertical else plane


def _boundary(label_slice: np.ndarray) -> np.ndarray:
    """Pixels (H, W) of a 2D label slice whose 4-neighbourhood holds another value, foreground only."""
    padded = np.pad(label_slice, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edge = ((padded[:-2, 1:-1] != centre) | (padded[2:, 1:-1] != centre)
            | (padded[1:-1, :-2] != centre) | (padded[1:-1, 2:] != centre))
    return edge & (centre > 0)


def overlay_mosaic(
    image: np.ndarray,
    labels: list[tuple[str, np.ndarray]],
    out_png: str | Path,
    slices: int = 3,
    title: str = "",
    spacing: tuple[float, float, float] | None = None,
    mode: str = "fill",
    alpha: float = 0.5,
    class_names: dict[int, str] | None = None,
) -> Path:
    """Draw label maps over an image and save the mosaic as a PNG (atomically); returns ``out_png``.

    Args:
        image: (X, Y, Z) float, canonical RAS+ axis order (as :class:`versaseg.data.case.Case` holds it).
        labels: ``[(column title, label map (X, Y, Z) int), ...]``, e.g. ``[("ground truth", gt), ("prediction",
            pred)]``; each map gets its own column after the plain image column.
        slices: rows per view (axial, coronal, sagittal), evenly spaced through the extent of the labels' foreground
            (1 = the middle slice); without any foreground, through the whole volume.
        title: figure title.
        spacing: voxel size (mm) along X, Y, Z, so each panel has the true aspect ratio; default isotropic.
        mode: ``"fill"`` (translucent colour) or ``"contour"`` (opaque outline of each label region).
        alpha: opacity of the ``"fill"`` overlay.
        class_names: optional ``{value: name}``; adds a colour legend.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ValueError(f"image must be 3D (X, Y, Z), got shape {image.shape}")
    if mode not in ("fill", "contour"):
        raise ValueError(f"mode must be 'fill' or 'contour', got {mode!r}")
    maps = []
    for name, label in labels:
        label = np.asarray(label)
        if label.shape != image.shape:
            raise ValueError(f"label map '{name}' has shape {label.shape}, image has {image.shape}")
        maps.append((str(name), np.clip(label, 0, None).astype(np.int64)))
    slices = max(1, int(slices))
    spacing = np.ones(3) if spacing is None else np.asarray(spacing, dtype=float)
    foreground = np.zeros(image.shape, bool)
    for _, label in maps:
        foreground |= label > 0
    top_value = max([int(label.max()) for _, label in maps] + [max(class_names or {0: ""})])
    colours = label_colormap(top_value + 1)
    vmin, vmax = _window(image)

    rows = []  # (view name, fixed axis, position, horizontal axis, vertical axis)
    for name, fixed, horizontal, vertical in VIEWS:
        for position in slice_positions(foreground, fixed, slices):
            rows.append((name, fixed, position, horizontal, vertical))
    ratios = [image.shape[v] * spacing[v] / (image.shape[h] * spacing[h]) for _, _, _, h, v in rows]
    columns = 1 + len(maps)
    legend_height = 0.45 if class_names else 0.0
    title_height = 0.45 if title else 0.15
    height = PANEL_INCHES * sum(ratios) + title_height + legend_height + 0.25
    width = PANEL_INCHES * columns + 0.45
    fig = Figure(figsize=(width, height))
    grid = fig.add_gridspec(
        len(rows), columns, height_ratios=ratios, wspace=0.03, hspace=0.12,
        left=0.4 / width, right=1 - 0.05 / width, top=1 - title_height / height, bottom=(legend_height + 0.1) / height,
    )
    for row, (view, fixed, position, horizontal, vertical) in enumerate(rows):
        index = [slice(None)] * 3
        index[fixed] = position
        grey = _display(image[tuple(index)], horizontal, vertical)
        aspect = spacing[vertical] / spacing[horizontal]
        for column in range(columns):
            ax = fig.add_subplot(grid[row, column])
            ax.imshow(grey, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", aspect=aspect,
                      interpolation="nearest")
            if column > 0:
                label_slice = _display(maps[column - 1][1][tuple(index)], horizontal, vertical)
                rgba = colours[label_slice]
                if mode == "fill":
                    rgba[..., 3] *= alpha
                else:
                    rgba[..., 3] *= _boundary(label_slice)
                ax.imshow(rgba, origin="lower", aspect=aspect, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("image" if column == 0 else maps[column - 1][0], fontsize=9)
            if column == 0:
                ax.set_ylabel(f"{view} {_AXIS_NAMES[fixed]}={position}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.12 / height, va="top")
    if class_names:
        class_legend(fig, class_names, colours)
    return save_figure(fig, out_png)


def class_legend(fig: Figure, class_names: dict[int, str], colours: np.ndarray, extra: Sequence[Patch] = (),
                 fontsize: int = 8) -> None:
    """A legend along the bottom of ``fig``: ``extra`` handles first, then the colour of each class value > 0."""
    handles = [*extra, *(Patch(facecolor=colours[value], label=str(name))
                         for value, name in sorted(class_names.items()) if value > 0)]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=fontsize, frameon=False)
