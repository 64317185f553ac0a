"""Where Winograd F(4x4, 3x3) (nets/winograd.py) is faster than the direct convolution on this CPU.

For each shape (channels, output map side, batch), the median time of one 3x3 convolution, forward and backward,
as `winograd_conv3x3` (channels_last input, as training runs it) and as oneDNN's direct convolution in NHWC and in
NCHW, and the ratio of Winograd's time to the faster direct one (below 1: Winograd faster), with the number of
4x4 output tiles per call, which decides it (docs/performance.md, session 18):

    python benchmarks/winograd_speed.py --threads 1
    python benchmarks/winograd_speed.py --shapes 256x32x2 64x16x1 --reps 15
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import torch
import torch.nn.functional as F

from cyclegan.nets.winograd import winograd_conv3x3

SHAPES = (
    "32x8x1 32x8x2 64x16x1 64x16x2 64x32x1 64x32x2 128x8x1 128x8x8 128x16x1 128x16x2 128x32x1 128x32x2 "
    "256x8x2 256x16x1 256x16x2 256x32x1 256x32x2 256x64x1 256x64x2"
).split()


def timed(conv, x: torch.Tensor, w: torch.Tensor, reps: int) -> float:
    """Median seconds of conv(x, w) forward and backward, fresh leaf tensors each time."""
    times = []
    for _ in range(reps + 1):  # the first call warms up and is dropped
        xi, wi = x.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
        t = time.perf_counter()
        y = conv(xi, wi)
        y.backward(torch.ones_like(y))
        times.append(time.perf_counter() - t)
    return statistics.median(times[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", nargs="+", default=SHAPES, help="CHANNELSxSIDExBATCH, SIDE the output map's side")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=9, help="timed calls per shape and method (median)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    print(f"{args.threads} thread(s); times in ms, forward + backward")
    print(f"{'channels':>8} {'map':>6} {'batch':>5} {'tiles':>5} {'NHWC':>9} {'NCHW':>9} {'Winograd':>9} {'ratio':>6}")
    for shape in args.shapes:
        c, side, batch = (int(v) for v in shape.split("x"))
        x = torch.randn(batch, c, side + 2, side + 2, generator=g)
        w = torch.randn(c, c, 3, 3, generator=g) * 0.05
        x_cl, w_cl = x.contiguous(memory_format=torch.channels_last), w.contiguous(memory_format=torch.channels_last)
        nhwc = timed(F.conv2d, x_cl, w_cl, args.reps)
        nchw = timed(F.conv2d, x, w, args.reps)
        wino = timed(winograd_conv3x3, x_cl, w_cl, args.reps)
        tiles = batch * math.ceil(side / 4) ** 2
        print(
            f"{c:>8} {f'{side}x{side}':>6} {batch:>5} {tiles:>5} {nhwc * 1e3:>9.2f} {nchw * 1e3:>9.2f} "
            f"{wino * 1e3:>9.2f} {wino / min(nhwc, nchw):>6.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
