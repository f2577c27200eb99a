"""Building blocks shared by the networks: normalisation choice, conv blocks, upsampling.

All blocks work in 2D and 3D (``spatial_dims``) and take/return channel-first tensors ``(B, C, *spatial)``.
Convolutions followed by a normalisation carry no bias (the norm's shift makes it redundant), which saves work.
"""

from __future__ import annotations

from enum import Enum

import torch
from torch import nn

from versaseg.errors import InputError

NEGATIVE_SLOPE = 0.01  # LeakyReLU slope, as in nnU-Net


class Norm(str, Enum):
    """Normalisation layer after each convolution."""

    INSTANCE = "instance"
    BATCH = "batch"
    GROUP = "group"
    NONE = "none"

    @classmethod
    def parse(cls, value: str | Norm) -> Norm:
        """Accept a member or its plain-string value (case-insensitive); fail listing the valid values."""
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            valid = ", ".join(m.value for m in cls)
            raise InputError(f"unknown norm {value!r}; valid values: {valid}") from None


def check_positive_int(name: str, value: int) -> int:
    """Return ``value`` if it is an integer >= 1 (not a bool), else raise :class:`InputError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be an integer >= 1, got {value!r}")
    return value


def check_spatial_dims(spatial_dims: int) -> int:
    """Return ``spatial_dims`` if it is 2 or 3, else raise :class:`InputError`."""
    if spatial_dims not in (2, 3):
        raise InputError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return spatial_dims


def conv_nd(
    spatial_dims: int, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, bias: bool = True
) -> nn.Module:
    """A 2D/3D convolution with 'same' padding for odd kernels (``(B, in_ch, *S) -> (B, out_ch, *S / stride)``)."""
    cls = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
    return cls(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias)


def norm_layer(norm: Norm | str, spatial_dims: int, channels: int) -> nn.Module:
    """The normalisation layer for ``channels`` feature maps (shape-preserving).

    Group norm uses 8 groups of channels (fewer when ``channels`` is not a multiple of 8: the largest divisor <= 8).
    """
    norm = Norm.parse(norm)
    if norm is Norm.INSTANCE:
        cls = nn.InstanceNorm2d if spatial_dims == 2 else nn.InstanceNorm3d
        return cls(channels, affine=True)
    if norm is Norm.BATCH:
        cls = nn.BatchNorm2d if spatial_dims == 2 else nn.BatchNorm3d
        return cls(channels)
    if norm is Norm.GROUP:
        groups = max(g for g in range(1, 9) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


class ConvNormAct(nn.Sequential):
    """3x3(x3) conv -> norm -> LeakyReLU. ``(B, in_ch, *S) -> (B, out_ch, *S / stride)``.

    With ``act=False`` the activation is left out (used as the last conv of a residual block).
    """

    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int, norm: Norm | str, stride: int = 1, act: bool = True):
        norm = Norm.parse(norm)
        layers = [
            conv_nd(spatial_dims, in_ch, out_ch, 3, stride=stride, bias=norm is Norm.NONE),
            norm_layer(norm, spatial_dims, out_ch),
        ]
        if act:
            layers.append(nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True))
        super().__init__(*layers)


class ConvBlock(nn.Sequential):
    """``n_convs`` x (conv, norm, LeakyReLU); the first conv carries the stride (nnU-Net style downsampling).

    ``(B, in_ch, *S) -> (B, out_ch, *S / stride)``.
    """

    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int, norm: Norm | str, n_convs: int = 2, stride: int = 1):
        check_positive_int("convs_per_level", n_convs)
        super().__init__(
            *(
                ConvNormAct(spatial_dims, in_ch if i == 0 else out_ch, out_ch, norm, stride=stride if i == 0 else 1)
                for i in range(n_convs)
            )
        )


class ResidualBlock(nn.Module):
    """Residual conv block: ``act(body(x) + skip(x))``.

    ``body`` is ``n_convs`` convs (the first strided, the last without activation); ``skip`` is the identity when
    shape is unchanged, else a strided 1x1 conv + norm. ``(B, in_ch, *S) -> (B, out_ch, *S / stride)``.
    """

    def __init__(self, spatial_dims: int, in_ch: int, out_ch: int, norm: Norm | str, n_convs: int = 2, stride: int = 1):
        super().__init__()
        check_positive_int("convs_per_level", n_convs)
        norm = Norm.parse(norm)
        self.body = nn.Sequential(
            *(
                ConvNormAct(
                    spatial_dims,
                    in_ch if i == 0 else out_ch,
                    out_ch,
                    norm,
                    stride=stride if i == 0 else 1,
                    act=i < n_convs - 1,
                )
                for i in range(n_convs)
            )
        )
        if stride == 1 and in_ch == out_ch:
            self.skip: nn.Module = nn.Identity()
        else:
            self.skip = nn.Sequential(
                conv_nd(spatial_dims, in_ch, out_ch, 1, stride=stride, bias=norm is Norm.NONE),
                norm_layer(norm, spatial_dims, out_ch),
            )
        self.act = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_ch, *S) -> (B, out_ch, *S / stride)``."""
        return self.act(self.body(x) + self.skip(x))


def conv_block(
    spatial_dims: int, in_ch: int, out_ch: int, norm: Norm | str, n_convs: int, stride: int, residual: bool
) -> nn.Module:
    """A :class:`ResidualBlock` if ``residual`` else a plain :class:`ConvBlock`."""
    cls = ResidualBlock if residual else ConvBlock
    return cls(spatial_dims, in_ch, out_ch, norm, n_convs=n_convs, stride=stride)


class UpBlock(nn.Module):
    """Decoder level: 2x transposed-conv upsampling, concatenation of the long skip, then a conv block.

    ``forward(x: (B, in_ch, *S), skip: (B, skip_ch, *2S)) -> (B, out_ch, *2S)``.
    """

    def __init__(
        self, spatial_dims: int, in_ch: int, skip_ch: int, out_ch: int, norm: Norm | str, n_convs: int, residual: bool
    ):
        super().__init__()
        cls = nn.ConvTranspose2d if spatial_dims == 2 else nn.ConvTranspose3d
        self.up = cls(in_ch, skip_ch, kernel_size=2, stride=2, bias=False)
        self.convs = conv_block(spatial_dims, 2 * skip_ch, out_ch, norm, n_convs, 1, residual)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """Upsample ``x`` to ``skip``'s size, concatenate along channels, convolve."""
        return self.convs(torch.cat([self.up(x), skip], dim=1))


class PointwiseConv(nn.Linear):
    """1x1(x1) convolution computed as one batched matrix product: ``(B, in_ch, *S) -> (B, out_ch, *S)``.

    The same map as ``conv_nd(spatial_dims, in_ch, out_ch, 1)`` (and the same initialisation, ``nn.Linear``'s), but
    on CPU, oneDNN's 1x1 convolutions on channel-first maps with few channels run up to 4x slower than this ``baddbmm``
    (forward + backward), which matters at full resolution. Works for any number of spatial dimensions; the weight
    is stored as ``(out_ch, in_ch)``.
    """

    def __init__(self, in_ch: int, out_ch: int, bias: bool = True):
        super().__init__(in_ch, out_ch, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_ch, *S) -> (B, out_ch, *S)``."""
        batch, _, *spatial = x.shape
        flat = x.reshape(batch, self.in_features, -1)
        weight = self.weight.expand(batch, -1, -1)
        if self.bias is None:
            out = torch.bmm(weight, flat)
        else:
            out = torch.baddbmm(self.bias[None, :, None], weight, flat)
        return out.view(batch, self.out_features, *spatial)
