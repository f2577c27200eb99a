"""What a network computes: its stages' feature maps (forward hooks), their statistics, and Grad-CAM maps.

A :class:`Layer` names one feature map of the network: a module (``torch`` ``named_modules`` key) and which part of
its output to read (``out``: the tensor it returns; ``y`` / ``z``: the pooling stream and the full-resolution residual
stream of an FRRN unit, which returns both), plus a plain-words role. :func:`default_layers` picks the stages of the
built-in networks (encoder levels = the skips, bottleneck, decoder levels, residual stream) and, for any other
network, every module that directly holds a convolution. The pseudo-layer ``output`` is the network's logits.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from versaseg.errors import InputError

OUTPUT = "output"


@dataclass(frozen=True)
class Layer:
    """One feature map: ``name`` (what ``--layers`` matches, what files are named after), ``module`` (a
    ``named_modules`` key; '' for the network's output), ``part`` ('out', 'y' or 'z') and ``role`` (plain words)."""

    name: str
    module: str
    part: str
    role: str

    @property
    def file_stem(self) -> str:
        return self.name.replace(":", "_").replace("/", "_")


def _resolution(level: int) -> str:
    return "full resolution" if level == 0 else f"1/{2 ** level} resolution"


def default_layers(network: nn.Module) -> list[Layer]:
    """The stages of ``network`` in forward order, ending with the ``output`` logits."""
    from versaseg.networks.frrn import FRRN
    from versaseg.networks.unet import UNet
    from versaseg.networks.unet_frrn import UNetFRRN

    layers: list[Layer] = []
    if isinstance(network, UNet):
        depth = len(network.encoder)
        for level in range(depth):
            role = (f"bottleneck: deepest encoder level ({_resolution(level)}), widest context" if level == depth - 1
                    and depth > 1 else f"encoder level {level} ({_resolution(level)}); the skip connection to "
                    f"decoder level {level}")
            layers.append(Layer(f"encoder.{level}", f"encoder.{level}", "out", role))
        for index in range(len(network.decoder)):
            level = depth - 2 - index
            layers.append(Layer(f"decoder.{index}", f"decoder.{index}", "out",
                                f"decoder level {level} ({_resolution(level)}): upsampled context joined with the "
                                f"skip from encoder level {level}"))
    elif isinstance(network, FRRN):
        depth = len(network.encoder) + 1
        layers.append(Layer("stem", "stem", "out", "stem: first convolutions (full resolution)"))
        layers.append(Layer("split", "split", "out", "residual stream at its start (full resolution)"))
        for index, units in enumerate(network.encoder):
            level = index + 1
            last = f"encoder.{index}.{len(units) - 1}"
            kind = "bottleneck: deepest pooling-stream level" if level == depth - 1 else f"pooling stream, encoder " \
                f"level {level}"
            layers.append(Layer(last, last, "y", f"{kind} ({_resolution(level)})"))
            layers.append(Layer(f"{last}:z", last, "z", f"residual stream after encoder level {level} (full "
                                                         "resolution)"))
        for index, units in enumerate(network.decoder):
            level = depth - 2 - index
            last = f"decoder.{index}.{len(units) - 1}"
            layers.append(Layer(last, last, "y", f"pooling stream, decoder level {level} ({_resolution(level)})"))
            layers.append(Layer(f"{last}:z", last, "z", f"residual stream after decoder level {level} (full "
                                                         "resolution)"))
        layers.append(Layer("merge", "merge", "out", "merge of the pooling and residual streams (full resolution)"))
    elif isinstance(network, UNetFRRN):
        depth = len(network.encoder) + 1
        layers.append(Layer("stem", "stem", "out", "encoder level 0 (full resolution); the skip to decoder level 0"))
        layers.append(Layer("split", "split", "out", "residual stream at its start (full resolution)"))
        for index in range(len(network.encoder)):
            level = index + 1
            kind = ("bottleneck: deepest encoder level" if level == depth - 1
                    else f"encoder level {level}; the skip to decoder level {level}")
            layers.append(Layer(f"encoder.{index}", f"encoder.{index}", "y", f"{kind} ({_resolution(level)})"))
            layers.append(Layer(f"encoder.{index}:z", f"encoder.{index}", "z",
                                f"residual stream after encoder level {level} (full resolution)"))
        for index in range(len(network.decoder)):
            level = depth - 2 - index
            layers.append(Layer(f"decoder.{index}", f"decoder.{index}", "y",
                                f"decoder level {level} ({_resolution(level)}): context joined with the skip"))
            layers.append(Layer(f"decoder.{index}:z", f"decoder.{index}", "z",
                                f"residual stream after decoder level {level} (full resolution)"))
        if network.up0 is not None:
            layers.append(Layer("up0", "up0", "out", "decoder level 0 (full resolution): context joined with the "
                                                     "skip from the stem"))
    else:
        conv_types = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)
        for name, module in network.named_modules():
            if name and any(isinstance(child, conv_types) for child in module.children()):
                layers.append(Layer(name, name, "out", f"block {type(module).__name__}"))
    layers.append(Layer(OUTPUT, "", "out", "the logits, one map per class (before softmax)"))
    return layers


def all_module_layers(network: nn.Module) -> list[Layer]:
    """Every named module of ``network`` as a layer reading its output (for ``--layers`` names and patterns)."""
    return [Layer(name, name, "out", type(module).__name__) for name, module in network.named_modules() if name]


def select_layers(network: nn.Module, patterns: Sequence[str]) -> list[Layer]:
    """Layers matching ``patterns`` (names or shell-style globs such as ``encoder.*``), in the order given.

    A pattern is matched against the default stages first; if it matches none of them, against every module name.
    Empty ``patterns``: the default stages. Raises InputError for a pattern that matches nothing.
    """
    stages = default_layers(network)
    if not patterns:
        return stages
    modules = all_module_layers(network)
    chosen: list[Layer] = []
    for pattern in patterns:
        matches = [layer for layer in stages if fnmatch.fnmatchcase(layer.name, pattern)]
        if not matches:
            matches = [layer for layer in modules if fnmatch.fnmatchcase(layer.name, pattern)]
        if not matches:
            raise InputError(f"--layers: no layer of this {type(network).__name__} matches '{pattern}'; "
                             "list them with `versaseg explain RUN --list-layers`")
        chosen += [layer for layer in matches if layer not in chosen]
    return chosen


def prepare_network(network: nn.Module) -> nn.Module:
    """Eval mode and no in-place activations (so a captured feature map is not overwritten by the next layer)."""
    for module in network.modules():
        if getattr(module, "inplace", False):
            module.inplace = False
    return network.eval()


def _read_part(output, layer: Layer) -> torch.Tensor:
    if layer.part == "z":
        stream = output[1]
        return stream.full() if hasattr(stream, "full") else stream
    if layer.part == "y" or isinstance(output, (tuple, list)):
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise InputError(f"--layers: layer '{layer.name}' does not output a feature map "
                         f"({type(output).__name__}); pick another")
    return output


def capture(network: nn.Module, x: torch.Tensor, layers: Sequence[Layer]) -> dict[str, torch.Tensor]:
    """Run ``network`` on ``x (1, C, *S)`` and return ``{layer name: feature map (1, C_l, *S_l)}`` (CPU float32).

    A module called more than once keeps its last call's output. Raises InputError for a module that is never
    called (a container such as a ``ModuleList``) or does not return a feature map.
    """
    modules = dict(network.named_modules())
    maps: dict[str, torch.Tensor] = {}
    groups: dict[str, list[Layer]] = {}
    for layer in layers:
        if layer.module:
            groups.setdefault(layer.module, []).append(layer)
    handles = []

    def hook_for(group: list[Layer]):
        def hook(_module, _inputs, output):
            for layer in group:
                maps[layer.name] = _read_part(output, layer).detach().float().cpu().clone()
        return hook

    try:
        for name, group in groups.items():
            handles.append(modules[name].register_forward_hook(hook_for(group)))
        with torch.no_grad():
            logits = network(x)
    finally:
        for handle in handles:
            handle.remove()
    for layer in layers:
        if layer.module == "":
            maps[layer.name] = logits.detach().float().cpu().clone()
        elif layer.name not in maps:
            raise InputError(f"--layers: module '{layer.module}' is not called in the forward pass (a container?); "
                             "pick one of its children")
    return maps


def layer_channels(network: nn.Module, x: torch.Tensor, layers: Sequence[Layer]) -> dict[str, int]:
    """``{layer name: channels}`` of each layer's feature map in one forward pass of ``x (1, C, *S)``, plus
    :data:`OUTPUT`; a layer whose module returns no feature map (or is never called) is left out."""
    modules = dict(network.named_modules())
    channels: dict[str, int] = {}
    handles = []

    def record(layer: Layer):
        def hook(_module, _inputs, output):
            try:
                channels[layer.name] = int(_read_part(output, layer).shape[1])
            except (InputError, IndexError, TypeError, AttributeError):
                pass
        return hook

    for layer in layers:
        if layer.module:
            handles.append(modules[layer.module].register_forward_hook(record(layer)))
    try:
        with torch.no_grad():
            channels[OUTPUT] = int(network(x).shape[1])
    finally:
        for handle in handles:
            handle.remove()
    return channels


def activation_stats(feature_map: np.ndarray) -> dict:
    """Statistics of a feature map ``(C, *S)``: mean, std, min, max, mean |x|, fraction of exact zeros, fraction of
    non-positive values (inactive units of a (leaky) ReLU), channels without any positive value (dead here)."""
    data = np.asarray(feature_map, dtype=np.float64)
    per_channel_max = data.reshape(data.shape[0], -1).max(1)
    return {"channels": int(data.shape[0]), "size": "x".join(str(s) for s in data.shape[1:]),
            "mean": float(data.mean()), "std": float(data.std()), "min": float(data.min()),
            "max": float(data.max()), "mean_abs": float(np.abs(data).mean()),
            "fraction_zero": float((data == 0).mean()), "fraction_inactive": float((data <= 0).mean()),
            "dead_channels": int((per_channel_max <= 0).sum())}


def top_channels(feature_map: np.ndarray, count: int) -> list[int]:
    """Indices of the ``count`` channels of ``(C, *S)`` with the largest variance, largest first."""
    variance = np.asarray(feature_map, dtype=np.float64).reshape(feature_map.shape[0], -1).var(1)
    return [int(i) for i in np.argsort(-variance, kind="stable")[:count]]


def cam_module(network: nn.Module, layer: Layer) -> str:
    """The module Grad-CAM hooks for ``layer``: the layer's own module when it returns a tensor; for an FRRN unit's
    pooling stream (``y``), the unit's convolution block (which computes exactly ``y``)."""
    modules = dict(network.named_modules())
    if layer.module == "" or layer.part == "z":
        raise InputError(f"--cam-layer: Grad-CAM needs a convolutional layer, not '{layer.name}'")
    if layer.part == "y":
        for suffix in (".convs", ".unit.convs"):
            if layer.module + suffix in modules:
                return layer.module + suffix
    return layer.module


def default_cam_layer(network: nn.Module, layers: Sequence[Layer] | None = None) -> Layer:
    """Grad-CAM's default layer: the first decoder stage (one level below the bottleneck: context, but finer than
    the bottleneck), else the last encoder stage, else the last non-output stage."""
    stages = [layer for layer in (layers or default_layers(network)) if layer.module and layer.part != "z"]
    for prefix in ("decoder.", "encoder."):
        found = [layer for layer in stages if layer.name.startswith(prefix)]
        if found:
            return found[0] if prefix == "decoder." else found[-1]
    if not stages:
        raise InputError(f"no layer of {type(network).__name__} suits Grad-CAM")
    return stages[-1]


def _min_max(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of ``(B, 1, *S)`` to [0, 1] (0 for a constant map). MONAI's default post-processing maps
    (min, max) to (1, 0), i.e. flips the magnitudes (Project-MONAI/tutorials#1796), so it is replaced."""
    flat = maps.reshape(maps.shape[0], -1)
    low = flat.min(1).values.view(-1, *[1] * (maps.ndim - 1))
    span = (flat.max(1).values - flat.min(1).values).view(-1, *[1] * (maps.ndim - 1))
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


def region_score(logits: torch.Tensor, class_index: int) -> torch.Tensor:
    """Seg-Grad-CAM's class score (Vinogradova et al. 2020): the class's logits where the network predicts the class
    (arg-max), zero elsewhere; everywhere if it predicts the class nowhere. ``logits (B, K, *S)`` -> ``(B, *S)``
    (MONAI sums it before back-propagating)."""
    scores = logits[:, class_index]
    region = logits.detach().argmax(1) == class_index
    return scores * region if bool(region.any()) else scores


class GradCam:
    """MONAI's Grad-CAM (``monai.visualize.GradCAM``) for one segmentation class.

    The class score is :func:`region_score` (replacing MONAI's default, the class's logits summed over the whole
    input, which lights up wherever the class is merely unlikely), so the map shows which regions of ``module``'s
    feature maps made the network predict the class where it did. One instance per (network, module); MONAI keeps
    its hooks on the module.
    """

    def __init__(self, network: nn.Module, module: str):
        from monai.visualize import GradCAM

        self.cam = GradCAM(nn_module=network, target_layers=module, postprocessing=_min_max)
        self.cam.nn_module.class_score = region_score

    def __call__(self, x: torch.Tensor, class_index: int) -> np.ndarray:
        """``x (1, C, *S)`` -> map ``(*S)`` in [0, 1]: MONAI's rectified, gradient-weighted sum of the layer's
        channels, upsampled to the input, then min-max scaled (1 = most important)."""
        with torch.enable_grad():
            result = self.cam(x, class_idx=int(class_index))
        return result[0, 0].detach().float().cpu().numpy()
