"""pix2pix networks: a registered versaseg U-Net generator with a tanh output, and MONAI's PatchGAN discriminator.

The discriminator is conditional: it sees the (source, target-or-synthetic) pair stacked as two channels and answers
with a map of real/fake logits, one per overlapping input patch. With ``num_layers`` = 3 (three stride-2 4x4 convs,
then two stride-1 4x4 convs) each logit sees a 70x70 patch in 2D (70^3 in 3D): Isola et al.'s 70x70 PatchGAN.
"""

from __future__ import annotations

import torch
from torch import nn

from versaseg.networks.registry import build_network


class Generator(nn.Module):
    """``forward(source (B, 1, *spatial) in [-1, 1]) -> synthetic target (B, 1, *spatial) in [-1, 1]``.

    Spatial sizes must be multiples of :attr:`required_divisor` (the wrapped network's).
    """

    def __init__(self, network: nn.Module):
        super().__init__()
        self.net = network
        self.required_divisor: int = int(getattr(network, "required_divisor", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


class Discriminator(nn.Module):
    """``forward(pair (B, 2, *spatial)) -> patch logits (B, 1, *spatial')`` (no activation).

    Wraps :class:`monai.networks.nets.PatchDiscriminator` (which returns every layer's output) and keeps the last.
    """

    def __init__(self, spatial_dims: int, num_layers: int = 3, channels: int = 64, in_channels: int = 2):
        super().__init__()
        from monai.networks.nets import PatchDiscriminator

        self.num_layers, self.kernel_size = num_layers, 4
        self.net = PatchDiscriminator(spatial_dims=spatial_dims, channels=channels, in_channels=in_channels,
                                      out_channels=1, num_layers_d=num_layers, kernel_size=self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[-1]

    @property
    def receptive_field(self) -> int:
        return patchgan_receptive_field(self.num_layers, self.kernel_size)


def patchgan_receptive_field(num_layers: int = 3, kernel_size: int = 4) -> int:
    """Receptive field (pixels per side) of one output logit of MONAI's PatchDiscriminator.

    Layers: an initial stride-2 conv, ``num_layers - 1`` more stride-2 convs, one stride-1 conv, a stride-1 final
    conv, all ``kernel_size`` wide. ``patchgan_receptive_field(3, 4) == 70``.
    """
    strides = [2] * num_layers + [1, 1]
    field = 1
    for stride in reversed(strides):
        field = (field - 1) * stride + kernel_size
    return field


def patchgan_min_input(num_layers: int = 3, kernel_size: int = 4) -> int:
    """The smallest input size (per axis) MONAI's PatchDiscriminator accepts: every conv (padding 1) needs a padded
    input of at least ``kernel_size``. ``patchgan_min_input(3, 4) == 24``."""
    size = 1
    while not _patchgan_fits(size, num_layers, kernel_size):
        size += 1
    return size


def _patchgan_fits(size: int, num_layers: int, kernel_size: int) -> bool:
    for stride in [2] * num_layers + [1, 1]:
        if size + 2 < kernel_size:
            return False
        size = (size + 2 - kernel_size) // stride + 1
    return size >= 1


def build_generator(network: str, spatial_dims: int, network_kwargs: dict) -> Generator:
    """The generator: ``network`` (a registered name, e.g. the versaseg U-Net) with 1 input and 1 output channel,
    then tanh."""
    return Generator(build_network(network, spatial_dims, 1, 1, **network_kwargs))


def build_discriminator(spatial_dims: int, num_layers: int, channels: int) -> Discriminator:
    return Discriminator(spatial_dims, num_layers, channels)
