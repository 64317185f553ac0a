"""Float32 accuracy of Winograd F(4x4, 3x3) (nets/winograd.py) for different interpolation points.

For each set of points (and the direct float32 convolution, for scale) and each shape, the maximum relative error
(to the largest value) of the output, the input gradient and the weight gradient against a float64 direct
convolution, over --seeds seeds; then, per set, the range over the shapes. Shapes are the generators' residual
convolutions and smaller ones, with signed (normal) or rectified inputs:

    python benchmarks/winograd_points.py
    python benchmarks/winograd_points.py --scan   # 0, ±c, ±1/c for c from 6/5 to 2, at 256 channels, 32x32

The points change only the transforms' constants, not the work: the cost is the same for all (docs/performance.md,
session 16).
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction

import torch
import torch.nn.functional as F

from cyclegan.nets import winograd

Fr = Fraction
SETS = {
    "0, ±1, ±2 (Lavin & Gray)": (0, 1, -1, 2, -2),
    "0, ±1, 1/2, -2 (Barabasz et al.)": (0, 1, -1, Fr(1, 2), -2),
    "0, ±3/2, ±2/3": (0, Fr(3, 2), Fr(-3, 2), Fr(2, 3), Fr(-2, 3)),
    "0, ±4/3, ±3/4": (0, Fr(4, 3), Fr(-4, 3), Fr(3, 4), Fr(-3, 4)),
    "0, ±2, ±1/2": (0, 2, -2, Fr(1, 2), Fr(-1, 2)),
}
# (batch, channels, output side, signed inputs, weight std)
SHAPES = [(2, 256, 32, False, 0.02), (1, 256, 64, False, 0.02), (4, 64, 16, True, 0.1), (1, 128, 40, False, 0.05)]
SHAPES += [(8, 32, 8, True, 0.2)]


def errors(conv, seed: int, n: int, c: int, side: int, signed: bool, std: float) -> tuple[float, float, float]:
    g = torch.Generator().manual_seed(seed)
    x64 = torch.randn(n, c, side, side, generator=g, dtype=torch.float64)
    x64 = F.pad(x64 if signed else x64.relu(), (1, 1, 1, 1), mode="reflect")  # as the residual blocks pad
    w64 = torch.randn(c, c, 3, 3, generator=g, dtype=torch.float64) * std
    dy64 = torch.randn(n, c, side, side, generator=g, dtype=torch.float64)
    out = []
    for fn, dtype in ((F.conv2d, torch.float64), (conv, torch.float32)):
        x, w = (t.to(dtype, copy=True).requires_grad_() for t in (x64, w64))
        y = fn(x, w)
        y.backward(dy64.to(dtype))
        out.append((y.detach().double(), x.grad.double(), w.grad.double()))
    return tuple(float((a - b).abs().max() / b.abs().max()) for a, b in zip(out[1], out[0]))


def use_points(points) -> None:
    winograd.POINTS = tuple(Fraction(p) for p in points)
    winograd._kron_transforms.cache_clear()


def worst(conv, shape, seeds: int) -> tuple[float, ...]:
    per_seed = [errors(conv, s, *shape) for s in range(seeds)]
    return tuple(max(e[i] for e in per_seed) for i in range(3))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scan", action="store_true", help="scan c in 0, ±c, ±1/c instead")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    chosen = winograd.POINTS
    print(f"nets/winograd.py samples at {', '.join(str(q) for q in chosen)} and infinity", flush=True)
    if args.scan:
        print("| c | output | input gradient | weight gradient | sum |\n| --- | --- | --- | --- | --- |")
        for c in (Fr(6, 5), Fr(5, 4), Fr(9, 7), Fr(4, 3), Fr(11, 8), Fr(7, 5), Fr(3, 2), Fr(8, 5), Fr(5, 3), 2):
            use_points((0, c, -c, 1 / Fr(c), -1 / Fr(c)))
            e = worst(winograd.winograd_conv3x3, SHAPES[0], args.seeds)
            print(f"| {c} | {e[0]:.2e} | {e[1]:.2e} | {e[2]:.2e} | {sum(e):.2e} |", flush=True)
        use_points(chosen)
        return 0
    print("| points | output | input gradient | weight gradient |\n| --- | --- | --- | --- |")
    rows = [("direct float32 convolution (oneDNN)", F.conv2d, None)]
    rows += [(name, winograd.winograd_conv3x3, pts) for name, pts in SETS.items()]
    for name, conv, pts in rows:
        if pts is not None:
            use_points(pts)
        e = [worst(conv, shape, args.seeds) for shape in SHAPES]
        cells = [f"{min(v[i] for v in e):.1e} to {max(v[i] for v in e):.1e}" for i in range(3)]
        print(f"| {name} | {' | '.join(cells)} |", flush=True)
    use_points(chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
