"""pix2pix networks: the PatchGAN's 70x70 receptive field, the generator's output range, the adversarial losses."""

from __future__ import annotations

import pytest
import torch

from versaseg.losses.functional import adversarial_loss
from versaseg.networks.pix2pix import Discriminator, build_generator, patchgan_receptive_field


def test_patchgan_logit_sees_a_70x70_patch_in_2d():
    torch.manual_seed(0)
    discriminator = Discriminator(spatial_dims=2).eval()  # eval: batch norm uses running stats, no batch coupling
    assert patchgan_receptive_field(3, 4) == 70 and discriminator.receptive_field == 70
    x = torch.randn(1, 2, 128, 128, requires_grad=True)
    logits = discriminator(x)
    h, w = logits.shape[2:]
    logits[0, 0, h // 2, w // 2].backward()
    support = x.grad.abs().sum(dim=(0, 1)) > 0
    rows, columns = torch.nonzero(support.any(1)).flatten(), torch.nonzero(support.any(0)).flatten()
    assert rows.max() - rows.min() + 1 == 70
    assert columns.max() - columns.min() + 1 == 70
    assert support[rows.min():rows.max() + 1, columns.min():columns.max() + 1].float().mean() > 0.95


def test_discriminator_3d_gives_a_patch_map():
    discriminator = Discriminator(spatial_dims=3, channels=4)
    assert discriminator(torch.randn(2, 2, 32, 32, 32)).shape == (2, 1, 2, 2, 2)


def test_generator_keeps_shape_and_outputs_in_minus_one_one():
    generator = build_generator("unet", 2, {"depth": 3, "base_width": 4})
    assert generator.required_divisor == 4
    out = generator(10 * torch.randn(3, 1, 16, 24))
    assert out.shape == (3, 1, 16, 24)
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize("kind", ["bce", "lsgan"])
def test_adversarial_loss_prefers_correct_answers(kind):
    real_value, fake_value = (3.0, -3.0) if kind == "bce" else (1.0, 0.0)  # logits / least-squares targets
    confident_real = torch.full((2, 1, 4, 4), real_value)
    confident_fake = torch.full((2, 1, 4, 4), fake_value)
    assert adversarial_loss(confident_real, True, kind) < adversarial_loss(confident_fake, True, kind)
    assert adversarial_loss(confident_fake, False, kind) < adversarial_loss(confident_real, False, kind)
