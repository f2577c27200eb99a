"""``versaseg networks``."""

from __future__ import annotations

import inspect

import typer

from versaseg.cli.common import user_errors


@user_errors
def networks() -> None:
    """List the registered networks (usable with --network) and their --network-kwargs options with defaults."""
    from versaseg.networks.registry import available_networks, network_options

    for name in available_networks():
        options = []
        for key, value in network_options(name).items():
            shown = "<required>" if value is inspect.Parameter.empty else repr(getattr(value, "value", value))
            options.append(f"{key}={shown}")
        typer.echo(f"{name}: {', '.join(options)}")
