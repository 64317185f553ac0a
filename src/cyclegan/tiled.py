"""Translating images too large to translate in one piece, with the result of one piece (`translate --tile N`).

A ResNet generator's instance norms take statistics over the whole image, so cutting an image into tiles and
translating each changes every tile's colours (seams). Here the statistics stay those of the whole image:

- head (c7s1, two stride-2 convs, at full and half resolution) and tail (two transposed convs and c7s1): run
  tile by tile, each tile with a border of context wide enough that the tile's core is exact. Before each
  instance norm, one pass over all tiles sums the per-channel mean and variance of the whole image (float64);
  the following passes normalise with them. A head or tail with k norms costs k + 1 passes of its convs;
- the residual blocks (at quarter resolution, a sixteenth of the pixels): run on the whole tensor, as usual.

Only the head's and tail's full-resolution activations (64 channels per pixel and more) are ever tile-sized;
the whole-image tensors are the input, the output and the quarter-resolution feature maps. The output equals
the one-piece forward pass to float rounding (tests/test_tiled.py), for about 1.4x the arithmetic.
"""

from __future__ import annotations

from fractions import Fraction

import torch
from torch import nn

from .nets.generators import ResnetBlock, ResnetGenerator

# Images above AUTO_TILE_PIXELS translate in tiles of AUTO_TILE even without --tile, where the generator can: in one
# piece resnet_9blocks needs ~1.1 KB per pixel in fp32 (18 GB at 16 Mpx), in tiles ~0.35 KB (docs/reliability.md).
AUTO_TILE_PIXELS = 16 * 2**20
AUTO_TILE = 512
HEAD_HALO = 32  # input pixels of context around a head tile: the head disturbs <= 12 pixels from a tile's cut edges
TAIL_HALO = 8  # quarter-resolution pixels around a tail tile (32 output pixels; the tail disturbs <= 12)


def tiling_problem(net) -> str | None:
    """Why `net` (a translator's network, or a method's translation procedure) cannot be translated in tiles (None
    if it can)."""
    if not isinstance(net, nn.Module):
        return "this method translates with a procedure, not one network"
    if not isinstance(net, ResnetGenerator):
        return (
            f"{type(net).__name__} is not a ResNet generator (only those translate in tiles; U-Nets see the whole "
            "image at their bottleneck)"
        )
    norms = [m for m in net.modules() if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d))]
    if any(not isinstance(m, nn.InstanceNorm2d) or m.track_running_stats for m in norms):
        return "its generator uses batch norm (or stored statistics); tiles need instance norm or none"
    if net.training and any(isinstance(m, nn.Dropout) for m in net.modules()):
        return "dropout is on (train mode), and each pass over the tiles would draw other masks; use --eval-mode"
    return None


def auto_tile(net, height: int, width: int) -> int:
    """The tile size for an image of height x width when none was asked for: AUTO_TILE above AUTO_TILE_PIXELS if
    `net` can tile, else 0 (one piece)."""
    return AUTO_TILE if height * width > AUTO_TILE_PIXELS and tiling_problem(net) is None else 0


@torch.no_grad()
def tiled_forward(net: ResnetGenerator, x: torch.Tensor, tile: int) -> torch.Tensor:
    """net(x) computed in tiles of `tile` x `tile` input pixels (a multiple of 4); x: (B, C, H, W), H and W "
    "multiples of 4."""
    if tile % 4 or tile < 4:
        raise ValueError(f"tile {tile}: must be a positive multiple of 4")
    layers = list(net.model)
    blocks = [i for i, m in enumerate(layers) if isinstance(m, ResnetBlock)]
    first, last = blocks[0], blocks[-1]
    y = _streamed(layers[:first], x, tile, HEAD_HALO)
    for block in layers[first : last + 1]:
        y = block(y)
    return _streamed(layers[last + 1 :], y, tile // 4, TAIL_HALO)


def _streamed(layers: list[nn.Module], x: torch.Tensor, tile: int, halo: int) -> torch.Tensor:
    """Apply `layers` (local layers and instance norms) to x in tiles, with whole-image norm statistics."""
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for k, layer in enumerate(layers):
        if isinstance(layer, nn.InstanceNorm2d):
            total = count = 0
            for _, out in _tiles(layers[:k], x, tile, halo, stats):
                out = out.double()
                total = total + torch.stack([out.sum((2, 3)), (out * out).sum((2, 3))])
                count += out.shape[2] * out.shape[3]
            mean, square = total / count
            stats[k] = (mean, square - mean * mean)
    result = None
    for (y0, y1, x0, x1, scale), out in _tiles(layers, x, tile, halo, stats):
        if result is None:
            result = out.new_empty(*out.shape[:2], int(x.shape[2] * scale[0]), int(x.shape[3] * scale[1]))
        result[:, :, int(y0 * scale[0]) : int(y1 * scale[0]), int(x0 * scale[1]) : int(x1 * scale[1])] = out
    return result


def _tiles(layers, x, tile, halo, stats):
    """For each tile: ((y0, y1, x0, x1, scale), the layers' output on the tile's core), run with context `halo`."""
    h, w = x.shape[2:]
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ey0, ey1, ex0, ex1 = max(y0 - halo, 0), min(y1 + halo, h), max(x0 - halo, 0), min(x1 + halo, w)
            part = x[:, :, ey0:ey1, ex0:ex1]
            for k, layer in enumerate(layers):
                part = _instance_norm(part, layer, *stats[k]) if k in stats else layer(part)
            sy, sx = Fraction(part.shape[2], ey1 - ey0), Fraction(part.shape[3], ex1 - ex0)  # 1/4 ... 4
            core = part[:, :, int((y0 - ey0) * sy) : int((y1 - ey0) * sy), int((x0 - ex0) * sx) : int((x1 - ex0) * sx)]
            yield (y0, y1, x0, x1, (sy, sx)), core


def _instance_norm(x: torch.Tensor, norm: nn.InstanceNorm2d, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """`norm` with the given (B, C) statistics instead of x's own."""
    scale = torch.rsqrt(var + norm.eps).to(x.dtype)
    y = (x - mean.to(x.dtype)[:, :, None, None]) * scale[:, :, None, None]
    if norm.affine:
        y = y * norm.weight[None, :, None, None] + norm.bias[None, :, None, None]
    return y
