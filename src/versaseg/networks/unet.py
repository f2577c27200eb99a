"""U-Net (Ronneberger 2015) in the nnU-Net form, for 2D slices and 3D patches.

Level 0 works at full resolution; each further level halves every spatial size with a strided first conv and doubles
the width (capped at ``max_width``). The decoder upsamples with transposed convs, concatenates the encoder's feature
map of the same level (the long skip), and convolves. A final 1x1 conv gives per-class logits. With
``residual=True`` the encoder's blocks are residual (the decoder's stay plain, nnU-Net ResEnc style).
"""

from __future__ import annotations

import torch
from torch import nn

from versaseg.errors import InputError
from versaseg.networks.blocks import Norm, UpBlock, check_positive_int, check_spatial_dims, conv_block, conv_nd
from versaseg.networks.registry import register_network


def level_widths(depth: int, base_width: int, max_width: int) -> tuple[int, ...]:
    """Feature widths per resolution level: ``base_width * 2**level`` capped at ``max_width``."""
    check_positive_int("depth", depth)
    check_positive_int("base_width", base_width)
    check_positive_int("max_width", max_width)
    return tuple(min(base_width * 2**level, max_width) for level in range(depth))


def check_input(x: torch.Tensor, spatial_dims: int, in_channels: int, divisor: int) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(B, in_channels, *spatial)`` with every spatial size divisible."""
    if x.ndim != spatial_dims + 2 or x.shape[1] != in_channels:
        raise ValueError(
            f"expected input of shape (B, {in_channels}, {', '.join(['*'] * spatial_dims)}), got {tuple(x.shape)}"
        )
    spatial = tuple(x.shape[2:])
    if any(s % divisor for s in spatial):
        raise ValueError(
            f"input spatial size {spatial} is not divisible by required_divisor={divisor}; "
            "pad the input to a multiple of it (the predictor does this)"
        )


@register_network("unet")
class UNet(nn.Module):
    """U-Net for 2D (``spatial_dims=2``) or 3D (``spatial_dims=3``) inputs.

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
        residual: residual conv blocks in the encoder instead of plain conv stacks. The decoder stays plain, as in
            nnU-Net's residual-encoder U-Net and MONAI's DynUNet: residual decoder blocks would need a 1x1
            projection after every skip concatenation, which cost ~18% of training time on CPU for no
            established gain.
        convs_per_level: 3x3 convs per level in encoder and decoder.
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
        convs_per_level: int = 2,
    ):
        super().__init__()
        self.spatial_dims = check_spatial_dims(spatial_dims)
        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        if not isinstance(residual, bool):
            raise InputError(f"residual must be true or false, got {residual!r}")
        self.widths = level_widths(depth, base_width, max_width)
        self.required_divisor: int = 2 ** (depth - 1)
        norm = Norm.parse(norm)
        n = convs_per_level
        self.encoder = nn.ModuleList(
            conv_block(spatial_dims, in_ch, out_ch, norm, n, 1 if level == 0 else 2, residual)
            for level, (in_ch, out_ch) in enumerate(zip((in_channels, *self.widths[:-1]), self.widths, strict=True))
        )
        self.decoder = nn.ModuleList(
            UpBlock(spatial_dims, self.widths[level + 1], self.widths[level], self.widths[level], norm, n, False)
            for level in reversed(range(depth - 1))
        )
        self.head = conv_nd(spatial_dims, self.widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, *spatial) -> (B, out_channels, *spatial)`` logits."""
        check_input(x, self.spatial_dims, self.in_channels, self.required_divisor)
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
        skips.pop()  # the deepest level feeds the decoder directly
        for block in self.decoder:
            x = block(x, skips.pop())
        return self.head(x)
