"""Named losses. ``build_loss(name, num_classes, options)`` returns a :class:`Loss`, called as
``loss(logits, target, mask)``, or ``loss(logits, target, mask, distance)`` when ``loss.needs_distance``.

Names: ``ce`` and ``dice`` with a weighting suffix (``_inverse``, ``_median``, ``_focal``, ``_dtm``, ``_dpt``; none
for the plain loss), plus ``tversky``, ``dice_boundary`` and ``dice_ce`` (the default). Options (``--loss-kwargs``)
are checked by :func:`loss_options`. This module imports no torch, so the CLI can list the losses cheaply; the maths
is in :mod:`versaseg.losses.functional` and :mod:`versaseg.losses.weighting`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from versaseg.errors import InputError

if TYPE_CHECKING:
    import torch

WEIGHTINGS = ("none", "inverse", "median", "focal", "dtm", "dpt")
DISTANCE_WEIGHTINGS = ("dtm", "dpt")

# option -> (default, kind, lowest allowed value, lowest is allowed, description)
OPTIONS: dict[str, tuple[Any, str, float, bool, str]] = {
    "gamma": (2.0, "number", 0.0, True, "focal exponent"),
    "distance_scale_mm": (10.0, "number", 0.0, False, "distance (mm) over which dtm/dpt weights go from 1 to 2"),
    "include_background": (True, "bool", 0.0, True, "Dice-type terms include the background class"),
    "smooth": (1e-5, "number", 0.0, True, "Dice smoothing added to numerator and denominator"),
    "alpha": (0.3, "number", 0.0, True, "Tversky weight of false positives"),
    "beta": (0.7, "number", 0.0, True, "Tversky weight of false negatives"),
    "boundary_weight": (0.01, "number", 0.0, True, "weight of the boundary term (per mm) added to Dice"),
}


@dataclass(frozen=True)
class LossInfo:
    description: str
    options: tuple[str, ...]
    needs_distance: bool = False


_DICE_OPTIONS = ("include_background", "smooth")
_WEIGHTING_OPTIONS = {"none": (), "inverse": (), "median": (), "focal": ("gamma",), "dtm": ("distance_scale_mm",),
                      "dpt": ("distance_scale_mm",)}
_CE_TEXT = {
    "none": "cross-entropy, mean over annotated voxels",
    "inverse": "cross-entropy, class weights 1/(class voxels in the batch)",
    "median": "cross-entropy, class weights median frequency / class frequency (Eigen & Fergus 2015)",
    "focal": "focal loss: cross-entropy x (1 - p_true)^gamma (Lin et al. 2017; gamma 2)",
    "dtm": "cross-entropy, voxel weights 1 + min(d/s, 1) growing with the distance d to the true boundary (s 10 mm)",
    "dpt": "cross-entropy x distance penalty 2 - min(d/s, 1), highest at the true boundary (Caliva et al. 2019)",
}
_DICE_TEXT = {
    "none": "soft Dice, mean over classes",
    "inverse": "generalized Dice: class weights 1/(class voxels in the batch)^2 (Sudre et al. 2017)",
    "median": "generalized Dice with median-frequency class weights",
    "focal": "soft Dice with voxel weights |onehot - p|^gamma: wrongly predicted voxels count more (gamma 2)",
    "dtm": "soft Dice, voxel weights 1 + min(d/s, 1) growing with the distance d to the true boundary (s 10 mm)",
    "dpt": "soft Dice, voxel weights 2 - min(d/s, 1), highest at the true boundary (Caliva et al. 2019)",
}


def _table() -> dict[str, LossInfo]:
    table = {"dice_ce": LossInfo("soft Dice (foreground classes, batch Dice) + cross-entropy, nnU-Net's default", ())}
    for family, texts, common in (("ce", _CE_TEXT, ()), ("dice", _DICE_TEXT, _DICE_OPTIONS)):
        for weighting in WEIGHTINGS:
            name = family if weighting == "none" else f"{family}_{weighting}"
            table[name] = LossInfo(texts[weighting], common + _WEIGHTING_OPTIONS[weighting],
                                   weighting in DISTANCE_WEIGHTINGS)
    table["tversky"] = LossInfo("Tversky loss 1 - TP/(TP + alpha FP + beta FN) (Salehi et al. 2017; alpha 0.3, "
                                "beta 0.7)", ("alpha", "beta", *_DICE_OPTIONS))
    table["dice_boundary"] = LossInfo("soft Dice + boundary_weight x boundary loss (mean of signed distance (mm) x "
                                      "probability over foreground classes, Kervadec et al. 2019; weight 0.01)",
                                      ("boundary_weight", *_DICE_OPTIONS), True)
    return table


LOSSES: dict[str, LossInfo] = _table()


def available_losses() -> list[str]:
    return list(LOSSES)


def describe_losses(separator: str = "; ") -> str:
    """One entry per loss, for --help."""
    return separator.join(f"{name}: {info.description}" for name, info in LOSSES.items())


def describe_options() -> str:
    """The --loss-kwargs options with their defaults, for --help."""
    return "; ".join(f"{name} ({text}, default {json.dumps(default)})"
                     for name, (default, _, _, _, text) in OPTIONS.items())


def loss_options(name: str, options: dict | None = None) -> dict[str, Any]:
    """The options of loss ``name``: its defaults updated with ``options``. Raises InputError for an unknown loss,
    an option the loss does not take, or a value of the wrong type or out of range."""
    if name not in LOSSES:
        raise InputError(f"unknown loss '{name}'; valid: {', '.join(LOSSES)}")
    if not isinstance(options, dict | None):
        raise InputError("--loss-kwargs must be a JSON object")
    allowed = LOSSES[name].options
    resolved = {key: OPTIONS[key][0] for key in allowed}
    for key, value in (options or {}).items():
        if key not in allowed:
            valid = f"valid: {', '.join(allowed)}" if allowed else "it takes none"
            raise InputError(f"unknown --loss-kwargs option '{key}' for loss '{name}'; {valid}")
        _, kind, lowest, inclusive, _ = OPTIONS[key]
        if kind == "bool":
            if not isinstance(value, bool):
                raise InputError(f"--loss-kwargs option '{key}' must be true or false, got {value!r}")
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"--loss-kwargs option '{key}' must be a number, got {value!r}")
            if value < lowest or (value == lowest and not inclusive):
                bound = f">= {lowest:g}" if inclusive else f"> {lowest:g}"
                raise InputError(f"--loss-kwargs option '{key}' must be {bound}, got {value}")
            value = float(value)
        resolved[key] = value
    if name == "tversky" and resolved["alpha"] + resolved["beta"] <= 0:
        raise InputError("--loss-kwargs options 'alpha' + 'beta' must be > 0")
    return resolved


class Loss:
    """A named loss: ``loss(logits (B, K, *S), target (B, 1, *S) int64, mask (B, 1, *S) float[, distance
    (B, K, *S) float mm]) -> scalar``. ``needs_distance`` says whether the trainer must pass the distance maps."""

    def __init__(self, name: str, options: dict[str, Any], fn: Callable, needs_distance: bool):
        self.name, self.options, self.needs_distance = name, options, needs_distance
        self._fn = fn

    def __call__(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                 distance: torch.Tensor | None = None) -> torch.Tensor:
        if self.needs_distance and distance is None:
            raise ValueError(f"loss '{self.name}' needs the batch's distance maps")
        return self._fn(logits, target, mask, distance)

    def __repr__(self) -> str:
        return f"Loss({self.name!r}, {self.options})"


def build_loss(name: str, num_classes: int, options: dict | None = None) -> Loss:
    """The loss named ``name`` with ``options`` (see :func:`loss_options`); raises InputError listing valid names."""
    resolved = loss_options(name, options)
    return Loss(name, resolved, _make(name, resolved), LOSSES[name].needs_distance)


def _make(name: str, o: dict[str, Any]) -> Callable:
    from versaseg.losses import functional as f
    from versaseg.losses import weighting as w

    if name == "dice_ce":
        return lambda logits, target, mask, distance: (
            f.masked_cross_entropy(logits, target, mask) + f.masked_soft_dice(logits.softmax(1), target, mask))
    if name == "tversky":
        return lambda logits, target, mask, distance: f.soft_tversky(
            logits.softmax(1), f.masked_one_hot(target, mask, logits.shape[1]), mask, o["alpha"], o["beta"],
            o["include_background"], o["smooth"])
    if name == "dice_boundary":
        def dice_boundary(logits, target, mask, distance):
            probs = logits.softmax(1)
            onehot = f.masked_one_hot(target, mask, logits.shape[1])
            dice = f.soft_dice(probs, onehot, mask, include_background=o["include_background"], smooth=o["smooth"])
            return dice + o["boundary_weight"] * f.boundary_term(probs, distance, mask)
        return dice_boundary
    family, _, weighting = name.partition("_")
    weighting = weighting or "none"

    def ce(logits, target, mask, distance):
        if weighting == "none":
            return f.masked_cross_entropy(logits, target, mask)
        if weighting == "focal":
            return f.focal_cross_entropy(logits, target, mask, o["gamma"])
        clean = f.masked_target(target, mask)
        if weighting in DISTANCE_WEIGHTINGS:
            voxel = w.distance_voxel_weights(distance, weighting, o["distance_scale_mm"]).gather(1, clean)
            return f.weighted_cross_entropy(logits, clean, mask, voxel)
        onehot = f.masked_one_hot(clean, mask, logits.shape[1])
        classes = w.inverse_frequency_weights(onehot, 1.0) if weighting == "inverse" \
            else w.median_frequency_weights(onehot, mask)
        return f.masked_cross_entropy(logits, clean, mask, classes)

    def dice(logits, target, mask, distance):
        probs = logits.softmax(1)
        onehot = f.masked_one_hot(target, mask, logits.shape[1])
        voxel = classes = None
        if weighting == "inverse":
            classes = w.inverse_frequency_weights(onehot, 2.0)
        elif weighting == "median":
            classes = w.median_frequency_weights(onehot, mask)
        elif weighting == "focal":
            voxel = w.focal_voxel_weights(probs, onehot, o["gamma"])
        elif weighting in DISTANCE_WEIGHTINGS:
            voxel = w.distance_voxel_weights(distance, weighting, o["distance_scale_mm"])
        return f.soft_dice(probs, onehot, mask, voxel, classes, o["include_background"], o["smooth"])

    return ce if family == "ce" else dice
