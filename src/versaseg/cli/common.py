"""Shared CLI plumbing: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import json
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


def json_object_option(value: str, option: str) -> dict:
    """Parse a JSON-object command-line option (e.g. ``--network-kwargs``); InputError naming ``option`` otherwise."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InputError(f"{option} is not valid JSON ({exc})") from None
    if not isinstance(parsed, dict):
        raise InputError(f"{option} must be a JSON object")
    return parsed
