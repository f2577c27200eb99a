"""The full-resolution residual unit (FRRU) of Pohlen et al. 2017 and its residual stream, shared by ``frrn`` and
``unet-frrn``.

Two streams meet in an FRRU: the *pooling stream* ``y`` at the unit's resolution level (``scale = 2**level`` times
coarser than the input) and the *residual stream* ``z``, a few channels at the input's full resolution. The unit
max-pools ``z`` down to ``y``'s resolution, concatenates it to ``y`` and convolves (conv-norm-act x ``n_convs``) to the
new ``y``; a 1x1 conv of the new ``y`` is upsampled (nearest) back to full resolution and added to ``z``. ``z`` thus
never leaves full resolution and never passes through a normalisation or activation: every level writes into it, and
it carries precise localisation to the output while the pooling stream carries context.

Two interchangeable implementations of ``z`` exist, with the same values and gradients:

* :class:`DenseResidualStream` does literally the above: one full-resolution tensor, max-pooled and updated at full
  resolution by every unit. It is the reference (the tests check the other against it).
* :class:`ResidualStream`, which the networks use, exploits two identities. A nearest-upsampled residual is constant
  on each ``scale`` x ``scale`` block, so for ``f`` dividing ``scale``, ``maxpool(z + up_scale(r), f) ==
  maxpool(z, f) + up_{scale/f}(r)`` (exactly, in floating point too: rounding is monotonic); and max-pools compose,
  ``maxpool(z, f*g) == maxpool(maxpool(z, f), g)``. With every unit at ``scale >= min_scale`` (2 in both networks:
  no unit works at full resolution), ``z == base + up_{min_scale}(delta)`` where ``delta`` collects all the units'
  residuals at ``1 / min_scale`` resolution. Each unit then pools and updates at that resolution (a quarter of the
  full-resolution work in 2D, an eighth in 3D) and ``z`` is materialised once, when the network's output layer reads
  it. On CPU the full-resolution max-pool and update passes of the dense stream cost as much as the unit's
  convolutions. A 1x1 conv reading ``z`` (a network's output layer) need not materialise it at all, see
  :meth:`ResidualStream.project`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from versaseg.networks.blocks import ConvBlock, Norm, PointwiseConv, check_positive_int


def max_pool(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Max-pool ``(B, C, *S)`` by ``scale`` in every spatial dimension: ``(B, C, *S / scale)``."""
    if scale == 1:
        return x
    pool = F.max_pool2d if x.ndim == 4 else F.max_pool3d
    return pool(x, kernel_size=scale, stride=scale)


def _blocked_shapes(full: torch.Size, coarse: torch.Size, scale: int) -> tuple[list[int], list[int], tuple[int, ...]]:
    """Shapes viewing a full-resolution map as ``(B, C, n_1, scale, ..., n_{d-1}, scale, S_d)`` and a coarse map
    (already repeated along the last dimension) as ``(B, C, n_1, 1, ..., n_{d-1}, 1, S_d)``, plus the block dims."""
    full_shape, coarse_shape = list(full[:2]), list(full[:2])
    for n in coarse[2:-1]:
        full_shape += [n, scale]
        coarse_shape += [n, 1]
    full_shape.append(full[-1])
    coarse_shape.append(full[-1])
    block_dims = tuple(3 + 2 * i for i in range(len(coarse) - 3))
    return full_shape, coarse_shape, block_dims


class _UpsampleAdd(torch.autograd.Function):
    """``z + nearest_upsample(r, scale)`` without materialising the upsampled map; see :func:`upsample_add`."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, r: torch.Tensor, scale: int) -> torch.Tensor:
        ctx.scale, ctx.coarse = scale, r.shape
        full_shape, coarse_shape, _ = _blocked_shapes(z.shape, r.shape, scale)
        # repeating along the last (contiguous) dimension first keeps the broadcast add's inner loop long
        repeated = r.repeat_interleave(scale, dim=-1).reshape(coarse_shape)
        return (z.reshape(full_shape) + repeated).view(z.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        full_shape, _, block_dims = _blocked_shapes(grad.shape, ctx.coarse, ctx.scale)
        summed = grad.reshape(full_shape).sum(dim=block_dims) if block_dims else grad
        return grad, summed.unflatten(-1, (ctx.coarse[-1], ctx.scale)).sum(-1), None


def upsample_add(z: torch.Tensor, r: torch.Tensor, scale: int) -> torch.Tensor:
    """``z + F.interpolate(r, scale_factor=scale, mode="nearest")``: ``z (B, C, *S)``, ``r (B, C, *S / scale)``.

    One broadcast add over a blocked view of ``z``; the backward pass sums ``r``'s gradient over the blocks. Forward
    plus backward take about half the CPU time of interpolating and adding, and the upsampled map is never allocated.
    """
    if scale == 1:
        return z + r
    return _UpsampleAdd.apply(z, r, scale)


class ResidualStream:
    """The residual stream ``z (B, C, *S)``, held as ``base + nearest_upsample(delta, min_scale)``.

    Immutable: :meth:`add` returns a new stream. Pooling and adding at scales that are multiples of ``min_scale`` work
    on ``delta (B, C, *S / min_scale)`` only (see the module docstring); other scales are correct too, but materialise
    ``z``.
    """

    def __init__(self, base: torch.Tensor, min_scale: int = 2):
        self.base = base
        self.min_scale = check_positive_int("min_scale", min_scale)
        self.delta: torch.Tensor | None = None
        self._base_pooled: torch.Tensor | None = None  # maxpool(base, min_scale), computed once and shared

    @property
    def shape(self) -> torch.Size:
        """``z``'s shape: ``(B, C, *S)`` at full resolution."""
        return self.base.shape

    def pooled(self, scale: int) -> torch.Tensor:
        """``maxpool(z, scale)``: ``(B, C, *S / scale)``."""
        m = self.min_scale
        if scale % m:
            return max_pool(self.full(), scale)
        if self._base_pooled is None:
            self._base_pooled = max_pool(self.base, m)
        coarse = self._base_pooled if self.delta is None else self._base_pooled + self.delta
        return max_pool(coarse, scale // m)

    def add(self, r: torch.Tensor, scale: int) -> ResidualStream:
        """The stream ``z + nearest_upsample(r, scale)``; ``r`` is ``(B, C, *S / scale)``."""
        m = self.min_scale
        if scale % m:
            return ResidualStream(upsample_add(self.full(), r, scale), m)
        new = ResidualStream(self.base, m)
        new._base_pooled = self._base_pooled
        f = scale // m
        if self.delta is None:
            new.delta = r if f == 1 else F.interpolate(r, scale_factor=f, mode="nearest")
        else:
            new.delta = upsample_add(self.delta, r, f)
        return new

    def full(self) -> torch.Tensor:
        """``z`` at full resolution, ``(B, C, *S)``."""
        return self.base if self.delta is None else upsample_add(self.base, self.delta, self.min_scale)

    def project(self, conv: PointwiseConv) -> torch.Tensor:
        """``conv(z)`` for a bias-free 1x1 conv, ``(B, conv.out_features, *S)``, without materialising ``z``.

        ``conv`` is linear, so ``conv(base + up(delta)) == conv(base) + up(conv(delta))``: the upsampling works on
        ``conv``'s output channels instead of ``z``'s.
        """
        if conv.bias is not None:
            raise ValueError("project() needs a bias-free PointwiseConv")
        out = conv(self.base)
        return out if self.delta is None else upsample_add(out, conv(self.delta), self.min_scale)


class DenseResidualStream:
    """Reference residual stream: ``z`` is one full-resolution tensor, pooled and updated at full resolution.

    Same interface, values and gradients as :class:`ResidualStream` (up to float summation order), at several times
    its cost; a network uses it when its ``stream_type`` is set to this class.
    """

    def __init__(self, base: torch.Tensor):
        self.z = base

    @property
    def shape(self) -> torch.Size:
        """``z``'s shape: ``(B, C, *S)`` at full resolution."""
        return self.z.shape

    def pooled(self, scale: int) -> torch.Tensor:
        """``maxpool(z, scale)``: ``(B, C, *S / scale)``."""
        return max_pool(self.z, scale)

    def add(self, r: torch.Tensor, scale: int) -> DenseResidualStream:
        """The stream ``z + nearest_upsample(r, scale)``; ``r`` is ``(B, C, *S / scale)``."""
        up = r if scale == 1 else F.interpolate(r, scale_factor=scale, mode="nearest")
        return DenseResidualStream(self.z + up)

    def full(self) -> torch.Tensor:
        """``z`` at full resolution, ``(B, C, *S)``."""
        return self.z

    def project(self, conv: PointwiseConv) -> torch.Tensor:
        """``conv(z)`` for a bias-free 1x1 conv, ``(B, conv.out_features, *S)``."""
        if conv.bias is not None:
            raise ValueError("project() needs a bias-free PointwiseConv")
        return conv(self.z)


Stream = ResidualStream | DenseResidualStream


class FRRU(nn.Module):
    """Full-resolution residual unit: ``forward(y, z) -> (y', z')``.

    ``y: (B, in_ch, *S / scale)`` and the residual stream ``z`` of shape ``(B, z_ch, *S)`` give
    ``y' = convs(cat(y, maxpool(z, scale)))``, ``(B, out_ch, *S / scale)``, with ``n_convs`` x (3x3 conv, norm,
    LeakyReLU), and ``z' = z + nearest_upsample(conv1x1(y'), scale)``, ``(B, z_ch, *S)``.
    """

    def __init__(
        self, spatial_dims: int, in_ch: int, z_ch: int, out_ch: int, scale: int, norm: Norm | str, n_convs: int = 2
    ):
        super().__init__()
        self.scale = check_positive_int("scale", scale)
        self.convs = ConvBlock(spatial_dims, in_ch + z_ch, out_ch, norm, n_convs=n_convs)
        self.to_residual = PointwiseConv(out_ch, z_ch)

    def forward(self, y: torch.Tensor, z: Stream) -> tuple[torch.Tensor, Stream]:
        """Update both streams; see the class docstring for shapes."""
        y = self.convs(torch.cat([y, z.pooled(self.scale)], dim=1))
        return y, z.add(self.to_residual(y), self.scale)
