"""Weight snapshots kept during training (``--save-every``): ``RUN/checkpoints/epoch_NNN.pt`` and their index."""

from __future__ import annotations

import json
import re
from pathlib import Path

from versaseg.io.atomic import write_text_atomic
from versaseg.io.run_dir import save_atomic

SNAPSHOT_DIR = "checkpoints"
SNAPSHOT_INDEX = "checkpoints.json"
_SNAPSHOT_NAME = re.compile(r"^epoch_(\d+)\.pt$")


def snapshot_path(run_dir: str | Path, epoch: int) -> Path:
    """``RUN/checkpoints/epoch_NNN.pt``: the network's weights after ``epoch`` completed epochs (1-based)."""
    return Path(run_dir) / SNAPSHOT_DIR / f"epoch_{epoch:03d}.pt"


def list_snapshots(run_dir: str | Path) -> list[tuple[int, Path]]:
    """The intermediate weights written with ``--save-every``: ``[(epoch, path), ...]`` sorted by epoch."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _SNAPSHOT_NAME.match(path.name)
        if match and path.is_file():
            found.append((int(match[1]), path))
    return sorted(found)


def save_snapshot(state_dict: dict, run_dir: str | Path, epoch: int) -> Path:
    """Write ``state_dict`` to ``RUN/checkpoints/epoch_NNN.pt`` and refresh ``RUN/checkpoints.json``, atomically.

    ``checkpoints.json`` lists ``{"epoch": N, "file": "checkpoints/epoch_NNN.pt"}`` for every snapshot present.
    """
    path = snapshot_path(run_dir, epoch)
    save_atomic(state_dict, path)
    entries = [{"epoch": e, "file": p.relative_to(run_dir).as_posix()} for e, p in list_snapshots(run_dir)]
    write_text_atomic(Path(run_dir) / SNAPSHOT_INDEX, json.dumps({"checkpoints": entries}, indent=2) + "\n")
    return path
