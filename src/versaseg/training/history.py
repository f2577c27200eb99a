"""Per-epoch metrics: ``metrics.csv`` (rewritten atomically each epoch), ``curves.png`` and optional TensorBoard."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from versaseg.io.atomic import write_text_atomic


def csv_text(rows: list[dict]) -> str:
    """CSV of ``rows``: columns are the union of the rows' keys in first-seen order, floats with 6 digits."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buffer.getvalue()


def write_metrics_csv(rows: list[dict], path: Path) -> None:
    """One row per epoch (see :func:`csv_text`), written atomically."""
    write_text_atomic(path, csv_text(rows))


class EpochLogger:
    """Writes metrics.csv, curves.png and (optionally) TensorBoard scalars after every epoch."""

    def __init__(self, run_dir: Path, tensorboard: bool):
        self.run_dir = Path(run_dir)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))

    def log(self, history: list[dict]) -> None:
        from versaseg.viz.curves import plot_curves

        write_metrics_csv(history, self.run_dir / "metrics.csv")
        plot_curves(self.run_dir / "metrics.csv", self.run_dir / "curves.png")
        if self.writer is not None:
            row = history[-1]
            for key, value in row.items():
                if key != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(key, value, row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
