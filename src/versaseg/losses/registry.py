"""Named losses. ``build_loss(name, num_classes)`` returns a callable ``loss(logits, target, mask) -> scalar``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from versaseg.errors import InputError
from versaseg.losses.functional import masked_cross_entropy, masked_soft_dice

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def _dice_ce(logits, target, mask):
    return masked_cross_entropy(logits, target, mask) + masked_soft_dice(logits.softmax(1), target, mask)


def _ce(logits, target, mask):
    return masked_cross_entropy(logits, target, mask)


def _dice(logits, target, mask):
    return masked_soft_dice(logits.softmax(1), target, mask)


LOSSES: dict[str, tuple[LossFn, str]] = {
    "dice_ce": (_dice_ce, "soft Dice (foreground classes, batch Dice) + cross-entropy, nnU-Net's default"),
    "ce": (_ce, "cross-entropy"),
    "dice": (_dice, "soft Dice over foreground classes"),
}


def available_losses() -> list[str]:
    return list(LOSSES)


def describe_losses() -> str:
    """One line per loss, for --help."""
    return "; ".join(f"{name}: {text}" for name, (_, text) in LOSSES.items())


def build_loss(name: str, num_classes: int) -> LossFn:
    """The loss named ``name``; raises InputError listing valid names."""
    if name not in LOSSES:
        raise InputError(f"unknown loss '{name}'; valid: {', '.join(LOSSES)}")
    return LOSSES[name][0]
