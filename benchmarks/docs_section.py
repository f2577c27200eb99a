"""Shared by the benchmark scripts: the CPU's name, and replacing one '## ' section of docs/benchmarks.md."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU model from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_section(path: Path, title: str, section: str) -> None:
    """Replace the section headed ``title`` in ``path`` (up to the next '## ' heading), or append it; atomic write."""
    from versaseg.io.atomic import write_text_atomic

    if path.exists():
        lines = path.read_text().splitlines(keepends=True)
        starts = [i for i, line in enumerate(lines) if line.rstrip() == title]
        if starts:
            start = starts[0]
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            tail = lines[end:]
            text = "".join(lines[:start]) + section + ("\n" + "".join(tail) if tail else "")
        else:
            text = "".join(lines).rstrip("\n") + "\n\n" + section
    else:
        text = "# Benchmarks\n\n" + section
    write_text_atomic(path, text)
