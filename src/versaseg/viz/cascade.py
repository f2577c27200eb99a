"""What a cascade prediction did, in one figure: stage 1's coarse region and the region of interest over the whole
slice, then stage 2's labels inside the region (and the ground truth, when there is one), for the axial, coronal and
sagittal planes through the region."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from versaseg.viz.overlays import (
    _AXIS_NAMES,
    DPI,
    PANEL_INCHES,
    VIEWS,
    _display,
    _window,
    class_legend,
    label_colormap,
    save_figure,
)

STAGE1_RGBA = (1.0, 0.85, 0.1, 0.45)  # stage 1's coarse foreground: translucent yellow
ROI_COLOUR = "#00e5ff"


def cascade_figure(
    image: np.ndarray,
    stage1: np.ndarray,
    roi: tuple[slice, slice, slice],
    labels: np.ndarray,
    out_png: str | Path,
    truth: np.ndarray | None = None,
    spacing: tuple[float, float, float] | None = None,
    class_names: dict[int, str] | None = None,
    title: str = "",
    alpha: float = 0.55,
) -> Path:
    """Draw one cascade prediction and save it as a PNG (atomically); returns ``out_png``.

    Args:
        image: (X, Y, Z) float, one channel, canonical RAS+ axis order (every array here in the same order).
        stage1: (X, Y, Z) stage 1's foreground on the image grid (nonzero = found).
        roi: the stage-2 box as three ``slice`` objects (start, stop) into the image grid.
        labels: (X, Y, Z) int, the cascade's final labels.
        truth: optional (X, Y, Z) int ground truth, drawn as an extra column.
        spacing: voxel size (mm) along X, Y, Z for true aspect ratios; default isotropic.
        class_names: optional ``{value: name}`` for the legend.

    Rows: axial, coronal, sagittal through the ROI slice with the most labelled voxels (labels or truth; the ROI's
    centre when there are none). Columns: the whole slice with stage 1's region (yellow)
    and the ROI (cyan box); the ROI enlarged with the cascade's labels; the ROI with the ground truth.
    """
    image = np.asarray(image, dtype=np.float32)
    arrays = {"stage1": np.asarray(stage1), "labels": np.asarray(labels)}
    if truth is not None:
        arrays["truth"] = np.asarray(truth)
    if image.ndim != 3:
        raise ValueError(f"image must be 3D (X, Y, Z), got shape {image.shape}")
    for name, array in arrays.items():
        if array.shape != image.shape:
            raise ValueError(f"{name} has shape {array.shape}, image has {image.shape}")
    roi = tuple(slice(int(s.start), int(s.stop)) for s in roi)
    if len(roi) != 3 or any(not 0 <= s.start < s.stop <= n for s, n in zip(roi, image.shape, strict=True)):
        raise ValueError(f"roi {roi} is not a non-empty box inside the image shape {image.shape}")
    spacing = np.ones(3) if spacing is None else np.asarray(spacing, dtype=float)
    values = [int(arrays["labels"].max())] + ([int(arrays["truth"].max())] if truth is not None else [])
    colours = label_colormap(max(values + [max(class_names or {0: ""})]) + 1)
    vmin, vmax = _window(image)
    centre = _slice_positions(roi, [arrays["labels"] > 0] + ([arrays["truth"] > 0] if truth is not None else []))
    zoom_columns = [("cascade labels", arrays["labels"])] + ([("ground truth", arrays["truth"])] if truth is not None
                                                             else [])

    # Each row: the whole slice (true aspect), then the ROI panels, all as tall as the row.
    whole_ratio = [image.shape[v] * spacing[v] / (image.shape[h] * spacing[h]) for _, _, h, v in VIEWS]
    roi_ratio = [(roi[v].stop - roi[v].start) * spacing[v] / ((roi[h].stop - roi[h].start) * spacing[h])
                 for _, _, h, v in VIEWS]
    widths = [1.0] + [whole_ratio[0] / max(roi_ratio[0], 1e-6)] * len(zoom_columns)
    widths = [min(max(w, 0.6), 1.6) for w in widths]
    legend_height, title_height = 0.45, (0.5 if title else 0.15)
    height = PANEL_INCHES * sum(whole_ratio) + legend_height + title_height + 0.3
    width = PANEL_INCHES * sum(widths) + 0.5
    fig = Figure(figsize=(width, height))
    grid = fig.add_gridspec(3, 1 + len(zoom_columns), height_ratios=whole_ratio, width_ratios=widths, wspace=0.05,
                            hspace=0.15, left=0.45 / width, right=1 - 0.05 / width, top=1 - title_height / height,
                            bottom=(legend_height + 0.1) / height)
    for row, (view, fixed, horizontal, vertical) in enumerate(VIEWS):
        index = [slice(None)] * 3
        index[fixed] = centre[fixed]
        index = tuple(index)
        aspect = spacing[vertical] / spacing[horizontal]
        grey = _display(image[index], horizontal, vertical)
        ax = fig.add_subplot(grid[row, 0])
        ax.imshow(grey, cmap="gray", vmin=vmin, vmax=vmax, origin="lower", aspect=aspect, interpolation="nearest")
        found = _display(arrays["stage1"][index] > 0, horizontal, vertical)
        overlay = np.zeros(found.shape + (4,), np.float32)
        overlay[found] = STAGE1_RGBA
        ax.imshow(overlay, origin="lower", aspect=aspect, interpolation="nearest")
        h, v = roi[horizontal], roi[vertical]
        ax.add_patch(Rectangle((h.start - 0.5, v.start - 0.5), h.stop - h.start, v.stop - v.start, fill=False,
                               edgecolor=ROI_COLOUR, linewidth=1.5))
        ax.set_ylabel(f"{view} {_AXIS_NAMES[fixed]}={centre[fixed]}", fontsize=8)
        if row == 0:
            ax.set_title("stage 1 region + ROI", fontsize=9)
        crop = [slice(None)] * 3
        crop[fixed] = centre[fixed]
        crop[horizontal], crop[vertical] = roi[horizontal], roi[vertical]
        crop = tuple(crop)
        for column, (name, volume) in enumerate(zoom_columns, start=1):
            ax_zoom = fig.add_subplot(grid[row, column])
            ax_zoom.imshow(_display(image[crop], horizontal, vertical), cmap="gray", vmin=vmin, vmax=vmax,
                           origin="lower", aspect=aspect, interpolation="nearest")
            rgba = colours[np.clip(_display(volume[crop], horizontal, vertical), 0, None).astype(np.int64)]
            rgba[..., 3] *= alpha
            ax_zoom.imshow(rgba, origin="lower", aspect=aspect, interpolation="nearest")
            for spine in ax_zoom.spines.values():
                spine.set_edgecolor(ROI_COLOUR)
            if row == 0:
                ax_zoom.set_title(f"{name} (ROI)", fontsize=9)
        for axis in fig.axes[-(1 + len(zoom_columns)):]:
            axis.set_xticks([])
            axis.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.12 / height, va="top")
    class_legend(fig, class_names or {}, colours, extra=[
        Patch(facecolor=STAGE1_RGBA, label="stage 1 region"),
        Patch(facecolor="none", edgecolor=ROI_COLOUR, label="ROI (stage 2 input)")])
    return save_figure(fig, out_png, dpi=DPI)


def _slice_positions(roi: tuple[slice, slice, slice], masks: list[np.ndarray]) -> list[int]:
    """Per axis, the slice inside ``roi`` holding the most voxels of ``masks`` (X, Y, Z) bool; the box centre where
    they hold none (a sagittal plane through one side of bilateral structures, not the empty midline)."""
    inside = np.zeros(masks[0].shape, np.int64)
    for mask in masks:
        inside[roi] += mask[roi]
    positions = []
    for axis, box in enumerate(roi):
        counts = inside.sum(axis=tuple(a for a in range(3) if a != axis))[box]
        positions.append(box.start + int(np.argmax(counts)) if counts.any() else (box.start + box.stop - 1) // 2)
    return positions
