"""nets/weight_grad.py: the strided convolutions' weight gradient as one matrix product is the convolution's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cyclegan.nets import create_discriminator, create_generator, weight_grad
from cyclegan.nets.layout import is_channels_last
from cyclegan.nets.weight_grad import GemmGradConv2d, GemmGradConvTranspose2d, use_gemm_weight_grads


@pytest.fixture(autouse=True)
def at_any_size(monkeypatch):
    """These layers are far below weight_grad.MIN_MACS, where the stock layer runs; the tests here are about the
    matrix product's arithmetic, so it runs at every size (the threshold has its own test)."""
    monkeypatch.setattr(weight_grad, "MIN_MACS", 0)


# (in, out, input side, transposed, output_padding): the generator's layers, odd sides, padding 0 and 1
LAYERS = [(4, 6, 9, False, 0), (5, 3, 8, False, 0), (4, 6, 7, True, 1), (3, 5, 6, True, 0), (2, 3, 1, True, 1)]


def pair(cin, cout, transposed, padding, output_padding, bias, dtype, channels_last):
    """A stock layer and the same layer (same weights) made a GemmGrad one."""
    torch.manual_seed(0)
    if transposed:
        stock = nn.ConvTranspose2d(cin, cout, 3, 2, padding, output_padding, bias=bias)
    else:
        stock = nn.Conv2d(cin, cout, 3, 2, padding, bias=bias)
    stock = stock.to(dtype)
    if channels_last:
        stock = stock.to(memory_format=torch.channels_last)
    extra = {"output_padding": output_padding} if transposed else {}
    ours = type(stock)(cin, cout, 3, 2, padding, bias=bias, **extra)
    ours = ours.to(dtype)
    if channels_last:
        ours = ours.to(memory_format=torch.channels_last)
    ours.load_state_dict(stock.state_dict())
    assert use_gemm_weight_grads(ours) == 1
    return stock, ours


def grads(layer, x, grad):
    xi = x.clone().requires_grad_()
    y = layer(xi)
    y.backward(grad)
    out = (y, xi.grad, layer.weight.grad, None if layer.bias is None else layer.bias.grad)
    layer.zero_grad()
    return out


def rel(a, b) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("padding", [1, 0])
@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_are_the_convolutions_in_float64(layer, padding, channels_last, bias):
    """Output and input gradient bit for bit (the same oneDNN calls), the weight and bias gradients to 1e-13, in
    the weight's own layout."""
    cin, cout, side, transposed, output_padding = layer
    stock, ours = pair(cin, cout, transposed, padding, output_padding, bias, torch.float64, channels_last)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, cin, side, side + 1, generator=g, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad = torch.randn(stock(x).shape, generator=g, dtype=torch.float64)
    (y0, dx0, dw0, db0), (y1, dx1, dw1, db1) = grads(stock, x, grad), grads(ours, x, grad)
    assert torch.equal(y1, y0) and torch.equal(dx1, dx0)
    assert dw1.shape == dw0.shape and rel(dw1, dw0) < 1e-13
    assert is_channels_last(dw1) == is_channels_last(ours.weight)
    if bias:
        assert rel(db1, db0) < 1e-13


@pytest.mark.parametrize("transposed", [False, True])
def test_float32_at_a_generator_layer_is_within_its_own_rounding(transposed):
    """At the 128 setup's second layer (64 -> 128 channels, 64x64 maps; and its transposed twin): the weight
    gradient within 2e-5 of the direct one (measured 2e-6 to 1e-5: float32 sums of 12,288 terms in another order)."""
    cin, cout = (128, 64) if transposed else (64, 128)
    stock, ours = pair(cin, cout, transposed, 1, 1, True, torch.float32, True)
    x = torch.randn(3, cin, 32, 32).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(stock(x).shape)
    (y0, dx0, dw0, db0), (y1, dx1, dw1, db1) = grads(stock, x, grad), grads(ours, x, grad)
    assert torch.equal(y1, y0) and torch.equal(dx1, dx0)
    assert 0 < rel(dw1, dw0) < 2e-5 and rel(db1, db0) < 1e-5


def test_gradcheck():
    torch.manual_seed(2)
    for layer in (nn.Conv2d(3, 2, 3, 2, 1), nn.ConvTranspose2d(3, 2, 3, 2, 1, 1)):
        layer = layer.double()
        use_gemm_weight_grads(layer)
        x = torch.randn(1, 3, 5, 6, dtype=torch.float64, requires_grad=True)
        w, b = (p.detach().clone().requires_grad_() for p in (layer.weight, layer.bias))

        def call(x, w, b, layer=layer):
            return torch.func.functional_call(layer, {"weight": w, "bias": b}, x)

        assert torch.autograd.gradcheck(call, (x, w, b))


def test_only_the_resnet_generators_strided_layers_are_swapped_and_parameters_kept():
    net = create_generator("resnet_6blocks", ngf=8)
    params = dict(net.named_parameters())
    assert use_gemm_weight_grads(net) == 4  # two downsampling, two upsampling
    assert sum(isinstance(m, GemmGradConv2d) for m in net.modules()) == 2
    assert sum(isinstance(m, GemmGradConvTranspose2d) for m in net.modules()) == 2
    assert all(p is params[k] for k, p in net.named_parameters()) and list(net.state_dict()) == list(params)
    assert use_gemm_weight_grads(net) == 0
    # 4x4 kernels (PatchGAN, U-Net): not these layers (measured no faster there)
    assert use_gemm_weight_grads(create_discriminator("basic", ndf=8)) == 0
    assert use_gemm_weight_grads(create_generator("unet_128", ngf=8)) == 0


def test_the_stock_convolution_runs_under_autocast():
    stock, ours = pair(4, 6, False, 1, 0, True, torch.float32, True)
    x = torch.randn(1, 4, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = grads(stock, x, torch.ones(1, 6, 4, 4)), grads(ours, x, torch.ones(1, 6, 4, 4))
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_calls_too_small_to_pay_run_the_stock_layer(monkeypatch):
    """MIN_MACS decides per call: 2 x 4 x 4 windows of 3 x 3 x 4 inputs for 6 outputs are 6,912 multiply-adds."""
    stock, ours = pair(4, 6, False, 1, 0, True, torch.float32, True)
    x = torch.randn(2, 4, 8, 8).contiguous(memory_format=torch.channels_last)
    grad = torch.randn(2, 6, 4, 4)
    calls = []
    product = weight_grad.conv_weight_grad
    monkeypatch.setattr(weight_grad, "conv_weight_grad", lambda *a: calls.append(1) or product(*a))
    monkeypatch.setattr(weight_grad, "MIN_MACS", 6_913)
    assert torch.equal(grads(ours, x, grad)[2], grads(stock, x, grad)[2]) and not calls  # stock: the same bits
    monkeypatch.setattr(weight_grad, "MIN_MACS", 6_912)
    assert rel(grads(ours, x, grad)[2], grads(stock, x, grad)[2]) < 1e-5 and calls == [1]
