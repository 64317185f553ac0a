"""Winograd F(4x4, 3x3): 3x3 convolutions with 4x fewer multiplications, for float32 on CPUs (training, and
translation with --precision auto).

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), Section 4: each 4x4 output
tile of a 3x3 convolution is

    Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A

for the 6x6 input tile d (tiles overlap by two) and the 3x3 filter g. Summed over input channels, the
element-wise product becomes 36 independent matrix products, one per position (ξ, ν) of the 6x6 tile:
M[ξν] = V[ξν] U[ξν], with V the transformed input tiles (tiles x C_in) and U the transformed filters
(C_in x C_out). That is 36 multiplications per 16 outputs and input channel where the direct convolution
needs 144; the transforms are small dense products (8% of the step at 128 on an AVX2 CPU).

Where it pays: the ResNet generator's residual blocks (two 3x3, stride-1 convolutions at 4 x ngf channels,
about 85% of a CycleGAN step's arithmetic) on CPUs that train in float32, i.e. without native bfloat16:
there oneDNN's direct convolution already runs at 70-75% of the float32 peak, so fewer multiplications is
the lever left (docs/performance.md, session 15: 1.9x on a residual convolution forward + backward, AVX2). The
gradients use the same algorithm (transposed products), so forward and backward both gain.

Accuracy: float32 errors of the order of the direct convolution's own: against float64, relative (max) errors
of 1e-6 to 4e-6 for the output and both gradients at a residual block's shape, where oneDNN's direct
convolution shows 2e-7 to 3e-6 (tests/nets/test_winograd.py bounds it). The points at which the algorithm
samples (POINTS) decide this: Lavin & Gray's 0, ±1, ±2 gave 4e-6 to 1.4e-5. That is 1,000x below bfloat16's
rounding (the AMX default) and 300x below TF32's, which PyTorch uses by default for CUDA convolutions.
F(2x2, 3x3) (2.25x fewer multiplications) measured 1.4x slower than F(4x4, 3x3) here.
Results are deterministic, so resume stays bit-identical, but they are not those of the direct convolution:
`train.precision=fp32` (the strict path) never uses it (runtime.resolve_winograd).

`use_winograd(net)` turns eligible `nn.Conv2d` layers into `WinogradConv2d` in place (same parameters, same
state_dict); a WinogradConv2d runs the direct convolution for anything else (bfloat16 autocast, CUDA,
torch.compile's tracing), and for calls with fewer than MIN_TILES output tiles, where the transforms' fixed cost
outweighs the saved multiplications.

What the step keeps (session 21, docs/performance.md): a WinogradConv2d transforms its filters once per step,
not at every call and again in every backward (a fused step calls each residual convolution two or three
times); the forward saves V for the backward instead of transforming x again; and the weight gradient is
written in the weight's own channels_last order. 1.09x on the whole 128/resnet_6blocks step on an AVX2 CPU,
for about 0.3 GB more memory at 128 (0.8 GB at 256).
"""

from __future__ import annotations

import functools
import weakref
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from .layout import eager_cpu_float, is_channels_last

M = 4  # outputs per tile side
A = M + 2  # input tile side
S = A * A  # positions per tile: one matrix product each
# The points at which the Toom-Cook construction samples the polynomials (and infinity). Lavin & Gray use 0, ±1,
# ±2; points of the form 0, ±c, ±1/c make intermediate values cancel (Alam, Anderson, Barabasz & Gregg, "Winograd
# Convolution for Deep Neural Networks: Efficient Point Selection", ACM TECS 2022), and c = 3/2 measured 3-5x
# smaller float32 errors here than 0, ±1, ±2 for the output and both gradients, at the same cost
# (docs/performance.md, session 16).
POINTS = (Fraction(0), Fraction(3, 2), Fraction(-3, 2), Fraction(2, 3), Fraction(-2, 3))
# Calls with fewer 4x4 output tiles than this (batch x tiles per map) run the direct convolution. Measured forward +
# backward on an AVX2 CPU (AMD EPYC Zen 1, one thread; benchmarks/winograd_speed.py, docs/performance.md session
# 18): Winograd 1.4-3.7x slower at 4-8 tiles (8x8 maps at batch 1-2), even at 16-18, faster from 32 (0.39-0.95; the
# 128 and 256 setups' residual blocks have 64-512).
MIN_TILES = 24


def toom_cook(points: tuple[Fraction, ...], m: int = M, r: int = 3) -> tuple[list, list, list]:
    """The exact matrices (B^T, G, A^T) of Winograd F(m, r) sampling at `points` and infinity (m + r - 2 finite
    points): y = A^T [(G g) ⊙ (B^T d)] is the correlation y_i = sum_k g_k d_(i+k) of a tile d of m + r - 1 values
    with the filter g. It is the transpose of the Toom-Cook linear convolution s = V^-1 [(V_m h) ⊙ (V_r g)], with
    V_k the evaluation (Vandermonde) matrices of polynomials with k coefficients at the points (infinity takes
    the leading coefficient), so A^T = V_m^T, G = V_r and B^T = V^-T; row j of G is divided by
    f_j = prod_(l != j) (p_j - p_l) and row j of B^T multiplied by it, as in Lavin & Gray's matrices, which
    0, ±1, ±2 reproduce (tests/nets/test_winograd.py)."""
    n = m + r - 1
    assert len(points) == n - 1 and len(set(points)) == n - 1

    def vandermonde(k: int) -> list[list[Fraction]]:
        return [[p**i for i in range(k)] for p in points] + [[Fraction(int(i == k - 1)) for i in range(k)]]

    # B^T = V^-T: solve V^T B^T = I by Gauss-Jordan elimination over the rationals (exact)
    rows = [[v[j] for v in vandermonde(n)] + [Fraction(int(i == j)) for i in range(n)] for j in range(n)]
    for col in range(n):
        pivot = next(i for i in range(col, n) if rows[i][col] != 0)
        rows[col], rows[pivot] = rows[pivot], rows[col]
        rows[col] = [v / rows[col][col] for v in rows[col]]
        for i in range(n):
            if i != col and rows[i][col] != 0:
                rows[i] = [a - rows[i][col] * b for a, b in zip(rows[i], rows[col])]
    bt = [row[n:] for row in rows]
    g = vandermonde(r)
    for j, p in enumerate(points):
        f = Fraction(1)
        for q in points:
            f *= p - q if q != p else 1
        g[j] = [v / f for v in g[j]]
        bt[j] = [v * f for v in bt[j]]
    at = [[row[i] for row in vandermonde(m)] for i in range(m)]
    return bt, g, at


def _transforms(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """B^T ⊗ B^T (36 x 36), G ⊗ G (36 x 9), A^T ⊗ A^T (16 x 36), in the dtype and device of `like`."""
    return _kron_transforms(like.dtype, like.device)


@functools.lru_cache(maxsize=None)
def _kron_transforms(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Built once per dtype and device (constants, read only), not at every layer call of every step."""
    out = []
    for m in toom_cook(POINTS):  # vec(B^T d B) = (B^T ⊗ B^T) vec(d) for a row-major flattened tile d
        t = torch.tensor([[float(v) for v in row] for row in m], dtype=torch.float64)
        out.append(torch.kron(t, t).to(dtype=dtype, device=device))
    return tuple(out)


def _tiles(x: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) -> (size * size, N * Th * Tw * C): the size x size tiles every M pixels, one row per position
    in the tile, channels innermost (contiguous reads when x is channels_last)."""
    n, c, h, w = x.shape
    th, tw = (h - size) // M + 1, (w - size) // M + 1
    sn, sc, sh, sw = x.stride()
    view = x.as_strided((size, size, n, th, tw, c), (sh, sw, sn, M * sh, M * sw, sc))
    return view.reshape(size * size, n * th * tw * c)


def filters(w: torch.Tensor) -> torch.Tensor:
    """G g G^T for every filter: (C_out, C_in, 3, 3) -> (36, C_in, C_out), as a strided view of a (C_out, 36, C_in)
    tensor: one batched product straight from w's channels_last memory (C_out, 3, 3, C_in), which torch.bmm then
    reads as it is (transposed operands), so neither side is copied."""
    k, c = w.shape[:2]
    _, g, _ = _transforms(w)
    return (g @ w.permute(0, 2, 3, 1).reshape(k, 9, c)).permute(1, 2, 0)


class _Winograd(torch.autograd.Function):
    """y = conv2d(x, w, b) for a 3x3 filter, stride 1, no padding, output sides multiples of M; x and y
    channels_last."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, u: torch.Tensor) -> torch.Tensor:
        n, c, h, wd = x.shape
        k = w.shape[0]
        th, tw = (h - 2) // M, (wd - 2) // M
        bt, g, at = _transforms(x)
        v = (bt @ _tiles(x, A)).view(S, -1, c)  # B^T d B for every tile: (36, P, C_in)
        m = torch.bmm(v, u)  # (36, P, C_out)
        y = (at @ m.view(S, -1)).view(M, M, n, th, tw, k)  # A^T M A: (4, 4, N, Th, Tw, C_out)
        out = torch.empty(n, th, M, tw, M, k, dtype=y.dtype, device=y.device)  # the image, NHWC
        tiles = y.permute(2, 3, 0, 4, 1, 5)
        if b is None:
            out.copy_(tiles)
        else:
            torch.add(tiles, b, out=out)  # the bias in the same pass
        out = out.view(n, M * th, M * tw, k).permute(0, 3, 1, 2)
        # V (2.25x the input) rather than x: the backward needs x only to transform it again
        ctx.save_for_backward(v, w, u)
        ctx.input_shape = x.shape
        ctx.has_bias = b is not None
        return out

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        v, w, u = ctx.saved_tensors
        n, c, h, wd = ctx.input_shape
        k = w.shape[0]
        th, tw = (h - 2) // M, (wd - 2) // M
        bt, g, at = _transforms(v)
        dy = dy.contiguous(memory_format=torch.channels_last)
        dm = (at.t() @ _tiles(dy, M)).view(S, -1, k)  # A dY A^T: (36, P, C_out)
        du = torch.bmm(dm.transpose(1, 2), v)  # (36, C_out, C_in)
        # G^T dU G, one product per output channel, written in channels_last order (C_out, 3, 3, C_in)
        dw = (g.t() @ du.transpose(0, 1)).view(k, 3, 3, c).permute(0, 3, 1, 2)
        dw = dw.contiguous(memory_format=torch.channels_last if is_channels_last(w) else torch.contiguous_format)
        dv = torch.bmm(dm, u.transpose(1, 2))  # (36, P, C_in)
        dd = (bt.t() @ dv.view(S, -1)).view(A, A, n, th, tw, c)  # B dV B^T: each tile's input gradient
        # Tiles overlap by two pixels: sum them in four blocks (tile rows and columns 0-3 and 4-5), within each of
        # which no two tiles touch the same pixel. The first block covers all but the last two rows and columns.
        dx = torch.empty(n, h, wd, c, dtype=dy.dtype, device=dy.device)
        dx[:, M * th :].zero_()
        dx[:, :, M * tw :].zero_()
        sn, sh, sw, sc = dx.stride()
        for i, si in ((0, M), (M, 2)):
            for j, sj in ((0, M), (M, 2)):
                block = dx.as_strided((si, sj, n, th, tw, c), (sh, sw, sn, M * sh, M * sw, sc), i * sh + j * sw)
                if i == j == 0:
                    block.copy_(dd[:M, :M])
                else:
                    block.add_(dd[i : i + si, j : j + sj])
        db = dy.sum((0, 2, 3)) if ctx.has_bias else None
        return dx.permute(0, 3, 1, 2), dw, db, None


def winograd_conv3x3(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, u: torch.Tensor | None = None
) -> torch.Tensor:
    """`F.conv2d(x, weight, bias)` for a 3x3 filter (stride 1, no padding, no dilation, one group) by
    Winograd F(4x4, 3x3); any floating dtype (float64 for exactness tests) and size (output sides that are not
    multiples of 4 are computed up to the next one and cropped). The result has x's memory format. `u`:
    `filters(weight)` when the caller keeps it (WinogradConv2d does, per weight version); computed here if not."""
    h, w = x.shape[-2:]
    pad_h, pad_w = -(h - 2) % M, -(w - 2) % M
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    xl = F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x
    if u is None:
        with torch.no_grad():
            u = filters(weight)
    y = _Winograd.apply(xl.contiguous(memory_format=torch.channels_last), weight, bias, u)
    if pad_h or pad_w:
        y = y[..., : h - 2, : w - 2]
    return y.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


class WinogradConv2d(nn.Conv2d):
    """A 3x3, stride-1, unpadded `nn.Conv2d` (the residual blocks' convolution, after reflection padding)
    computed by Winograd F(4x4, 3x3) on a CPU in float32 (or float64); the direct convolution otherwise.
    `keep_filters` (set by `use_winograd`): hold the transformed filters between calls (see transformed_weight)."""

    keep_filters = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not eager_cpu_float(x, self.weight) or tiles(x) < MIN_TILES:
            return super().forward(x)
        return winograd_conv3x3(x, self.weight, self.bias, self.transformed_weight())

    def transformed_weight(self) -> torch.Tensor:
        """`filters(self.weight)`, computed once per version of the weight while a training step's graph holds it:
        a step calls a residual convolution two or three times with the same weights (the fused passes) and each
        call's backward needs it again, and transforming a 256 x 256 filter bank costs as much as transforming a
        batch-1 input. The layer keeps only a weak reference, so the transform lives as long as the graph that
        saved it (no memory between steps, none in inference). The key changes with every in-place update
        (optimizer step, load_state_dict: the version counter), a new tensor or layout, and inference mode
        (whose tensors a training step could not save for its backward). With `keep_filters` the layer holds the
        transform itself, for a network that only translates: each image (or tile) would otherwise transform the
        filters again, 3.6% of a 256-pixel image on an AVX2 CPU, for 9.4 MB held per 256-channel layer."""
        w = self.weight
        key = (w.data_ptr(), w._version, w.dtype, w.stride(), torch.is_inference_mode_enabled())
        cached_key, held = getattr(self, "_transformed", (None, None))
        u = (held if isinstance(held, torch.Tensor) else held()) if cached_key == key else None
        if u is None:
            with torch.no_grad():
                u = filters(w)
            self._transformed = (key, u if self.keep_filters else weakref.ref(u))
        return u


def tiles(x: torch.Tensor) -> int:
    """The 4x4 output tiles of a 3x3 unpadded convolution of x (N, C, H, W): what one Winograd call works on."""
    return x.shape[0] * -(-(x.shape[-2] - 2) // M) * -(-(x.shape[-1] - 2) // M)


def eligible(conv: nn.Module) -> bool:
    """A plain nn.Conv2d that Winograd F(4x4, 3x3) computes: 3x3, stride 1, no padding or dilation, one group."""
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (0, 0)
        and conv.dilation == (1, 1)
        and conv.groups == 1
    )


def use_winograd(net: nn.Module, *, keep_filters: bool = False) -> int:
    """Make every eligible nn.Conv2d in `net` a WinogradConv2d, in place (the same module objects and parameter
    tensors, so state_dict keys and an optimizer built before or after are unaffected). Returns how many it
    swapped. keep_filters: all its Winograd layers hold their transformed filters between calls (a network that
    only translates)."""
    count = 0
    for child in net.modules():
        if eligible(child):
            child.__class__ = WinogradConv2d  # a subclass adding only forward: same parameters and state
            count += 1
        if isinstance(child, WinogradConv2d):
            child.keep_filters = keep_filters
    return count
