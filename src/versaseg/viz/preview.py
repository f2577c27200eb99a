"""A case at a glance: every channel in three planes, the label overlay, and a maximum-intensity projection.

One row per plane (axial, coronal, sagittal), one column per channel, then a column with the label map over the first
channel, then (optionally) the maximum-intensity projection (MIP) of one channel along each row's viewing axis, the
way an angiogram (TOF) is read. Drawn with matplotlib's object-oriented API on an Agg canvas and saved atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from versaseg.io.atomic import atomic_path
from versaseg.viz.overlays import _AXIS_NAMES, DPI, VIEWS, _display, label_colormap, slice_positions

PANEL_INCHES = 2.4


def case_mosaic(
    channels: list[tuple[str, np.ndarray]],
    label: np.ndarray | None,
    out_png: str | Path,
    spacing: tuple[float, float, float] | None = None,
    class_names: dict[int, str] | None = None,
    mip_channel: str | None = None,
    slices: int = 1,
    title: str = "",
    alpha: float = 0.45,
) -> Path:
    """Draw a case mosaic and save it as a PNG (atomically); returns ``out_png``.

    Args:
        channels: ``[(name, image (X, Y, Z)), ...]`` in canonical RAS+ axis order, all the same shape.
        label: (X, Y, Z) int label map or None (then no overlay column).
        spacing: voxel size (mm) along X, Y, Z for true aspect ratios; default isotropic.
        class_names: ``{value: name}`` for the legend.
        mip_channel: name of a channel to add as a maximum-intensity projection column (e.g. ``"TOF"``).
        slices: slices per plane, evenly spaced through the label's foreground (the whole volume without one).
        title: figure title.
        alpha: opacity of the label overlay.
    """
    if not channels:
        raise ValueError("case_mosaic needs at least one channel")
    shape = np.asarray(channels[0][1]).shape
    images = []
    for name, image in channels:
        image = np.asarray(image, dtype=np.float32)
        if image.shape != shape or image.ndim != 3:
            raise ValueError(f"channel '{name}' has shape {image.shape}, expected 3D {shape}")
        images.append((str(name), image))
    if label is not None:
        label = np.clip(np.asarray(label), 0, None).astype(np.int64)
        if label.shape != shape:
            raise ValueError(f"label has shape {label.shape}, channels have {shape}")
    names = [name for name, _ in images]
    if mip_channel is not None and mip_channel not in names:
        raise ValueError(f"mip_channel '{mip_channel}' is not one of the channels {names}")
    spacing = np.ones(3) if spacing is None else np.asarray(spacing, dtype=float)
    foreground = label > 0 if label is not None else np.zeros(shape, bool)
    windows = [_window(image, high=99.7) for _, image in images]
    colours = None
    if label is not None:
        colours = label_colormap(max(int(label.max()), max(class_names or {0: ""})) + 1)

    rows = [(view, fixed, position, horizontal, vertical)
            for view, fixed, horizontal, vertical in VIEWS
            for position in _positions(foreground, fixed, max(1, int(slices)))]
    columns = [("image", index) for index in range(len(images))]
    if label is not None:
        columns.append(("label", 0))
    if mip_channel is not None:
        columns.append(("mip", names.index(mip_channel)))
    ratios = [shape[v] * spacing[v] / (shape[h] * spacing[h]) for _, _, _, h, v in rows]
    legend_height = 0.4 if class_names and label is not None else 0.0
    title_height = 0.45 if title else 0.15
    height = PANEL_INCHES * sum(ratios) + title_height + legend_height + 0.35
    width = PANEL_INCHES * len(columns) + 0.45
    fig = Figure(figsize=(width, height), facecolor="black")
    grid = fig.add_gridspec(
        len(rows), len(columns), height_ratios=ratios, wspace=0.02, hspace=0.06,
        left=0.4 / width, right=1 - 0.05 / width, top=1 - (title_height + 0.2) / height,
        bottom=(legend_height + 0.05) / height,
    )
    mips: dict[int, np.ndarray] = {}
    for row, (view, fixed, position, horizontal, vertical) in enumerate(rows):
        index = [slice(None)] * 3
        index[fixed] = position
        aspect = spacing[vertical] / spacing[horizontal]
        for column, (kind, channel) in enumerate(columns):
            ax = fig.add_subplot(grid[row, column])
            name, image = images[channel]
            if kind == "mip":
                if fixed not in mips:
                    mips[fixed] = image.max(axis=fixed)
                plane = mips[fixed]
                # the 2D projection keeps the other two axes in order, like a slice does
                ax.imshow(_display(plane, horizontal, vertical), cmap="gray", origin="lower", aspect=aspect,
                          interpolation="antialiased", vmin=_window(plane, high=99.9)[0],
                          vmax=_window(plane, high=99.9)[1])
            else:
                vmin, vmax = windows[channel]
                ax.imshow(_display(image[tuple(index)], horizontal, vertical), cmap="gray", vmin=vmin, vmax=vmax,
                          origin="lower", aspect=aspect, interpolation="antialiased")
                if kind == "label":
                    rgba = colours[_display(label[tuple(index)], horizontal, vertical)].copy()
                    rgba[..., 3] *= alpha
                    ax.imshow(rgba, origin="lower", aspect=aspect, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_facecolor("black")
            for spine in ax.spines.values():
                spine.set_visible(False)
            if row == 0:
                heading = {"image": name, "label": f"labels on {name}", "mip": f"{name} MIP"}[kind]
                ax.set_title(heading, fontsize=10, color="white")
            if column == 0:
                ax.set_ylabel(f"{view} {_AXIS_NAMES[fixed]}={position}", fontsize=8, color="white")
    if title:
        fig.suptitle(title, fontsize=11, color="white", y=1 - 0.12 / height, va="top")
    if class_names and label is not None:
        handles = [Patch(facecolor=colours[value], label=str(name))
                   for value, name in sorted(class_names.items()) if value > 0]
        if handles:
            legend = fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8,
                                frameon=False)
            for text in legend.get_texts():
                text.set_color("white")
    out_png = Path(out_png)
    FigureCanvasAgg(fig)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="black")
    return out_png


def _positions(foreground: np.ndarray, axis: int, count: int) -> list[int]:
    """Slice indices along ``axis``: evenly spaced through the foreground (X, Y, Z) bool, each moved to the nearest
    slice holding at least half the largest foreground area (a midline slice between two small bilateral
    structures shows nothing of them)."""
    positions = slice_positions(foreground, axis, count)
    other = tuple(a for a in range(3) if a != axis)
    area = foreground.sum(axis=other)
    if not area.any():
        return positions
    good = np.flatnonzero(area >= 0.5 * area.max())
    return [int(good[np.argmin(np.abs(good - p))]) for p in positions]


def _window(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> tuple[float, float]:
    """Display range of ``image``: percentiles of its non-zero voxels (the air around a head would dominate)."""
    values = image[np.isfinite(image) & (image != 0)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, (low, high)))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)
