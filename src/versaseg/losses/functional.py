"""Masked segmentation losses. Every loss takes a mask, so unannotated (ignore-label) voxels contribute nothing.

Shapes: logits (B, K, *spatial); target (B, 1, *spatial) int64 class indices (any value where mask is 0);
mask (B, 1, *spatial) float in {0, 1}.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def one_hot(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, 1, *spatial) int64 -> (B, K, *spatial) float."""
    return F.one_hot(target[:, 0].clamp(0, num_classes - 1), num_classes).movedim(-1, 1).to(torch.float32)


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                         class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy over masked voxels (weighted mean if ``class_weights`` (K,) is given)."""
    target = (target * (mask > 0)).long()
    per_voxel = F.cross_entropy(logits, target[:, 0], weight=class_weights, reduction="none")
    weights = mask[:, 0]
    if class_weights is not None:
        weights = weights * class_weights[target[:, 0]]
    return (per_voxel * mask[:, 0]).sum() / weights.sum().clamp_min(1e-8)


def masked_soft_dice(probs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, include_background: bool = False,
                     smooth: float = 1e-5, batch_dice: bool = True) -> torch.Tensor:
    """1 - mean soft Dice over classes, counting only masked voxels. probs: (B, K, *spatial) softmax outputs.

    ``batch_dice`` pools the batch into one volume per class (nnU-Net's default for 2D), which keeps classes absent
    from one sample from dominating.
    """
    onehot = one_hot((target * (mask > 0)).long(), probs.shape[1]) * mask
    probs = probs * mask
    if not include_background:
        probs, onehot = probs[:, 1:], onehot[:, 1:]
    dims = tuple(range(2, probs.ndim))
    if batch_dice:
        dims = (0, *dims)
    intersection = (probs * onehot).sum(dims)
    denominator = probs.sum(dims) + onehot.sum(dims)
    dice = (2 * intersection + smooth) / (denominator + smooth)
    return 1 - dice.mean()
