"""Masked segmentation losses. Every loss takes a mask, so unannotated (ignore-label) voxels contribute nothing.

Shapes: logits (B, K, *spatial); target (B, 1, *spatial) int64 class indices (any value where mask is 0);
mask (B, 1, *spatial) float in {0, 1}; probs (B, K, *spatial) softmax outputs; voxel weights (B, 1 or K, *spatial);
class weights (K,). 2D and 3D alike. Dice-type terms pool the batch into one volume per class ("batch Dice").
The weights themselves come from :mod:`versaseg.losses.weighting`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_EPS = 1e-8


def one_hot(target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, 1, *spatial) int64 -> (B, K, *spatial) float."""
    return F.one_hot(target[:, 0].clamp(0, num_classes - 1), num_classes).movedim(-1, 1).to(torch.float32)


def masked_target(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The target with 0 wherever the mask is 0, so ignore values never index anything."""
    return (target * (mask > 0)).long()


def masked_one_hot(target: torch.Tensor, mask: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, K, *spatial) one-hot of the annotated voxels; all zeros where the mask is 0."""
    return one_hot(masked_target(target, mask), num_classes) * mask


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                         class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy over masked voxels (weighted mean if ``class_weights`` (K,) is given)."""
    target = masked_target(target, mask)
    voxel_weights = None if class_weights is None else class_weights[target]
    return weighted_cross_entropy(logits, target, mask, voxel_weights)


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                           voxel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted mean cross-entropy over masked voxels: sum(m w CE) / sum(m w); w: (B, 1, *spatial) or None (w = 1).

    The weights are constants (they come from the ground truth), so the loss keeps the scale of plain cross-entropy.
    """
    target = masked_target(target, mask)
    per_voxel = F.cross_entropy(logits, target[:, 0], reduction="none")
    weights = mask[:, 0] if voxel_weights is None else mask[:, 0] * voxel_weights[:, 0]
    return (per_voxel * weights).sum() / weights.sum().clamp_min(_EPS)


def focal_cross_entropy(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                        gamma: float) -> torch.Tensor:
    """Focal loss (Lin et al. 2017): mean over masked voxels of -(1 - p_t)^gamma log p_t, p_t the probability of the
    true class; the factor is differentiated through, as in the paper and MONAI's FocalLoss."""
    target = masked_target(target, mask)
    log_p = -F.cross_entropy(logits, target[:, 0], reduction="none")
    factor = (1 - log_p.exp()).clamp_min(1e-7).pow(gamma)  # clamp: no inf gradient at p_t = 1 for gamma < 1
    return -(factor * log_p * mask[:, 0]).sum() / mask.sum().clamp_min(_EPS)


def soft_dice(probs: torch.Tensor, onehot: torch.Tensor, mask: torch.Tensor, voxel_weights: torch.Tensor | None = None,
              class_weights: torch.Tensor | None = None, include_background: bool = True, smooth: float = 1e-5,
              batch: bool = True) -> torch.Tensor:
    """1 - soft Dice over masked voxels; onehot: (B, K, *spatial) (see :func:`masked_one_hot`).

    Per class k, with W the voxel weights (1 if None): I_k = sum(W p g), U_k = sum(W p) + sum(W g).
    Without ``class_weights``: 1 - mean_k (2 I_k + s) / (U_k + s) (MONAI DiceLoss). With class weights c (K,):
    the generalized Dice 1 - (2 sum_k c_k I_k + s) / (sum_k c_k U_k + s) (Sudre et al. 2017, MONAI
    GeneralizedDiceLoss). ``batch`` pools the batch into one volume per class (nnU-Net's default for 2D), which keeps
    classes absent from one sample from dominating.
    """
    probs = probs * mask
    onehot = onehot * mask
    if voxel_weights is not None:
        voxel_weights = voxel_weights.expand_as(probs)
    if not include_background:
        probs, onehot = probs[:, 1:], onehot[:, 1:]
        voxel_weights = None if voxel_weights is None else voxel_weights[:, 1:]
        class_weights = None if class_weights is None else class_weights[1:]
    dims = tuple(range(2, probs.ndim))
    if batch:
        dims = (0, *dims)
    weighted_probs = probs if voxel_weights is None else probs * voxel_weights
    weighted_onehot = onehot if voxel_weights is None else onehot * voxel_weights
    intersection = (weighted_probs * onehot).sum(dims)
    union = weighted_probs.sum(dims) + weighted_onehot.sum(dims)
    if class_weights is None:
        return 1 - ((2 * intersection + smooth) / (union + smooth)).mean()
    numerator = 2 * (class_weights * intersection).sum(-1) + smooth
    denominator = (class_weights * union).sum(-1) + smooth
    return 1 - (numerator / denominator).mean()


def masked_soft_dice(probs: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, include_background: bool = False,
                     smooth: float = 1e-5, batch_dice: bool = True) -> torch.Tensor:
    """1 - mean soft Dice over classes, counting only masked voxels (:func:`soft_dice` from class indices)."""
    onehot = masked_one_hot(target, mask, probs.shape[1])
    return soft_dice(probs, onehot, mask, include_background=include_background, smooth=smooth, batch=batch_dice)


def soft_tversky(probs: torch.Tensor, onehot: torch.Tensor, mask: torch.Tensor, alpha: float, beta: float,
                 include_background: bool = True, smooth: float = 1e-5) -> torch.Tensor:
    """1 - mean_k (TP + s) / (TP + alpha FP + beta FN + s) over masked voxels, batch pooled (Salehi et al. 2017;
    alpha weighs false positives, beta false negatives, as in MONAI's TverskyLoss)."""
    probs = probs * mask
    onehot = onehot * mask
    if not include_background:
        probs, onehot = probs[:, 1:], onehot[:, 1:]
    dims = (0, *range(2, probs.ndim))
    tp = (probs * onehot).sum(dims)
    fp = (probs * (1 - onehot)).sum(dims)
    fn = ((1 - probs) * onehot).sum(dims)
    return 1 - ((tp + smooth) / (tp + alpha * fp + beta * fn + smooth)).mean()


def boundary_term(probs: torch.Tensor, distance: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Boundary loss (Kervadec et al. 2019): mean over masked voxels and foreground classes of d_k(x) p_k(x), with
    d_k the signed distance (mm, negative inside) to class k's true boundary; its minimum puts probability exactly
    inside each class. distance: (B, K, *spatial)."""
    probs, distance = probs[:, 1:], distance[:, 1:]
    total = (probs * distance * mask).sum()
    return total / (mask.sum() * probs.shape[1]).clamp_min(_EPS)


def adversarial_loss(logits: torch.Tensor, real: bool, kind: str) -> torch.Tensor:
    """GAN loss on patch logits: ``bce`` (pix2pix's: binary cross-entropy with logits) or ``lsgan`` (least squares
    on the raw logits, as in the pix2pix/CycleGAN code's ``--gan_mode lsgan``); targets 1 (real) or 0 (fake)."""
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    raise ValueError(f"unknown adversarial loss {kind!r}")
