import torch
from monai.losses import DiceLoss

from versaseg.losses.functional import masked_cross_entropy, masked_soft_dice
from versaseg.losses.registry import build_loss


def _random_case(seed=0, shape=(2, 3, 8, 9)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g)
    target = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=g)
    return logits, target


def test_cross_entropy_matches_torch_when_unmasked():
    logits, target = _random_case()
    mask = torch.ones_like(target, dtype=torch.float32)
    expected = torch.nn.functional.cross_entropy(logits, target[:, 0])
    assert torch.allclose(masked_cross_entropy(logits, target, mask), expected, atol=1e-6)


def test_soft_dice_matches_monai_batch_dice():
    logits, target = _random_case(1)
    mask = torch.ones_like(target, dtype=torch.float32)
    ours = masked_soft_dice(logits.softmax(1), target, mask, include_background=False, smooth=1e-5)
    monai = DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True, smooth_nr=1e-5,
                     smooth_dr=1e-5)(logits, target)
    assert torch.allclose(ours, monai, atol=1e-5)


def test_masked_voxels_do_not_affect_loss_or_gradients():
    logits, target = _random_case(2)
    mask = torch.zeros_like(target, dtype=torch.float32)
    mask[..., :4] = 1
    loss = build_loss("dice_ce", 3)
    changed_logits = logits.clone()
    changed_logits[..., 4:] = torch.randn_like(changed_logits[..., 4:]) * 10
    changed_target = target.clone()
    changed_target[..., 4:] = 7  # an ignore value: must not matter (or crash) where masked out
    a = loss(logits, target, mask)
    b = loss(changed_logits, changed_target, mask)
    assert torch.allclose(a, b, atol=1e-6)
    x = logits.clone().requires_grad_(True)
    loss(x, changed_target, mask).backward()
    assert torch.count_nonzero(x.grad[..., 4:]) == 0
    assert torch.count_nonzero(x.grad[..., :4]) > 0


def test_cross_entropy_equals_mean_over_annotated_voxels():
    logits, target = _random_case(3)
    mask = (torch.rand(target.shape, generator=torch.Generator().manual_seed(9)) > 0.5).float()
    per_voxel = torch.nn.functional.cross_entropy(logits, target[:, 0], reduction="none")
    expected = per_voxel[mask[:, 0] > 0].mean()
    assert torch.allclose(masked_cross_entropy(logits, target, mask), expected, atol=1e-6)
