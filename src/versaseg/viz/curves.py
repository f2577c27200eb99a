"""Training curves from a run's per-epoch ``metrics.csv``.

The CSV has one row per epoch and a header such as ``epoch, train_loss, val_loss, val_dice_<class>..., lr, seconds``.
Reading is tolerant: any column may be missing, empty cells and non-numeric columns are skipped, and every numeric
column except ``epoch`` is plotted, grouped into panels: losses, Dice scores, learning rate, and everything else.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from versaseg.errors import InputError
from versaseg.viz.overlays import save_figure

PANEL_ORDER = ("loss", "dice", "lr", "other")
_PANEL_TITLES = {"loss": "loss", "dice": "Dice", "lr": "learning rate", "other": "other"}


def read_metrics_csv(metrics_csv: str | Path) -> dict[str, np.ndarray]:
    """Numeric columns of a metrics CSV as ``{column: values (E,) float64}`` (NaN for empty/invalid cells).

    Columns without a single numeric value are dropped. Raises InputError for a missing file or one without a header.
    """
    path = Path(metrics_csv)
    if not path.is_file():
        raise InputError("metrics file not found", path)
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise InputError("metrics file is empty (no header row)", path)
        header = [name.strip() for name in header]
        rows = [row for row in reader if any(cell.strip() for cell in row)]
    columns = {}
    for index, name in enumerate(header):
        if not name or name in columns:
            continue
        values = np.array([_number(row[index]) if index < len(row) else math.nan for row in rows], dtype=np.float64)
        if rows and np.isfinite(values).any():
            columns[name] = values
    return columns


def _number(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return math.nan


def panel_of(column: str) -> str:
    """The panel a column is drawn in: 'loss', 'dice', 'lr' or 'other'."""
    name = column.lower()
    if "loss" in name:
        return "loss"
    if "dice" in name:
        return "dice"
    if name in ("lr", "learning_rate") or name.startswith("lr_") or name.endswith("_lr"):
        return "lr"
    return "other"


def plot_curves(metrics_csv: str | Path, out_png: str | Path, title: str = "") -> Path:
    """Plot every numeric column of ``metrics_csv`` against ``epoch`` (or the row number) and save a PNG atomically.

    Panels, left to right, are drawn only when they have a column: losses; Dice scores (legend without the
    ``val_dice_`` prefix, y in [0, 1] when the values are); learning rate (log scale when positive); other columns
    such as ``seconds``. A CSV with a header but no rows gives a figure saying so. Returns ``out_png``.
    """
    columns = read_metrics_csv(metrics_csv)
    x = columns.pop("epoch", None)
    length = len(next(iter(columns.values()))) if columns else 0
    if x is None or not np.isfinite(x).all():
        x = np.arange(1, length + 1, dtype=np.float64)
    panels: dict[str, list[str]] = {}
    for name in columns:
        panels.setdefault(panel_of(name), []).append(name)
    order = [p for p in PANEL_ORDER if p in panels]
    count = max(1, len(order))
    fig = Figure(figsize=(4.2 * count, 3.4), layout="constrained")
    if not order:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no epochs logged yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    marker = "o" if length <= 30 else None
    for index, panel in enumerate(order):
        ax = fig.add_subplot(1, count, index + 1)
        for name in panels[panel]:
            values = columns[name]
            shown = np.isfinite(values)
            label = name[len("val_dice_"):] if panel == "dice" and name.startswith("val_dice_") else name
            ax.plot(x[shown], values[shown], marker=marker, markersize=3, linewidth=1.3, label=label)
        values = np.concatenate([columns[name][np.isfinite(columns[name])] for name in panels[panel]])
        if panel == "dice" and values.min() >= 0 and values.max() <= 1:
            ax.set_ylim(0, 1.02)
        if panel == "lr" and values.min() > 0:
            ax.set_yscale("log")
        ax.set_title(_PANEL_TITLES[panel], fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, out_png)


def validation_dice_at(metrics_csv: str | Path, epochs: list[int]) -> list[dict]:
    """``[{"epoch": e, "val_dice_<class>": float, ...}]`` for each of ``epochs``: the per-class validation Dice that
    ``metrics.csv`` recorded at that epoch (finite values only; just the epoch when the file or the row is missing)."""
    path = Path(metrics_csv)
    if not path.exists():
        return [{"epoch": e} for e in epochs]
    columns = read_metrics_csv(path)
    rows = []
    epoch_column = columns.get("epoch", np.array([]))
    for epoch in epochs:
        row: dict = {"epoch": epoch}
        hits = np.flatnonzero(epoch_column == epoch)
        if hits.size:
            for name, values in columns.items():
                if name.startswith("val_dice_") and name != "val_dice_mean" and np.isfinite(values[hits[0]]):
                    row[name] = float(values[hits[0]])
        rows.append(row)
    return rows
