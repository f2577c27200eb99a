"""Shared CLI plumbing: user errors become one line on stderr and exit code 2."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer

from versaseg.errors import InputError, short_repr

F = TypeVar("F", bound=Callable)


def user_errors(func: F) -> F:
    """Decorate a command so an :class:`InputError` prints ``error: <file>: <problem>`` and exits with code 2.

    A file-system error on a named file that the checks before the work could not foresee (the disk filled up, the
    folder was made read-only meanwhile) is reported the same way; atomic writes leave nothing half-written then.
    """

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except InputError as exc:
            typer.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:
            if exc.filename is None:
                raise
            typer.echo(f"error: {exc.filename}: {exc.strerror or exc}", err=True)
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


def number_list_option(value: str, option: str, kind: type = int) -> list:
    """``"64,64"`` -> ``[64, 64]`` (``kind`` int or float); empty -> ``[]``; InputError naming ``option`` otherwise."""
    try:
        return [kind(v) for v in value.split(",") if v.strip()]
    except ValueError:
        what = "integers" if kind is int else "numbers"
        raise InputError(f"{option} must be comma-separated {what}, got '{value}'") from None


# -- one vocabulary across commands (docs/cli.md) ---------------------------------------------------------------------
AXIS_NAMES = {"sagittal": 0, "coronal": 1, "axial": 2}
AXIS_HELP = "sagittal | coronal | axial, or 0 | 1 | 2 (canonical RAS: 0 = x, 1 = y, 2 = z; any stored orientation)"


def parse_axis(value: str | int, option: str = "--axis", allow_auto: bool = False) -> int | str:
    """``--axis`` in the one frame every command uses: an anatomical name or the canonical RAS axis number.

    Returns 0, 1 or 2 (or ``"auto"`` where ``allow_auto``); InputError otherwise.
    """
    text = str(value).strip().lower()
    if allow_auto and text == "auto":
        return "auto"
    if text in AXIS_NAMES:
        return AXIS_NAMES[text]
    if text in ("0", "1", "2"):
        return int(text)
    choices = ("auto, " if allow_auto else "") + "sagittal, coronal, axial, 0, 1 or 2"
    raise InputError(f"{option} must be {choices}, got '{value}'")


def axis_name(axis: int) -> str:
    """0 -> 'sagittal', 1 -> 'coronal', 2 -> 'axial'."""
    return {v: k for k, v in AXIS_NAMES.items()}[int(axis)]


def warn_deprecated(old: str, new: str) -> None:
    """One line on stderr for a spelling kept for one release."""
    typer.echo(f"warning: {old} is deprecated and will be removed in the next release; use {new}", err=True)


def renamed_option(value, old_value, old: str, new: str):
    """The value of an option renamed from ``old`` to ``new``: the old spelling still works with a deprecation line;
    giving both is an error."""
    if old_value is None:
        return value
    if value is not None:
        raise InputError(f"{old} is the old name of {new}; give only {new}")
    warn_deprecated(old, new)
    return old_value



def out_option(out, out_arg):
    """``--out``, or the deprecated positional OUT (``data synth-brain``, ``data degrade`` before this release)."""
    if out_arg is not None:
        if out is not None:
            raise InputError("give the output once: --out (a positional OUT is its old place)")
        warn_deprecated("a positional OUT", "--out OUT")
        return out_arg
    if out is None:
        raise InputError("missing --out: where to write the result")
    return out


# CLI parameter -> run-config field, where the names differ
_CONFIG_FIELDS = {"iterations": "iterations_per_epoch", "lr": "learning_rate", "workers": "num_workers"}


def warn_ignored_on_resume(ctx: typer.Context, run_dir, config) -> None:
    """With ``--resume`` a run continues with its own ``config.json`` (only ``--epochs`` may grow it): one warning
    line naming every option typed on this command line (``ctx``: the command's context) whose value differs from
    the run's, so that nobody believes a changed ``--lr`` or ``--val-fraction`` took effect. ``config``: the config
    the command line built."""
    try:
        saved = json.loads((Path(run_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return  # no readable config: the resume itself reports that
    if not isinstance(saved, dict) or os.environ.get("RANK", "0") != "0":
        return  # under torchrun: one line, from rank 0
    ignored = []
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name)
        if param.name in ("epochs", "dataset") or getattr(source, "name", "") != "COMMANDLINE":
            continue
        field = _CONFIG_FIELDS.get(param.name, param.name)
        if field not in saved or not hasattr(config, field):
            continue
        given = getattr(config, field)
        if given != saved[field]:
            ignored.append(f"{param.opts[0]} {short_repr(given)} (the run has {short_repr(saved[field])})")
    if ignored:
        typer.echo(f"warning: {run_dir}: --resume continues the run with its own settings; ignored: "
                   + ", ".join(ignored), err=True)
