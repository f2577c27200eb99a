"""Loss weightings for class imbalance (after Sugino et al., Healthcare 2021): class weights from the batch's class
frequencies, voxel weights from the prediction (focal) or from the distance to the true boundary (dtm, dpt).

Class frequencies are computed per batch over annotated voxels only (mask > 0). A class absent from the batch takes
the largest weight of the present classes (MONAI GeneralizedDiceLoss's rule): finite, and predicting it is still
penalised by the Dice terms. All weights are constants (no gradient flows through them).

Shapes: onehot (B, K, *spatial) masked one-hot; mask (B, 1, *spatial); distance (B, K, *spatial) signed mm.
"""

from __future__ import annotations

import torch


def _fill_absent(weights: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    if not present.any():
        return torch.ones_like(weights)
    weights = torch.where(present, weights, torch.zeros_like(weights))
    return torch.where(present, weights, weights.max())


def inverse_frequency_weights(onehot: torch.Tensor, power: float) -> torch.Tensor:
    """(K,) weights 1 / (annotated voxels of class k in the batch)^power, normalised to sum 1 (the normalisation
    cancels in every loss that uses them, and keeps Dice smoothing negligible). power 1 for CE, 2 for generalized
    Dice (Sudre et al. 2017)."""
    counts = onehot.detach().sum((0, *range(2, onehot.ndim)))
    present = counts > 0
    weights = _fill_absent(counts.clamp_min(1).pow(-power), present)
    return weights / weights.sum()


def median_frequency_weights(onehot: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(K,) median frequency balancing (Eigen & Fergus 2015): w_k = median_j(f_j) / f_k, where f_k is the number of
    annotated class-k voxels divided by the number of annotated voxels of the batch samples in which k occurs, and the
    median runs over the classes present in the batch."""
    spatial = tuple(range(2, onehot.ndim))
    per_sample = onehot.detach().sum(spatial)  # (B, K)
    annotated = mask.detach().sum(spatial)  # (B, 1)
    occurs = per_sample > 0
    present = occurs.any(0)
    frequency = per_sample.sum(0) / (annotated * occurs).sum(0).clamp_min(1)
    if not present.any():
        return torch.ones_like(frequency)
    median = torch.quantile(frequency[present], 0.5)
    return _fill_absent(median / frequency.clamp_min(1e-12), present)


def focal_voxel_weights(probs: torch.Tensor, onehot: torch.Tensor, gamma: float) -> torch.Tensor:
    """(B, K, *spatial) |g - p|^gamma: 1 - p_t per class, the focal factor as constant voxel weights for Dice (voxels
    predicted wrongly count more; perfectly predicted ones not at all)."""
    return (onehot - probs.detach()).abs().pow(gamma)


def distance_voxel_weights(distance: torch.Tensor, kind: str, scale_mm: float) -> torch.Tensor:
    """(B, K, *spatial) weights from the distance |d_k| (mm) to class k's true boundary, with n = min(|d_k| / s, 1):

    - ``dtm`` (distance-transform map): 1 + n, from 1 at the boundary up to 2 at s mm and beyond: errors far from the
      true boundary (gross false positives/negatives, what Hausdorff distances measure) cost up to twice as much.
    - ``dpt`` (distance penalty term, Calivà et al. 2019): 1 + (1 - n), the inverted distance map: 2 at the boundary,
      falling to 1 at s mm: the hard-to-segment boundary region counts up to twice as much. Calivà normalises by each
      map's maximum; a fixed scale s keeps the weights independent of the field of view and the crop.
    """
    n = (distance.abs() / scale_mm).clamp(max=1.0)
    if kind == "dtm":
        return 1 + n
    if kind == "dpt":
        return 2 - n
    raise ValueError(f"unknown distance weighting '{kind}'")
