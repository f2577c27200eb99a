"""Progress display that suits where it goes: a tqdm bar on a terminal, one plain line per step in a log.

A bar written to a file or a pipe prints a new frame at every update (megabytes over a long run); off a terminal
:func:`progress` therefore prints ``"<desc> <i>/<n> <unit> (<s> s)"`` once per finished step instead, and
:func:`bar_enabled` tells loops that drive a bar by hand (the trainers) to leave it off and log one line per epoch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def bar_enabled(wanted: bool = True, stream=None) -> bool:
    """True when a bar is ``wanted`` and ``stream`` (default stderr, where tqdm writes) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return bool(wanted) and hasattr(stream, "isatty") and stream.isatty()


def progress(items: Iterable[T], desc: str, unit: str = "it", enabled: bool = True, leave: bool = True,
             stream=None) -> Iterator[T]:
    """Iterate ``items`` with a bar on a terminal, one line per item elsewhere, nothing when not ``enabled``."""
    stream = sys.stderr if stream is None else stream
    if not enabled:
        yield from items
        return
    if bar_enabled(True, stream):
        yield from tqdm(items, desc=desc, unit=unit, leave=leave, file=stream, dynamic_ncols=True)
        return
    total = len(items) if hasattr(items, "__len__") else None
    started = time.perf_counter()
    for done, item in enumerate(items, start=1):
        yield item
        of = f"/{total}" if total is not None else ""
        print(f"{desc} {done}{of} {unit} ({time.perf_counter() - started:.0f} s)", file=stream, flush=True)


class StepTimer:
    """Wall time of consecutive steps: ``lap(name)`` adds the time since the previous lap to ``seconds[name]``."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._last, 2)
        self._last = now
