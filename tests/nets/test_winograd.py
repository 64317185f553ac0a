"""nets/winograd.py: Winograd F(4x4, 3x3) is the 3x3 convolution: exact in float64, within 3e-5 in float32."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cyclegan.nets import create_discriminator, create_generator
from cyclegan.nets.layout import is_channels_last
from cyclegan.nets.winograd import WinogradConv2d, use_winograd, winograd_conv3x3

SHAPES = [(2, 5, 10, 14), (1, 3, 9, 8), (3, 4, 7, 11), (1, 2, 3, 3)]  # outputs multiples of 4 and not, 1x1


def both(x, w, b, grad):
    """(output, dx, dw, db) of the direct convolution and of Winograd's."""
    out = []
    for conv in (F.conv2d, winograd_conv3x3):
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        bi = None if b is None else b.clone().requires_grad_()
        y = conv(xi, wi, bi)
        y.backward(grad)
        out.append((y, xi.grad, wi.grad, None if b is None else bi.grad))
    return out


def rel(a, b) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_float64_is_the_convolution_and_its_gradients(shape, channels_last, bias):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = torch.randn(6, shape[1], 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64) if bias else None
    grad = torch.randn(shape[0], 6, shape[2] - 2, shape[3] - 2, generator=g, dtype=torch.float64)
    direct, wino = both(x, w, b, grad)
    for d, v in zip(direct, wino):
        if d is not None:
            assert v.shape == d.shape and rel(v, d) < 1e-13
    assert is_channels_last(wino[0]) is (channels_last and shape[2] > 3)  # a 1x1 output is both layouts


def test_gradcheck():
    g = torch.Generator().manual_seed(1)
    args = [
        torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in [(2, 3, 8, 7), (4, 3, 3, 3), (4,)]
    ]
    assert torch.autograd.gradcheck(winograd_conv3x3, args)


def test_float32_errors_are_bounded_far_below_bfloat16s():
    """At a residual block's shape (256 channels, 16x16), against float64: forward and both gradients within 3e-5
    (relative to the largest value). Measured 7e-6 to 1.4e-5, where the direct float32 convolution shows 2e-7 to
    3e-6 and bfloat16 autocast (the default on AMX CPUs) about 4e-3."""
    g = torch.Generator().manual_seed(2)
    x64 = torch.randn(2, 256, 18, 18, generator=g, dtype=torch.float64)
    w64 = torch.randn(256, 256, 3, 3, generator=g, dtype=torch.float64) * 0.02
    grad64 = torch.randn(2, 256, 16, 16, generator=g, dtype=torch.float64)
    exact = both(x64, w64, None, grad64)[0]
    wino = both(x64.float(), w64.float(), None, grad64.float())[1]
    errors = [rel(v.double(), e) for e, v in zip(exact[:3], wino[:3])]
    assert max(errors) < 3e-5, errors


def test_use_winograd_swaps_the_residual_convolutions_only_and_keeps_the_parameters():
    torch.manual_seed(0)
    net = create_generator("resnet_6blocks", ngf=8)
    params = {k: p for k, p in net.named_parameters()}
    x = torch.randn(2, 3, 36, 28)
    before = net(x)
    assert use_winograd(net) == 12  # two per residual block; the 7x7, strided and transposed ones stay
    assert all(type(m) is nn.Conv2d or not isinstance(m, nn.Conv2d) or m.kernel_size == (3, 3) for m in net.modules())
    assert dict(net.named_parameters()) == params  # the same tensors under the same names
    assert list(net.state_dict()) == list(params) and all(p is params[k] for k, p in net.named_parameters())
    after = net(x)
    assert rel(after, before) < 1e-5
    assert use_winograd(net) == 0  # already swapped
    assert use_winograd(create_discriminator("basic", ndf=8)) == 0 and use_winograd(create_generator("unet_128")) == 0


def test_the_layer_runs_the_direct_convolution_where_winograd_does_not_apply():
    """Under bf16 autocast (the AMX default) and on non-float inputs the layer is nn.Conv2d, bit for bit."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3)
    wino = nn.Conv2d(8, 8, 3)
    wino.load_state_dict(conv.state_dict())
    use_winograd(wino)
    assert isinstance(wino, WinogradConv2d)
    x = torch.randn(1, 8, 10, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(wino(x), conv(x))
    assert not torch.equal(wino(x), conv(x)) and rel(wino(x), conv(x)) < 1e-5  # float32: Winograd itself
