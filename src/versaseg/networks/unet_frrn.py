"""U-Net with FRRN's full-resolution residual stream: long skips for context, a full-resolution stream for edges.

The U-Net part is :class:`~versaseg.networks.unet.UNet`'s: ``depth`` levels of widths
``w_l = min(base_width * 2**l, max_width)``, ``convs_per_level`` conv-norm-act per block, transposed-conv upsampling and
long-skip concatenation in the decoder. Added to it is the residual stream ``z`` of FRRN (``residual_width`` channels,
always at the input's full resolution): it is split off the first encoder level by a 1x1 conv, every encoder and
decoder block at a level ``l > 0`` is a full-resolution residual unit (:class:`~versaseg.networks.frru.FRRU`) that
also reads ``z`` max-pooled by ``2**l`` and adds a nearest-upsampled 1x1 projection of its output back into ``z``, and
the 1x1 head reads the last decoder block's output concatenated with ``z``.

Layout (``L = depth - 1``, ``rw = residual_width``, ``S`` the input's spatial size)::

    encoder 0:  conv block                                          -> x_0 (w_0, S)       = skip_0
    split:      1x1 conv of x_0                                     -> z (rw, S)
    encoder l = 1..L:   max-pool by 2, FRRU(cat(x, pool(z)))        -> x_l (w_l, S/2**l)  = skip_l;  z += up(1x1(x_l))
    decoder l = L-1..1: up-conv, FRRU(cat(up(x), skip_l, pool(z)))  -> (w_l, S/2**l);            z += up(1x1(.))
    decoder 0:  up-conv, cat(up(x), skip_0), conv block            -> (w_0, S)
    head:       1x1 conv of cat(decoder 0, z)                       -> logits (out_channels, S)

The encoder downsamples by max-pooling (as the original U-Net and FRRN do) rather than with nnU-Net's strided conv:
an FRRU needs its input at its own level's resolution to concatenate the pooled residual stream to it.
"""

from __future__ import annotations

import torch
from torch import nn

from versaseg.networks.blocks import Norm, PointwiseConv, UpBlock, check_positive_int, check_spatial_dims, conv_block
from versaseg.networks.frru import FRRU, DenseResidualStream, ResidualStream, Stream, max_pool
from versaseg.networks.registry import register_network
from versaseg.networks.unet import check_input, level_widths


class UpFRRU(nn.Module):
    """Decoder level ``l > 0``: 2x transposed-conv upsampling, long-skip concatenation, then an :class:`FRRU`.

    ``forward(x: (B, in_ch, *S'), skip: (B, skip_ch, *2S'), z: (B, z_ch, *S)) -> ((B, out_ch, *2S'), z')``
    with ``S = 2S' * scale``.
    """

    def __init__(
        self, spatial_dims: int, in_ch: int, skip_ch: int, z_ch: int, out_ch: int, scale: int, norm: Norm, n_convs: int
    ):
        super().__init__()
        cls = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
        self.up = cls(in_ch, skip_ch, kernel_size=2, stride=2, bias=False)
        self.unit = FRRU(spatial_dims, 2 * skip_ch, z_ch, out_ch, scale, norm, n_convs)

    def forward(self, x: torch.Tensor, skip: torch.Tensor, z: Stream) -> tuple[torch.Tensor, Stream]:
        """Upsample ``x`` to ``skip``'s size, concatenate, and run the FRRU with the residual stream ``z``."""
        return self.unit(torch.cat([self.up(x), skip], dim=1), z)


@register_network("unet-frrn")
class UNetFRRN(nn.Module):
    """U-Net plus a full-resolution residual stream, for 2D (``spatial_dims=2``) or 3D (``spatial_dims=3``) inputs.

    ``forward(x: (B, in_channels, *spatial)) -> logits (B, out_channels, *spatial)``. Every spatial size must be a
    multiple of :attr:`required_divisor` ``= 2**(depth-1)``; otherwise ``forward`` raises ``ValueError``.

    Args:
        spatial_dims: 2 or 3.
        in_channels: input channels (modalities).
        out_channels: output channels (classes, background included).
        depth: number of resolution levels (``depth - 1`` downsamplings).
        base_width: feature maps at full resolution; doubled per level.
        max_width: cap on the width of any level.
        norm: 'instance', 'batch', 'group' (8 groups) or 'none'.
        convs_per_level: 3x3 convs per level in encoder and decoder.
        residual_width: channels of the full-resolution residual stream.

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
        convs_per_level: int = 2,
        residual_width: int = 32,
    ):
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        self.widths = w = level_widths(depth, base_width, max_width)
        self.residual_width = rw = check_positive_int("residual_width", residual_width)
        n = check_positive_int("convs_per_level", convs_per_level)
        self.required_divisor: int = 2 ** (depth - 1)
        norm = Norm.parse(norm)
        self.stem = conv_block(spatial_dims, in_channels, w[0], norm, n, 1, False)
        self.split = PointwiseConv(w[0], rw)
        self.encoder = nn.ModuleList(
            FRRU(spatial_dims, w[level - 1], rw, w[level], 2**level, norm, n) for level in range(1, depth)
        )
        self.decoder = nn.ModuleList(
            UpFRRU(spatial_dims, w[level + 1], w[level], rw, w[level], 2**level, norm, n)
            for level in reversed(range(1, depth - 1))
        )
        self.up0 = UpBlock(spatial_dims, w[1], w[0], w[0], norm, n, False) if depth > 1 else None
        # the 1x1 head over cat(decoder output, z), as two 1x1 convs summed (the same map); z's never materialises
        self.head = PointwiseConv(w[0], out_channels)
        self.head_residual = PointwiseConv(rw, out_channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, *spatial) -> (B, out_channels, *spatial)`` logits."""
        check_input(x, self.spatial_dims, self.in_channels, self.required_divisor)
        x = self.stem(x)
        z = self.stream_type(self.split(x))
        skips = [x]
        for unit in self.encoder:
            x, z = unit(max_pool(x, 2), z)
            skips.append(x)
        skips.pop()  # the deepest level feeds the decoder directly
        for block in self.decoder:
            x, z = block(x, skips.pop(), z)
        if self.up0 is not None:
            x = self.up0(x, skips.pop())
        return self.head(x) + z.project(self.head_residual)
