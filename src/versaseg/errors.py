"""User-facing errors.

An :class:`InputError` is a user mistake (missing/corrupt file, mismatched geometry, bad option). The CLI prints its
message as one line and exits with code 2; it never shows a traceback for it.
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A problem with the user's input; the message names the file (if any) and the problem."""

    def __init__(self, message: str, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        super().__init__(f"{path}: {message}" if path is not None else message)


def short_repr(value, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters, for quoting a user's value in a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
