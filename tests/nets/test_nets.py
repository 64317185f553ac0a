"""Networks: parameter counts and state-dict layout identical to the reference, shapes, channels, init."""

import json

import pytest
import torch

from conftest import SHARED_DATA
from cyclegan.errors import UserError
from cyclegan.nets import (
    DISCRIMINATORS,
    GENERATORS,
    count_parameters,
    create_discriminator,
    create_generator,
    init_weights,
)

REFERENCE = SHARED_DATA.parent / "reference" / "reference_networks.json"
needs_reference = pytest.mark.skipif(not REFERENCE.is_file(), reason=f"{REFERENCE} not found")


def _reference():
    return json.loads(REFERENCE.read_text())


@pytest.mark.parametrize(
    "name,expected", [("resnet_9blocks", 11_378_179), ("resnet_6blocks", 7_837_699), ("unet_256", 54_409_603)]
)
def test_generator_parameter_counts_match_the_reference(name, expected):
    assert count_parameters(create_generator(name, norm="instance")) == expected


def test_basic_discriminator_parameter_count():
    assert count_parameters(create_discriminator("basic")) == 2_764_737


@needs_reference
def test_every_reference_state_dict_layout_is_reproduced():
    ref = _reference()
    checked = 0
    for kind, create in (("generators", create_generator), ("discriminators", create_discriminator)):
        for key, entry in ref[kind].items():
            name, norm, third = key.split("/")
            norm, value = norm.split("=")[1], third.split("=")[1]
            kw = {"dropout": value == "True"} if kind == "generators" else {"in_ch": int(value)}
            net = create(name, norm=norm, **kw)
            layout = [[k, list(v.shape)] for k, v in net.state_dict().items()]
            assert layout == entry["state_dict"], key
            assert count_parameters(net) == entry["parameters"], key
            x = torch.zeros(entry["input_shape"])
            if max(x.shape[-2:]) <= 256 and name != "unet_256" or kind == "discriminators":
                with torch.no_grad():
                    assert list(net.eval()(x).shape) == entry["output_shape"], key
            checked += 1
    assert checked == 20


@pytest.mark.parametrize("name", GENERATORS.names())
@pytest.mark.parametrize("in_ch,out_ch", [(1, 3), (4, 4), (7, 2)])
def test_generators_take_any_channel_counts(name, in_ch, out_ch):
    net = create_generator(name, in_ch=in_ch, out_ch=out_ch, ngf=4)
    size = 256 if name == "unet_256" else 128 if name == "unet_128" else 20
    y = net.eval()(torch.rand(2, in_ch, size, size) * 2 - 1)
    assert y.shape == (2, out_ch, size, size)
    assert y.abs().max() <= 1.0  # tanh output


@pytest.mark.parametrize("name", DISCRIMINATORS.names())
def test_discriminators_shapes(name):
    net = create_discriminator(name, in_ch=5, ndf=8)
    out = net(torch.randn(2, 5, 64, 64))
    expected = {"basic": (2, 1, 6, 6), "n_layers": (2, 1, 6, 6), "pixel": (2, 1, 64, 64)}[name]
    assert out.shape == expected


def test_n_layers_depth_changes_receptive_field():
    net = create_discriminator("n_layers", n_layers=5, ndf=4)
    assert net(torch.randn(1, 3, 256, 256)).shape == (1, 1, 6, 6)


def test_unknown_names_are_user_errors():
    with pytest.raises(UserError, match="unknown generator 'resnet_7blocks'.*resnet_9blocks"):
        create_generator("resnet_7blocks")
    with pytest.raises(UserError, match="unknown norm"):
        create_generator("resnet_6blocks", norm="layer")


def test_normal_init_is_paper_n_0_002():
    net = init_weights(create_generator("resnet_6blocks", ngf=16), "normal", 0.02, torch.Generator().manual_seed(0))
    w = torch.cat(
        [m.weight.flatten() for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    )
    assert abs(w.mean().item()) < 1e-3
    assert w.std().item() == pytest.approx(0.02, rel=0.02)
    assert all(m.bias.abs().max() == 0 for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None)


@pytest.mark.parametrize("kind", ["xavier", "kaiming", "orthogonal"])
def test_other_inits_change_weights(kind):
    net = create_generator("resnet_6blocks", ngf=4)
    before = net.model[1].weight.clone()
    init_weights(net, kind, 0.02)
    assert not torch.equal(before, net.model[1].weight)


def test_batch_norm_init_scales_near_one():
    net = init_weights(create_generator("unet_128", ngf=8, norm="batch"), "normal", 0.02)
    scales = torch.cat([m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert (scales - 1).abs().max() < 0.15
