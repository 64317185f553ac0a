"""Weight gradients of the ResNet generator's strided convolutions as one matrix product, for float32 on CPUs.

The generator's two downsampling convolutions (3x3, stride 2) and two upsampling ones (3x3 transposed, stride 2)
are a tenth of a step's arithmetic, but oneDNN computes their weight gradients slowly on an AVX2 CPU: 30-40% of
the forward's speed for the same FLOPs (AMD EPYC Zen 1; docs/performance.md, session 21). The same gradient is
one matrix product over every output position (im2col):

    dW[k, (i, j, c)] = sum_p dY[p, k] X[p, (i, j, c)]        (a convolution)
    dW[c, (i, j, k)] = sum_p X[p, c] dY[p, (i, j, k)]        (a transposed convolution: the roles swap)

with X[p, (i, j, c)] the input window of output position p (for the transposed convolution, the output's window of
input position p), gathered by one strided copy from channels_last memory; MKL runs the product at 2.3-3.6x
oneDNN's speed at these shapes (128/256 images; 1.2x at the smallest). The result comes out in channels_last
order, the weights' layout on this path. The forward and the input gradient stay oneDNN's (the same calls as
nn.Conv2d's), so outputs are bit for bit the direct convolution's and only the weight gradient's rounding
differs (float32 sums in another order: relative differences of 1e-6 to 1e-5).

`use_gemm_weight_grads(net)` turns eligible layers into these subclasses in place (same parameters and
state_dict), as `winograd.use_winograd` does, on the same path (float32 on a CPU, `train.winograd`); the layers
run the stock convolution under autocast, on CUDA and under torch.compile's tracing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layout import eager_cpu_float, is_channels_last

# Calls whose weight gradient has fewer multiply-adds than this run the stock layer: at the demo's 16-32 channels
# (5-9 M) the product measured 0.88-1.08x oneDNN's speed and the whole step 2% slower; from about 10 M it gains
# (1.14-1.68x, one thread, AMD EPYC Zen 1; docs/performance.md, session 21). Decided per call shape, so a resumed
# run makes the same choices.
MIN_MACS = 16_000_000


def _windows(t: torch.Tensor, k: int, stride: int, rows: int, cols: int) -> torch.Tensor:
    """(N, H, W, C) contiguous -> (N * rows * cols, k * k * C): the k x k window at every stride-th position."""
    n, _, _, c = t.shape
    sn, sh, sw, sc = t.stride()
    view = t.as_strided((n, rows, cols, k, k, c), (sn, stride * sh, stride * sw, sh, sw, sc))
    return view.reshape(n * rows * cols, k * k * c)


def _nhwc(t: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, W, C) contiguous, zero-padded (no copy for an unpadded channels_last tensor)."""
    t = t.permute(0, 2, 3, 1)
    if top or bottom or left or right:
        t = F.pad(t, (0, 0, left, right, top, bottom))
    return t.contiguous()


def conv_weight_grad(x: torch.Tensor, dy: torch.Tensor, k: int, stride: int, padding: int) -> torch.Tensor:
    """dL/dW of `F.conv2d(x, W, stride=stride, padding=padding)` for a k x k W, from dL/dy: (C_out, C_in, k, k),
    channels_last."""
    c, (c_out, rows, cols) = x.shape[1], dy.shape[1:]
    p = padding
    windows = _windows(_nhwc(x, p, p, p, p), k, stride, rows, cols)  # (P, k * k * C_in)
    dw = _nhwc(dy, 0, 0, 0, 0).view(-1, c_out).t() @ windows
    return dw.view(c_out, k, k, c).permute(0, 3, 1, 2)


def conv_transpose_weight_grad(x: torch.Tensor, dy: torch.Tensor, k: int, stride: int, padding: int) -> torch.Tensor:
    """dL/dW of `F.conv_transpose2d(x, W, stride=stride, padding=padding, output_padding=...)` for a (C_in, C_out,
    k, k) W, from dL/dy: input pixel (h, w) met output pixel (stride h + i - padding, stride w + j - padding)
    through tap (i, j); outside the output, zero. (C_in, C_out, k, k), channels_last."""
    (c, h, w), (c_out, out_h, out_w) = x.shape[1:], dy.shape[1:]
    p = padding
    bottom = max(0, stride * (h - 1) + k - out_h - p)
    right = max(0, stride * (w - 1) + k - out_w - p)
    windows = _windows(_nhwc(dy, p, bottom, p, right), k, stride, h, w)  # (P, k * k * C_out)
    dw = _nhwc(x, 0, 0, 0, 0).view(-1, c).t() @ windows
    return dw.view(c, k, k, c_out).permute(0, 3, 1, 2)


class _StridedConv(torch.autograd.Function):
    """y = conv2d or conv_transpose2d(x, w, b) as oneDNN computes it; the backward takes the input gradient from
    oneDNN and the weight gradient from one matrix product."""

    @staticmethod
    def forward(ctx, x, w, b, conf: tuple[int, int, int, bool]) -> torch.Tensor:
        stride, padding, output_padding, transposed = conf  # output_padding: transposed only
        if transposed:
            y = F.conv_transpose2d(x, w, b, stride, padding, output_padding)
        else:
            y = F.conv2d(x, w, b, stride, padding)
        ctx.save_for_backward(x, w)
        ctx.conf = (stride, padding, output_padding, transposed, b is not None)
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        x, w = ctx.saved_tensors
        stride, padding, output_padding, transposed, has_bias = ctx.conf
        layout = torch.channels_last if is_channels_last(w) else torch.contiguous_format
        dy = dy.contiguous(memory_format=torch.channels_last if is_channels_last(x) else torch.contiguous_format)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = torch.ops.aten.convolution_backward(
                dy, x, w, None, [stride] * 2, [padding] * 2, [1, 1], transposed, [output_padding] * 2, 1,
                [True, False, False],
            )[0]  # fmt: skip
        if ctx.needs_input_grad[1]:
            grad = conv_transpose_weight_grad if transposed else conv_weight_grad
            dw = grad(x, dy, w.shape[-1], stride, padding).contiguous(memory_format=layout)
        if has_bias and ctx.needs_input_grad[2]:
            db = dy.sum((0, 2, 3))
        return dx, dw, db, None


def _stock(x: torch.Tensor, conv: nn.Module, positions: int) -> bool:
    """Where these layers run the stock convolution: outside `eager_cpu_float`, or for a weight gradient too small
    to pay (`positions` windows, each multiplied with every one of the weight's C_out x C_in x 3 x 3: MIN_MACS)."""
    return not eager_cpu_float(x, conv.weight) or positions * conv.weight.numel() < MIN_MACS


class GemmGradConv2d(nn.Conv2d):
    """nn.Conv2d (3x3, stride 2, zero padding) whose weight gradient is one matrix product on a CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.padding[0]
        rows, cols = ((side + 2 * p - 3) // 2 + 1 for side in x.shape[-2:])
        if _stock(x, self, x.shape[0] * rows * cols):
            return super().forward(x)
        return _StridedConv.apply(x, self.weight, self.bias, (self.stride[0], self.padding[0], 0, False))


class GemmGradConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d (3x3, stride 2) whose weight gradient is one matrix product on a CPU."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or _stock(x, self, x.shape[0] * x.shape[-2] * x.shape[-1]):
            return super().forward(x, output_size)
        conf = (self.stride[0], self.padding[0], self.output_padding[0], True)
        return _StridedConv.apply(x, self.weight, self.bias, conf)


def eligible(conv: nn.Module) -> type[nn.Module] | None:
    """The subclass for a stock 3x3, stride-2 convolution or transposed convolution (square, zero padding, no
    dilation, one group), else None."""
    if type(conv) not in (nn.Conv2d, nn.ConvTranspose2d):
        return None
    square = len(set(conv.padding)) == 1 and len(set(conv.output_padding)) == 1
    if not (
        conv.kernel_size == (3, 3)
        and conv.stride == (2, 2)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == "zeros"
        and isinstance(conv.padding, tuple)
        and square
    ):
        return None
    return GemmGradConv2d if type(conv) is nn.Conv2d else GemmGradConvTranspose2d


def use_gemm_weight_grads(net: nn.Module) -> int:
    """Make every eligible strided convolution in `net` compute its weight gradient by one matrix product, in
    place (same module objects and parameters). Returns how many."""
    count = 0
    for child in net.modules():
        cls = eligible(child)
        if cls is not None:
            child.__class__ = cls
            count += 1
    return count
