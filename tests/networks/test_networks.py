"""Contract tests for every registered network, plus U-Net and registry specifics. Tiny widths and inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from versaseg.errors import InputError
from versaseg.networks import registry
from versaseg.networks.registry import available_networks, build_network, network_options, register_network

# Small options, passed to a network only where it has the option (future networks may not).
TINY = {"depth": 3, "base_width": 4, "max_width": 16}
IN_CH, OUT_CH = 2, 3


def tiny(name: str, spatial_dims: int, seed: int = 0) -> nn.Module:
    options = network_options(name)
    kwargs = {k: v for k, v in TINY.items() if k in options}
    torch.manual_seed(seed)
    return build_network(name, spatial_dims, IN_CH, OUT_CH, **kwargs)


def divisor(net: nn.Module) -> int:
    return int(getattr(net, "required_divisor", 1))


def sample(net: nn.Module, spatial_dims: int, batch: int = 2) -> torch.Tensor:
    size = max(8, 2 * divisor(net))
    return torch.randn(batch, IN_CH, *([size] * spatial_dims), generator=torch.Generator().manual_seed(1))


@pytest.fixture(params=available_networks())
def name(request) -> str:
    return request.param


@pytest.fixture(params=[2, 3], ids=["2d", "3d"])
def spatial_dims(request) -> int:
    return request.param


def test_builtin_networks_are_registered():
    assert {"unet", "monai-unet"} <= set(available_networks())


def test_forward_shape(name, spatial_dims):
    net = tiny(name, spatial_dims)
    x = sample(net, spatial_dims)
    y = net(x)
    assert y.shape == (2, OUT_CH, *x.shape[2:])
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()


def test_backward_reaches_every_parameter(name, spatial_dims):
    net = tiny(name, spatial_dims)
    x = sample(net, spatial_dims)
    net(x).square().mean().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, f"{pname} got no gradient"
        assert torch.isfinite(p.grad).all(), pname
    assert sum(p.grad.abs().sum() for p in net.parameters()) > 0


def test_non_divisible_input_is_a_clear_error(name, spatial_dims):
    net = tiny(name, spatial_dims)
    d = divisor(net)
    x = torch.randn(1, IN_CH, *([2 * d + 1] * spatial_dims))
    if d == 1:  # documented: any size works
        assert net(x).shape[2:] == x.shape[2:]
    else:
        with pytest.raises(ValueError, match=f"not divisible by required_divisor={d}"):
            net(x)


def test_wrong_channel_count_is_a_clear_error(name, spatial_dims):
    net = tiny(name, spatial_dims)
    x = sample(net, spatial_dims)[:, :1]
    with pytest.raises(ValueError, match=f"expected input of shape \\(B, {IN_CH}"):
        net(x)


def test_state_dict_round_trip_reproduces_outputs(name, spatial_dims, tmp_path):
    net = tiny(name, spatial_dims)
    x = sample(net, spatial_dims)
    net.train()
    net(x)  # move any running statistics off their initial values
    net.eval()
    with torch.no_grad():
        expected = net(x)
    torch.save(net.state_dict(), tmp_path / "model.pt")

    other = tiny(name, spatial_dims, seed=123).eval()  # a differently initialised copy
    with torch.no_grad():
        assert not torch.equal(other(x), expected)
    other.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    with torch.no_grad():
        assert torch.equal(other(x), expected)


# --- registry errors -------------------------------------------------------------------------------------------------


def test_unknown_network_lists_valid_names():
    with pytest.raises(InputError, match="unknown network 'resnet'.*unet"):
        build_network("resnet", 2, 1, 2)


def test_unknown_option_names_the_key(name):
    with pytest.raises(InputError, match=f"network '{name}' has no option 'widht'"):
        build_network(name, 2, 1, 2, widht=3)


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made in a test vanish after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_duplicate_registration_is_refused(scratch_registry):
    class Other(nn.Module):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_network("unet")(Other)


def test_register_network_plugs_in_a_factory(scratch_registry):
    @register_network("test-identity")
    def identity(spatial_dims: int, in_channels: int, out_channels: int, scale: float = 1.0) -> nn.Module:
        return nn.Conv2d(in_channels, out_channels, 1)

    assert "test-identity" in available_networks()
    assert network_options("test-identity") == {"scale": 1.0}
    assert isinstance(build_network("test-identity", 2, 1, 2, scale=2.0), nn.Conv2d)
    with pytest.raises(InputError, match="no option 'depth'; valid options: scale"):
        build_network("test-identity", 2, 1, 2, depth=2)


@pytest.mark.parametrize("bad", [{"norm": "layer"}, {"norm": 3}])
def test_bad_norm_lists_valid_values(name, bad):
    with pytest.raises(InputError, match="unknown norm .*valid values: instance, batch, group, none"):
        build_network(name, 2, 1, 2, **bad)


def test_bad_spatial_dims(name):
    with pytest.raises(InputError, match="spatial_dims must be 2 or 3"):
        build_network(name, 4, 1, 2)


# --- U-Net specifics -------------------------------------------------------------------------------------------------


def test_unet_widths_divisor_and_conv_count():
    net = build_network("unet", 3, 1, 2, depth=5, base_width=8, max_width=32, convs_per_level=3)
    assert net.widths == (8, 16, 32, 32, 32)
    assert net.required_divisor == 16
    convs = [m for m in net.modules() if isinstance(m, nn.Conv3d)]
    # 5 encoder levels + 4 decoder levels, 3 convs each, + the 1x1 head
    assert len(convs) == 9 * 3 + 1
    assert [m.stride for m in convs[:15:3]] == [(1, 1, 1)] + [(2, 2, 2)] * 4
    assert sum(isinstance(m, nn.ConvTranspose3d) for m in net.modules()) == 4


def test_unet_defaults():
    net = build_network("unet", 2, 1, 2)
    assert net.widths == (16, 32, 64, 128)
    assert net.required_divisor == 8
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.modules())


@pytest.mark.parametrize("norm", ["instance", "batch", "group", "none", "Instance"])
@pytest.mark.parametrize("residual", [False, True])
def test_unet_norms_and_residual(norm, residual):
    net = build_network("unet", 2, 1, 3, depth=2, base_width=6, norm=norm, residual=residual)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 3, 8, 8)
    norms = {type(m).__name__ for m in net.modules()}
    expected = {"instance": "InstanceNorm2d", "batch": "BatchNorm2d", "group": "GroupNorm"}.get(norm.lower())
    if expected:
        assert expected in norms
    else:
        assert not norms & {"InstanceNorm2d", "BatchNorm2d", "GroupNorm"}
        assert all(m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d))
    assert any(type(m).__name__ == "ResidualBlock" for m in net.encoder.modules()) == residual
    assert not any(type(m).__name__ == "ResidualBlock" for m in net.decoder.modules())  # plain decoder, documented


def test_unet_depth_one_is_a_plain_conv_stack():
    net = build_network("unet", 2, 1, 2, depth=1, base_width=4)
    assert net.required_divisor == 1
    assert net(torch.randn(1, 1, 5, 7)).shape == (1, 2, 5, 7)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"depth": 0}, "depth must be an integer >= 1, got 0"),
        ({"depth": "4"}, "depth must be an integer >= 1, got '4'"),
        ({"base_width": 2.5}, "base_width must be an integer >= 1"),
        ({"max_width": True}, "max_width must be an integer >= 1"),
        ({"convs_per_level": 0}, "convs_per_level must be an integer >= 1"),
        ({"residual": "yes"}, "residual must be true or false"),
    ],
)
def test_unet_bad_options(bad, message):
    with pytest.raises(InputError, match=message):
        build_network("unet", 2, 1, 2, **bad)


def test_bad_channel_counts(name):
    with pytest.raises(InputError, match="out_channels must be an integer >= 1"):
        build_network(name, 2, 1, 0)


def test_monai_unet_maps_options():
    from monai.networks.blocks import ResidualUnit

    net = build_network("monai-unet", 2, 1, 4, depth=3, base_width=8, residual=True, norm="group")
    assert net.net.channels == (8, 16, 32)
    assert net.net.strides == (2, 2)
    assert net.net.num_res_units == 2
    assert any(isinstance(m, ResidualUnit) for m in net.modules())
    assert net(torch.randn(1, 1, 8, 8)).shape == (1, 4, 8, 8)
    with pytest.raises(InputError, match="no option 'convs_per_level'"):
        build_network("monai-unet", 2, 1, 2, convs_per_level=2)
