"""nets/winograd.py: Winograd F(4x4, 3x3) is the 3x3 convolution: exact in float64, within 6e-6 in float32."""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cyclegan.nets import create_discriminator, create_generator, winograd
from cyclegan.nets.layout import is_channels_last
from cyclegan.nets.winograd import POINTS, WinogradConv2d, toom_cook, use_winograd, winograd_conv3x3

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


LAVIN = [0, 1, -1, 2, -2]  # Lavin & Gray's points, whose matrices they print (CVPR 2016, Section 4)


def test_toom_cook_at_lavin_and_grays_points_gives_their_matrices():
    bt, g, at = toom_cook(tuple(Fraction(p) for p in LAVIN))
    assert bt == [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ]
    f = Fraction
    assert g == [
        [f(1, 4), 0, 0],
        [f(-1, 6), f(-1, 6), f(-1, 6)],
        [f(-1, 6), f(1, 6), f(-1, 6)],
        [f(1, 24), f(1, 12), f(1, 6)],
        [f(1, 24), f(-1, 12), f(1, 6)],
        [0, 0, 1],
    ]
    assert at == [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]


@pytest.mark.parametrize("points", [POINTS, (0, 1, -1, Fraction(1, 2), -2), (3, -1, 0, Fraction(1, 3), 5)])
def test_toom_cook_computes_the_correlation_exactly_at_any_points(points):
    """In exact arithmetic: y = A^T [(G g) ⊙ (B^T d)] is y_i = sum_k g_k d_(i+k), for random rational d and g."""
    bt, g_, at = toom_cook(tuple(Fraction(p) for p in points))
    rng = torch.Generator().manual_seed(3)
    d = [Fraction(int(v), 7) for v in torch.randint(-20, 20, (6,), generator=rng)]
    g = [Fraction(int(v), 5) for v in torch.randint(-20, 20, (3,), generator=rng)]
    u = [sum(a * b for a, b in zip(row, g)) for row in g_]
    v = [sum(a * b for a, b in zip(row, d)) for row in bt]
    y = [sum(a * b * c for a, b, c in zip(row, u, v)) for row in at]
    assert y == [sum(g[k] * d[i + k] for k in range(3)) for i in range(4)]


def float32_errors(seed: int) -> list[float]:
    """Forward, dx and dw of Winograd in float32 against the float64 convolution, at a residual block's shape
    (256 channels, 16x16 outputs), relative to the largest value."""
    g = torch.Generator().manual_seed(seed)
    x64 = torch.randn(2, 256, 18, 18, generator=g, dtype=torch.float64)
    w64 = torch.randn(256, 256, 3, 3, generator=g, dtype=torch.float64) * 0.02
    grad64 = torch.randn(2, 256, 16, 16, generator=g, dtype=torch.float64)
    exact = both(x64, w64, None, grad64)[0]
    wino = both(x64.float(), w64.float(), None, grad64.float())[1]
    return [rel(v.double(), e) for e, v in zip(exact[:3], wino[:3])]


def test_float32_errors_are_bounded_far_below_bfloat16s():
    """Within 6e-6 of the largest value. Measured 1.0e-6 to 3.6e-6 (seeds 2-4), where the direct float32
    convolution shows 2e-7 to 3e-6, Lavin & Gray's points 4e-6 to 1.4e-5 (next test) and bfloat16 autocast (the
    default on AMX CPUs) about 4e-3."""
    errors = float32_errors(2)
    assert max(errors) < 6e-6, errors


def test_the_chosen_points_are_more_accurate_than_lavin_and_grays(monkeypatch):
    """0, ±3/2, ±2/3 against 0, ±1, ±2 at the same data: the output error 3x smaller, each gradient's 2x
    (measured 5.3x, 2.4x and 4.7x at this seed)."""
    chosen = float32_errors(2)
    monkeypatch.setattr(winograd, "POINTS", tuple(Fraction(p) for p in LAVIN))
    winograd._kron_transforms.cache_clear()
    try:
        lavin = float32_errors(2)
    finally:
        monkeypatch.undo()
        winograd._kron_transforms.cache_clear()
    assert lavin[0] > 3 * chosen[0] and lavin[1] > 2 * chosen[1] and lavin[2] > 2 * chosen[2], (chosen, lavin)


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


def test_the_layer_runs_the_direct_convolution_where_winograd_does_not_apply(monkeypatch):
    """Under bf16 autocast (the AMX default), on non-float inputs and for calls with fewer than MIN_TILES output
    tiles the layer is nn.Conv2d, bit for bit."""
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, 3)
    wino = nn.Conv2d(8, 8, 3)
    wino.load_state_dict(conv.state_dict())
    use_winograd(wino)
    assert isinstance(wino, WinogradConv2d)
    x = torch.randn(1, 8, 10, 10)  # an 8x8 output: 4 tiles
    assert winograd.tiles(x) == 4 and winograd.tiles(torch.randn(3, 8, 11, 7)) == 3 * 3 * 2
    assert torch.equal(wino(x), conv(x))  # too few tiles to pay: direct
    monkeypatch.setattr(winograd, "MIN_TILES", 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(wino(x), conv(x))
    assert not torch.equal(wino(x), conv(x)) and rel(wino(x), conv(x)) < 1e-5  # float32: Winograd itself
    monkeypatch.setattr(winograd, "MIN_TILES", 5)
    assert torch.equal(wino(x), conv(x))
    assert not torch.equal(wino(x.repeat(2, 1, 1, 1)), conv(x.repeat(2, 1, 1, 1)))  # 8 tiles


def residual_layer(monkeypatch, channels_last=True):
    """A WinogradConv2d at a residual block's layout (channels_last weights, as training uses), with every call
    run by Winograd, and a counter of the filter transforms it computes."""
    monkeypatch.setattr(winograd, "MIN_TILES", 0)
    calls = []
    monkeypatch.setattr(winograd, "filters", lambda w: calls.append(w._version) or FILTERS(w))
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 16, 3)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
    use_winograd(conv)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 16, 10, 10).contiguous(memory_format=layout)
    return conv, x, calls


FILTERS = winograd.filters  # the transform itself, uncounted


def fresh(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's result with its filters transformed anew (no cache): what the cached result must equal."""
    return winograd_conv3x3(x, conv.weight, conv.bias, FILTERS(conv.weight.detach()))


def test_a_translating_layer_keeps_its_filters_until_the_weight_changes(monkeypatch):
    """keep_filters (translation: `translate.load_translator`): calls under no_grad, one image or tile after
    another, transform the filters once, with results equal to the uncached computation bit for bit; an
    in-place update or a new weight tensor transforms again. Without it nothing is kept between calls."""
    conv, x, calls = residual_layer(monkeypatch)
    with torch.no_grad():
        conv(x), conv(x)
    assert len(calls) == 2  # the default: transformed at each call
    use_winograd(conv, keep_filters=True)
    with torch.no_grad():
        outs = [conv(x[i : i + 1]) for i in (0, 1, 0)]
        assert len(calls) == 3 and torch.equal(outs[0], outs[2])
        assert torch.equal(torch.cat(outs[:2]), fresh(conv, x))
        conv.weight.mul_(0.5)  # in place: a new version
        assert torch.equal(conv(x), fresh(conv, x)) and len(calls) == 4
    conv.weight = nn.Parameter(torch.randn_like(conv.weight))
    with torch.no_grad():
        assert torch.equal(conv(x), fresh(conv, x)) and len(calls) == 5
        conv(x)
    assert len(calls) == 5


@pytest.mark.parametrize("channels_last", [True, False])
def test_the_filter_transform_is_computed_once_per_weight_version(monkeypatch, channels_last):
    """Two calls and their backward (a fused training step) share one transform, which the layer does not keep
    once the graph is freed; an optimizer step, a load_state_dict and a new weight tensor each make the next call
    transform again, and every result equals the uncached computation bit for bit."""
    conv, x, calls = residual_layer(monkeypatch, channels_last)
    opt = torch.optim.Adam(conv.parameters(), lr=0.1)
    for _ in range(2):
        n = len(calls)
        y = conv(x) + conv(x.flip(0))
        y.square().sum().backward()
        assert len(calls) == n + 1
        assert conv._transformed[1]() is None  # freed with the graph: nothing kept between steps
        with torch.no_grad():
            assert torch.equal(conv(x), fresh(conv, x))
        opt.step()
        opt.zero_grad()
    grads = []
    for layer in (conv, nn.Conv2d(16, 16, 3)):  # the cached layer's gradients equal an uncached computation's
        layer.load_state_dict(conv.state_dict())
        wi = layer.weight if layer is conv else layer.weight.detach().requires_grad_()
        out = conv(x) if layer is conv else winograd_conv3x3(x, wi, layer.bias, FILTERS(wi.detach()))
        out.square().sum().backward()
        grads.append(wi.grad.clone())
        conv.zero_grad()
    assert torch.equal(grads[0], grads[1])
    y = conv(x)  # a graph that holds the transform
    n = len(calls)
    conv.load_state_dict(nn.Conv2d(16, 16, 3).state_dict())  # copied in place: a new version
    z = conv(x)
    assert torch.equal(z, fresh(conv, x)) and len(calls) == n + 1
    conv.weight = nn.Parameter(torch.randn_like(conv.weight))  # another tensor
    assert torch.equal(conv(x), fresh(conv, x)) and len(calls) == n + 2
    del y, z


def test_a_transform_made_in_inference_mode_is_not_saved_by_a_training_step(monkeypatch):
    """Translation and the run's sample grids call the layer in inference mode between training steps; an
    inference tensor cannot be saved for a backward, so training transforms the same weights again."""
    conv, x, calls = residual_layer(monkeypatch)
    with torch.inference_mode():
        kept = conv.transformed_weight()  # as if something held it
        expected = conv(x)
    conv(x).sum().backward()
    assert len(calls) == 2 and conv.weight.grad is not None and kept.is_inference()
    with torch.inference_mode():
        assert torch.equal(conv(x), expected)
