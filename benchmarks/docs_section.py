"""Shared by the benchmark scripts: running ``versaseg`` as a user would, the CPU's name, and replacing one '## '
section of docs/benchmarks.md."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path


def versaseg(*args: str, log: Path | None = None) -> float:
    """Run ``versaseg ARGS`` with this interpreter's package; return the wall time. Its stderr (progress bars) is
    appended to ``log`` when given; a failure stops the benchmark with the command and the end of its output."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "versaseg.cli.main", *args]
    if log is None:
        result = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace")
        tail = result.stderr[-4000:]
    else:
        with open(log, "a") as stream:
            result = subprocess.run(command, stdout=subprocess.PIPE, stderr=stream, text=True)
        tail = f"(stderr in {log})"
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stdout[-2000:]}\n{tail}")
    return time.perf_counter() - started


class TimedSteps:
    """Runs ``versaseg`` steps of a benchmark, logging their stderr to ``work/log.txt`` and keeping their wall times
    in ``work/timings.json`` (read back on a re-run, so a resumed benchmark still reports every step)."""

    def __init__(self, work: Path):
        import json

        self.log, self.file = work / "log.txt", work / "timings.json"
        self.timings: dict[str, float] = json.loads(self.file.read_text()) if self.file.exists() else {}

    def __call__(self, key: str, *command: str) -> None:
        import json

        self.timings[key] = versaseg(*command, log=self.log)
        self.file.write_text(json.dumps(self.timings, indent=2))
        print(f"{key}: {self.timings[key]:.0f} s", flush=True)


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
