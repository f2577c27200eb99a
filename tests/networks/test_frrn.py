"""FRRN and U-Net+FRRN specifics: the full-resolution residual stream, its fast implementation, the hybrid's skips.

The registry-wide contract (shapes, backward, save/load, errors) is in test_networks.py. Tiny widths and inputs.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from versaseg.errors import InputError
from versaseg.networks.blocks import PointwiseConv
from versaseg.networks.frru import FRRU, DenseResidualStream, ResidualStream, upsample_add
from versaseg.networks.registry import build_network

SMALL = {"depth": 4, "base_width": 4, "max_width": 16, "residual_width": 3}
NAMES = ["frrn", "unet-frrn"]


@pytest.fixture(params=NAMES)
def name(request) -> str:
    return request.param


@pytest.fixture(params=[2, 3], ids=["2d", "3d"])
def spatial_dims(request) -> int:
    return request.param


def small(name: str, spatial_dims: int, in_ch: int = 2, out_ch: int = 3, seed: int = 0, **kwargs) -> nn.Module:
    torch.manual_seed(seed)
    return build_network(name, spatial_dims, in_ch, out_ch, **{**SMALL, **kwargs})


def odd_input(spatial_dims: int, channels: int = 2, batch: int = 1, dtype=torch.float32) -> torch.Tensor:
    """Divisible by 8 but not square/cubic and not a power of two."""
    size = (24, 40) if spatial_dims == 2 else (8, 16, 24)
    return torch.randn(batch, channels, *size, generator=torch.Generator().manual_seed(3), dtype=dtype)


def frrus(net: nn.Module) -> list[FRRU]:
    return [m for m in net.modules() if isinstance(m, FRRU)]


# --- building blocks -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_upsample_add_matches_interpolate_and_add(spatial_dims, scale):
    g = torch.Generator().manual_seed(0)
    shape = (2, 3, 8, 16) if spatial_dims == 2 else (2, 3, 8, 16, 4)
    z = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    r = torch.randn(*shape[:2], *(s // scale for s in shape[2:]), generator=g, dtype=torch.float64, requires_grad=True)
    out_grad = torch.randn(shape, generator=g, dtype=torch.float64)

    fast = upsample_add(z, r, scale)
    grads_fast = torch.autograd.grad(fast, (z, r), out_grad)
    up = r if scale == 1 else F.interpolate(r, scale_factor=scale, mode="nearest")
    reference = z + up
    grads_ref = torch.autograd.grad(reference, (z, r), out_grad)

    torch.testing.assert_close(fast, reference)
    for a, b in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("bias", [True, False])
def test_pointwise_conv_is_a_1x1_conv(spatial_dims, bias):
    conv = PointwiseConv(5, 3, bias=bias).double()
    x = torch.randn(2, 5, *([6] * spatial_dims), dtype=torch.float64)
    kernel = conv.weight.reshape(3, 5, *([1] * spatial_dims))
    expected = (F.conv2d if spatial_dims == 2 else F.conv3d)(x, kernel, conv.bias)
    torch.testing.assert_close(conv(x), expected)


@pytest.mark.parametrize("min_scale", [1, 2, 4])
def test_residual_stream_matches_the_dense_reference(spatial_dims, min_scale):
    """Pooling and adding in any order of scales, including scales that are not multiples of min_scale."""
    g = torch.Generator().manual_seed(0)
    shape = (1, 2, *([16] * spatial_dims))
    base = torch.randn(shape, generator=g, dtype=torch.float64)
    fast, dense = ResidualStream(base, min_scale=min_scale), DenseResidualStream(base)
    for scale in (2, 4, 8, 4, 2, 1, 2):
        torch.testing.assert_close(fast.pooled(scale), dense.pooled(scale))
        r = torch.randn(*shape[:2], *(s // scale for s in shape[2:]), generator=g, dtype=torch.float64)
        fast, dense = fast.add(r, scale), dense.add(r, scale)
        assert fast.shape == dense.shape == shape
    torch.testing.assert_close(fast.full(), dense.full())
    head = PointwiseConv(2, 3, bias=False).double()
    torch.testing.assert_close(fast.project(head), dense.project(head))
    with pytest.raises(ValueError, match="bias-free"):
        fast.project(PointwiseConv(2, 3))


@pytest.mark.parametrize("units", [1, 2])
def test_networks_give_the_same_outputs_and_gradients_with_the_dense_stream(name, spatial_dims, units):
    """The fast stream is an exact rewrite of the literal full-resolution one (float64, up to summation order)."""
    kwargs = {"units_per_level": units} if name == "frrn" else {"convs_per_level": units}
    net = small(name, spatial_dims, **kwargs).double()
    x = odd_input(spatial_dims, batch=2, dtype=torch.float64)
    results = []
    for stream_type in (ResidualStream, DenseResidualStream):
        net.stream_type = stream_type
        net.zero_grad()
        out = net(x)
        out.square().mean().backward()
        results.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    (out_fast, grads_fast), (out_dense, grads_dense) = results
    torch.testing.assert_close(out_fast, out_dense)
    for a, b in zip(grads_fast, grads_dense, strict=True):
        torch.testing.assert_close(a, b)


# --- the residual stream in the networks -----------------------------------------------------------------------------


@pytest.mark.parametrize("stream_type", [ResidualStream, DenseResidualStream])
def test_residual_stream_stays_at_full_resolution(name, spatial_dims, stream_type):
    net = small(name, spatial_dims)
    net.stream_type = stream_type
    x = odd_input(spatial_dims)
    full = (1, SMALL["residual_width"], *x.shape[2:])
    seen = []

    def check(unit, args, output):
        (y_in, z_in), (y_out, z_out) = args, output
        assert z_in.shape == z_out.shape == full
        if stream_type is DenseResidualStream:  # z really is one full-resolution tensor, before and after
            assert z_in.z.shape == z_out.z.shape == full
        coarse = tuple(s // unit.scale for s in x.shape[2:])
        assert y_in.shape[2:] == y_out.shape[2:] == coarse
        seen.append(unit.scale)

    for unit in frrus(net):
        unit.register_forward_hook(check)
    net(x)
    assert seen == [2, 4, 8, 4, 2]  # every level below full resolution, down and up


def test_residual_stream_layers_get_gradients(name, spatial_dims):
    net = small(name, spatial_dims)
    net(odd_input(spatial_dims, batch=2)).square().mean().backward()
    stream_layers = {"split": net.split} | {f"unit{i}.to_residual": u.to_residual for i, u in enumerate(frrus(net))}
    if name == "unet-frrn":
        stream_layers["head_residual"] = net.head_residual
    for layer_name, layer in stream_layers.items():
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0, layer_name


def _zero_output(module, args, output):
    return torch.zeros_like(output)


def test_output_depends_on_the_residual_stream(name):
    """Zeroing what is written into z (the split and every unit's write-back) changes the logits."""
    net = small(name, 2).eval()
    x = odd_input(2)
    with torch.no_grad():
        before = net(x)
        handles = [net.split.register_forward_hook(_zero_output)]
        handles += [u.to_residual.register_forward_hook(_zero_output) for u in frrus(net)]
        after = net(x)
        for h in handles:
            h.remove()
        assert torch.equal(net(x), before)
    assert (after - before).abs().max() > 1e-4


def test_unet_frrn_has_long_skips():
    """Zeroing the long skips fed to the decoder (each level's) changes the logits; so does zeroing only z."""
    net = small("unet-frrn", 2).eval()
    x = odd_input(2)
    w, rw = net.widths, SMALL["residual_width"]
    # decoder levels 2, 1 (FRRUs) read up-conv + skip + pooled z; level 0 reads up-conv + skip
    assert [b.unit.convs[0][0].in_channels for b in net.decoder] == [2 * w[2] + rw, 2 * w[1] + rw]
    assert net.up0.convs[0][0].in_channels == 2 * w[0]

    def zero_skip(module, args):
        return (args[0], torch.zeros_like(args[1]), *args[2:])

    with torch.no_grad():
        before = net(x)
        for block in [*net.decoder, net.up0]:
            handle = block.register_forward_pre_hook(zero_skip)
            assert (net(x) - before).abs().max() > 1e-4, type(block).__name__
            handle.remove()


def test_frrn_has_no_long_skips_and_units_per_level():
    net = small("frrn", 2, units_per_level=2)
    assert [len(level) for level in net.encoder] == [2, 2, 2]
    assert [len(level) for level in net.decoder] == [2, 2]
    assert [u.scale for u in frrus(net)] == [2, 2, 4, 4, 8, 8, 4, 4, 2, 2]
    w, rw = net.widths, SMALL["residual_width"]
    # a decoder unit reads the upsampled pooling stream and pooled z only
    assert net.decoder[0][0].convs[0][0].in_channels == w[3] + rw
    assert net.merge[0].in_channels == w[0] + rw


# --- shapes, sizes, options ------------------------------------------------------------------------------------------


def test_defaults(name):
    net = build_network(name, 2, 1, 4)
    assert net.widths == (16, 32, 64, 128)
    assert net.required_divisor == 8
    assert net.residual_width == 32
    assert len(frrus(net)) == 5
    assert all(u.to_residual.out_features == 32 for u in frrus(net))
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())


@pytest.mark.parametrize(("in_ch", "out_ch"), [(1, 2), (3, 5)])
def test_batch_one_odd_divisible_sizes_any_channels(name, spatial_dims, in_ch, out_ch):
    net = small(name, spatial_dims, in_ch=in_ch, out_ch=out_ch)
    x = odd_input(spatial_dims, channels=in_ch)
    out = net(x)
    assert out.shape == (1, out_ch, *x.shape[2:])
    assert torch.isfinite(out).all()


def test_non_divisible_input_raises(name, spatial_dims):
    net = small(name, spatial_dims)
    size = (24, 36) if spatial_dims == 2 else (8, 16, 20)
    with pytest.raises(ValueError, match="not divisible by required_divisor=8"):
        net(torch.randn(1, 2, *size))


@pytest.mark.parametrize("depth", [1, 2])
def test_shallow_depths(name, depth):
    net = small(name, 2, depth=depth)
    assert net.required_divisor == 2 ** (depth - 1)
    assert len(frrus(net)) == depth - 1  # depth 2: one encoder unit, no decoder unit
    size = (5, 7) if depth == 1 else (6, 10)
    assert net(torch.randn(1, 2, *size)).shape == (1, 3, *size)


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_norms(name, norm):
    net = small(name, 2, norm=norm)
    assert net(odd_input(2, batch=2)).shape == (2, 3, 24, 40)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"residual_width": 0}, "residual_width must be an integer >= 1, got 0"),
        ({"residual_width": "32"}, "residual_width must be an integer >= 1, got '32'"),
        ({"depth": 0}, "depth must be an integer >= 1, got 0"),
        ({"base_width": 2.5}, "base_width must be an integer >= 1"),
        ({"max_width": True}, "max_width must be an integer >= 1"),
        ({"norm": "layer"}, "unknown norm 'layer'"),
        ({"residual": True}, "has no option 'residual'"),
    ],
)
def test_bad_options(name, bad, message):
    with pytest.raises(InputError, match=message):
        build_network(name, 2, 1, 2, **bad)


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("frrn", {"units_per_level": 0}, "units_per_level must be an integer >= 1, got 0"),
        ("frrn", {"units_per_level": 1.5}, "units_per_level must be an integer >= 1"),
        ("frrn", {"convs_per_level": 2}, "network 'frrn' has no option 'convs_per_level'"),
        ("unet-frrn", {"convs_per_level": 0}, "convs_per_level must be an integer >= 1, got 0"),
        ("unet-frrn", {"units_per_level": 2}, "network 'unet-frrn' has no option 'units_per_level'"),
    ],
)
def test_bad_network_specific_options(name, bad, message):
    with pytest.raises(InputError, match=message):
        build_network(name, 2, 1, 2, **bad)
