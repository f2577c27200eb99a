"""Networks by name: ``build_network("unet", spatial_dims=2, in_channels=1, out_channels=4, depth=4)``.

A network is any callable ``factory(spatial_dims, in_channels, out_channels, **kwargs) -> nn.Module`` (usually the
module class) decorated with :func:`register_network`. The registry imports the built-in network modules
(``_BUILTIN_MODULES``) itself before answering any query, so ``from versaseg.networks.registry import build_network``
is all a caller needs; a new network plugs in by adding its module there. The import is deferred to the first query so
that network modules may import each other (and this registry) in any order without a circular-import failure.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from versaseg.errors import InputError

Factory = Callable[..., nn.Module]
F = TypeVar("F", bound=Factory)

_REGISTRY: dict[str, Factory] = {}
_POSITIONAL = ("spatial_dims", "in_channels", "out_channels")
_BUILTIN_MODULES = (
    "versaseg.networks.unet",
    "versaseg.networks.monai_unet",
    "versaseg.networks.frrn",
    "versaseg.networks.unet_frrn",
)


def register_network(name: str) -> Callable[[F], F]:
    """Decorator registering ``factory`` under ``name``; a name can be registered once (re-import is fine)."""

    def decorator(factory: F) -> F:
        existing = _REGISTRY.get(name)
        if existing is not None and _qualname(existing) != _qualname(factory):
            raise ValueError(f"network name {name!r} is already registered to {_qualname(existing)}")
        _REGISTRY[name] = factory
        return factory

    return decorator


def available_networks() -> list[str]:
    """Registered network names, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def network_options(name: str) -> dict[str, Any]:
    """The keyword options of network ``name`` with their defaults (``inspect.Parameter.empty`` if required)."""
    params = _keyword_params(_factory(name))
    return {p.name: p.default for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}


def build_network(name: str, spatial_dims: int, in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
    """Build network ``name`` mapping ``(B, in_channels, *spatial)`` to logits ``(B, out_channels, *spatial)``.

    Raises :class:`InputError` for an unknown name (listing the valid ones) or an unknown keyword option (naming it
    and listing the valid ones).
    """
    factory = _factory(name)
    params = _keyword_params(factory)
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        valid = [p.name for p in params]
        for key in kwargs:
            if key not in valid:
                raise InputError(f"network {name!r} has no option {key!r}; valid options: {', '.join(valid)}")
    return factory(spatial_dims, in_channels, out_channels, **kwargs)


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)  # a no-op after the first time


def _factory(name: str) -> Factory:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"unknown network {name!r}; valid networks: {', '.join(available_networks())}") from None


def _keyword_params(factory: Factory) -> list[inspect.Parameter]:
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = list(inspect.signature(target).parameters.values())
    skip = ("self", *_POSITIONAL)
    return [p for p in params if p.name not in skip and p.kind is not inspect.Parameter.VAR_POSITIONAL]


def _qualname(factory: Factory) -> str:
    return f"{factory.__module__}.{factory.__qualname__}"
