"""Shared CLI plumbing: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import typer

from versaseg.errors import InputError

F = TypeVar("F", bound=Callable)


def user_errors(func: F) -> F:
    """Decorate a command so an :class:`InputError` prints ``error: <file>: <problem>`` and exits with code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            typer.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]
