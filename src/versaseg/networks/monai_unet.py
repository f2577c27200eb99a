"""MONAI's ``UNet`` behind our U-Net's options: the anchor for benchmarks and ``--network monai-unet``.

The mapping: ``depth`` levels of widths ``base_width * 2**level`` (capped at ``max_width``) become MONAI's
``channels``, with ``strides=(2,) * (depth - 1)``; ``residual=True`` becomes ``num_res_units=2`` (else 0). MONAI's
defaults stay otherwise (PReLU, 3x3 up-convs, and its first conv is strided, so its widest-resolution features are at
half the input resolution; the output is at full resolution).
"""

from __future__ import annotations

import math

import torch
from monai.networks.nets import UNet as _MonaiUNet
from torch import nn

from versaseg.errors import InputError
from versaseg.networks.blocks import Norm, check_positive_int, check_spatial_dims
from versaseg.networks.registry import register_network
from versaseg.networks.unet import check_input, level_widths


def _monai_norm(norm: Norm, channels: tuple[int, ...]) -> tuple | str | None:
    if norm is Norm.NONE:
        return None
    if norm is Norm.GROUP:  # MONAI normalises every width (and out_channels) with one group count
        common = math.gcd(*channels)
        return ("group", {"num_groups": max(g for g in range(1, 9) if common % g == 0)})
    return norm.value


@register_network("monai-unet")
class MonaiUNet(nn.Module):
    """``monai.networks.nets.UNet`` configured from U-Net options; same call contract as :class:`UNet`.

    ``forward(x: (B, in_channels, *spatial)) -> logits (B, out_channels, *spatial)``; spatial sizes must be multiples
    of :attr:`required_divisor` ``= 2**(depth-1)`` (``ValueError`` otherwise).
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        depth: int = 4,
        base_width: int = 16,
        max_width: int = 256,
        norm: Norm | str = Norm.INSTANCE,
        residual: bool = False,
    ):
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        if not isinstance(residual, bool):
            raise InputError(f"residual must be true or false, got {residual!r}")
        self.widths = level_widths(depth, base_width, max_width)
        if depth < 2:
            raise InputError(f"monai-unet needs depth >= 2, got {depth}")
        self.required_divisor: int = 2 ** (depth - 1)
        self.net = _MonaiUNet(
            spatial_dims,
            in_channels,
            out_channels,
            channels=self.widths,
            strides=(2,) * (depth - 1),
            num_res_units=2 if residual else 0,
            norm=_monai_norm(Norm.parse(norm), (*self.widths, out_channels)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, *spatial) -> (B, out_channels, *spatial)`` logits."""
        check_input(x, self.spatial_dims, self.in_channels, self.required_divisor)
        return self.net(x)
