"""nets/layout.py: instance norm and reflection padding that keep their input's layout and dtype, exactly."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cyclegan.nets import create_discriminator, create_generator
from cyclegan.nets.layout import InstanceNorm2d, ReflectionPad2d, is_channels_last

CL = torch.channels_last


def test_instance_norm_channels_last_batch_of_one_is_exact_and_stays_channels_last():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(1, 16, 8, 8, generator=g, dtype=torch.float64) * 3 + 1).requires_grad_()
    grad = torch.randn(1, 16, 8, 8, generator=g, dtype=torch.float64)
    xc = x.detach().contiguous(memory_format=CL).requires_grad_()
    norm = InstanceNorm2d(16)
    y, yc = F.instance_norm(x), norm(xc)
    assert is_channels_last(yc) and torch.allclose(yc, y, atol=1e-12, rtol=0)
    (a,) = torch.autograd.grad(y, x, grad)
    (b,) = torch.autograd.grad(yc, xc, grad.contiguous(memory_format=CL))  # the gradient a NHWC conv hands back
    assert is_channels_last(b) and (a - b).abs().max() < 1e-12
    assert yc.mean((2, 3)).abs().max() < 1e-12 and (yc.var((2, 3), unbiased=False) - 1).abs().max() < 1e-3  # eps


def test_instance_norm_on_plain_input_is_the_stock_layer_bit_for_bit():
    x = torch.randn(2, 8, 6, 6)
    stock = nn.InstanceNorm2d(8)
    assert torch.equal(InstanceNorm2d(8)(x), stock(x))
    assert torch.equal(InstanceNorm2d(8)(x[:1]), stock(x[:1]))


def test_instance_norm_channels_last_batch_of_two_is_exact_per_sample_and_stays_channels_last():
    """The fused passes (methods/fused.py) normalise G(x), G(y) as one batch of two: each sample on its own
    statistics, in NHWC, output and input gradient equal to the stock layer's in float64."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 16, 8, 8, generator=g, dtype=torch.float64) * torch.tensor([1.0, 5.0]).view(2, 1, 1, 1)
    x = x.requires_grad_()
    grad = torch.randn(2, 16, 8, 8, generator=g, dtype=torch.float64)
    xc = x.detach().contiguous(memory_format=CL).requires_grad_()
    norm = InstanceNorm2d(16, affine=True)
    nn.init.normal_(norm.weight), nn.init.normal_(norm.bias)
    stock = nn.InstanceNorm2d(16, affine=True).double()
    stock.load_state_dict(norm.state_dict())
    norm = norm.double()
    y, yc = stock(x), norm(xc)
    assert is_channels_last(yc) and (yc - y).abs().max() < 1e-12
    a = torch.autograd.grad(y, [x, *stock.parameters()], grad)
    b = torch.autograd.grad(yc, [xc, *norm.parameters()], grad.contiguous(memory_format=CL))
    assert is_channels_last(b[0])
    assert all((u - v).abs().max() < 1e-11 for u, v in zip(a, b))
    assert torch.allclose(norm(xc[1:]), yc[1:], atol=1e-12, rtol=0)  # one sample's statistics, not the batch's


def test_reflection_pad_keeps_bf16_under_autocast_with_the_same_values():
    x = torch.randn(1, 8, 6, 6).bfloat16().contiguous(memory_format=CL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        stock, ours = nn.ReflectionPad2d(2)(x), ReflectionPad2d(2)(x)
    assert stock.dtype == torch.float32  # why the layer exists: CPU autocast pads in float32
    assert ours.dtype == torch.bfloat16 and is_channels_last(ours) and torch.equal(ours.float(), stock)
    y = torch.randn(1, 3, 5, 5)
    assert torch.equal(ReflectionPad2d(1)(y), nn.ReflectionPad2d(1)(y))
    assert ReflectionPad2d(1)(torch.empty(1, 3, 5, 5, device="meta")).shape == (1, 3, 7, 7)


def test_generator_and_discriminator_in_channels_last_match_nchw_exactly_in_float64():
    """Whole networks at batch 1, float64, no guard hooks: the NHWC path's output and every parameter
    gradient equal the NCHW ones to rounding (a layout conversion or a wrong gradient would show)."""
    torch.manual_seed(0)
    for net in (create_generator("resnet_6blocks", ngf=4), create_discriminator("basic", ndf=4)):
        net = net.double()
        x = torch.randn(1, 3, 32, 32, dtype=torch.float64)
        out = net(x)
        grads = torch.autograd.grad(out.square().sum(), list(net.parameters()))
        net_cl = net.to(memory_format=CL)
        out_cl = net_cl(x.contiguous(memory_format=CL))
        grads_cl = torch.autograd.grad(out_cl.square().sum(), list(net_cl.parameters()))
        assert (out - out_cl).abs().max() < 1e-12
        a, b = torch.cat([g.flatten() for g in grads]), torch.cat([g.flatten() for g in grads_cl])
        assert (a - b).abs().max() / a.abs().max() < 1e-10  # (per tensor, the biases before a norm have 0 gradient)


def test_norm_layers_keep_channels_last_through_a_resnet_block():
    """No NHWC -> NCHW conversion inside the networks in bf16 autocast: every norm and pad output stays NHWC."""
    net = create_generator("resnet_6blocks", ngf=4).to(memory_format=CL)
    seen = []
    for m in net.modules():
        if isinstance(m, (InstanceNorm2d, ReflectionPad2d)):
            m.register_forward_hook(lambda mod, i, o: seen.append((type(mod).__name__, is_channels_last(o), o.dtype)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(torch.randn(1, 3, 32, 32).contiguous(memory_format=CL))
    assert len(seen) == 2 * 6 * 2 + 2 + 5  # per block 2 pads + 2 norms; 2 outer pads; 5 outer norms
    assert all(cl for _, cl, _ in seen)
    assert seen[0][2] == torch.float32 and all(dt == torch.bfloat16 for _, _, dt in seen[1:])  # the image is float32
