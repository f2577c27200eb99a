"""Full-Resolution Residual Network (Pohlen et al. 2017, "Full-Resolution Residual Networks for Semantic
Segmentation in Street Scenes"), for 2D slices and 3D patches.

Two streams run side by side. The *pooling stream* ``y`` goes down and up through ``depth`` resolution levels like a
U-Net's encoder and decoder (but without long skips); the *residual stream* ``z`` (``residual_width`` channels) stays
at the input's full resolution throughout. Every full-resolution residual unit (:class:`~versaseg.networks.frru.FRRU`)
reads ``z`` max-pooled to its level and adds a nearest-upsampled 1x1 projection of its output back into ``z``.

Layout (``L = depth - 1``, widths ``w_l = min(base_width * 2**l, max_width)``, ``rw = residual_width``, ``S`` the
input's spatial size)::

    stem:    2 x conv-norm-act at full resolution                          -> y (w_0, S)
    split:   1x1 conv of y                                                 -> z (rw, S)
    encoder, l = 1..L:   2x max-pool y, units_per_level FRRUs              -> y (w_l, S / 2**l), z (rw, S)
    decoder, l = L-1..1: 2x linear upsampling of y, units_per_level FRRUs  -> y (w_l, S / 2**l), z (rw, S)
    reduce:  1x1 conv of y at S / 2, then 2x linear upsampling             -> y (w_0, S)
    merge:   conv-norm-act of cat(y, z)                                    -> (w_0, S)
    head:    1x1 conv                                                      -> logits (out_channels, S)

Differences from the paper, all for CPU cost: the paper's residual-unit stem and merge (3 + 3 residual units) are
two and one conv-norm-act here; ``y`` is reduced to ``w_0`` channels by a 1x1 conv before its last upsampling (as the
U-Net's up-conv halves the width), so the full-resolution merge conv reads ``w_0 + rw`` channels instead of
``w_1 + rw``; and one unit per level by default (the paper has 2-4): each further unit doubles the convolutions of
every level below full resolution (in 2D, ``units_per_level=2`` costs about 2.2x a ``unet`` training step of the same
widths on CPU, ``1`` about 1.45x; docs/networks.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from versaseg.networks.blocks import (
    ConvBlock,
    ConvNormAct,
    Norm,
    PointwiseConv,
    check_positive_int,
    check_spatial_dims,
)
from versaseg.networks.frru import FRRU, DenseResidualStream, ResidualStream, max_pool
from versaseg.networks.registry import register_network
from versaseg.networks.unet import check_input, level_widths


def upsample2(y: torch.Tensor) -> torch.Tensor:
    """Bilinear (2D) / trilinear (3D) 2x upsampling: ``(B, C, *S) -> (B, C, *2S)``."""
    mode = "bilinear" if y.ndim == 4 else "trilinear"
    return F.interpolate(y, scale_factor=2, mode=mode, align_corners=False)


@register_network("frrn")
class FRRN(nn.Module):
    """Full-Resolution Residual Network for 2D (``spatial_dims=2``) or 3D (``spatial_dims=3``) inputs.

    ``forward(x: (B, in_channels, *spatial)) -> logits (B, out_channels, *spatial)``. Every spatial size must be a
    multiple of :attr:`required_divisor` ``= 2**(depth-1)``; otherwise ``forward`` raises ``ValueError``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (modalities).
        out_channels: output channels (classes, background included).
        depth: number of resolution levels of the pooling stream (``depth - 1`` poolings).
        base_width: pooling-stream feature maps at full resolution; doubled per level.
        max_width: cap on the pooling stream's width at any level.
        norm: 'instance', 'batch', 'group' (8 groups) or 'none'.
        residual_width: channels of the full-resolution residual stream.
        units_per_level: FRRUs per encoder level and per decoder level (levels 1..depth-1 in the encoder,
            depth-2..1 in the decoder; each unit is two 3x3 convs and a 1x1 conv). Each further unit adds two
            3x3 convs to every level below full resolution; see the module docstring for the cost.

    Attributes:
        stream_type: how the residual stream is computed: :class:`~versaseg.networks.frru.ResidualStream` (default)
            or the literal, slower :class:`~versaseg.networks.frru.DenseResidualStream` (same values and gradients).
    """

    stream_type: type[ResidualStream] | type[DenseResidualStream] = ResidualStream

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        depth: int = 4,
        base_width: int = 16,
        max_width: int = 256,
        norm: Norm | str = Norm.INSTANCE,
        residual_width: int = 32,
        units_per_level: int = 1,
    ):
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.widths = level_widths(depth, base_width, max_width)
        self.residual_width = rw = check_positive_int("residual_width", residual_width)
        self.units_per_level = n = check_positive_int("units_per_level", units_per_level)
        self.required_divisor: int = 2 ** (depth - 1)
        norm = Norm.parse(norm)
        w = self.widths

        def units(level: int, in_ch: int) -> nn.ModuleList:
            return nn.ModuleList(
                FRRU(spatial_dims, in_ch if u == 0 else w[level], rw, w[level], 2**level, norm) for u in range(n)
            )

        self.stem = ConvBlock(spatial_dims, in_channels, w[0], norm, n_convs=2)
        self.split = PointwiseConv(w[0], rw)
        self.encoder = nn.ModuleList(units(level, w[level - 1]) for level in range(1, depth))
        self.decoder = nn.ModuleList(units(level, w[level + 1]) for level in reversed(range(1, depth - 1)))
        self.reduce = PointwiseConv(w[1], w[0]) if depth > 1 else nn.Identity()
        self.merge = ConvNormAct(spatial_dims, w[0] + rw, w[0], norm)
        self.head = PointwiseConv(w[0], out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, *spatial) -> (B, out_channels, *spatial)`` logits."""
        check_input(x, self.spatial_dims, self.in_channels, self.required_divisor)
        y = self.stem(x)
        z = self.stream_type(self.split(y))
        for level in self.encoder:
            y = max_pool(y, 2)
            for unit in level:
                y, z = unit(y, z)
        for level in self.decoder:
            y = upsample2(y)
            for unit in level:
                y, z = unit(y, z)
        if self.encoder:
            y = upsample2(self.reduce(y))
        return self.head(self.merge(torch.cat([y, z.full()], dim=1)))
