"""Seconds per training step of CycleGAN, CUT and FastCUT on the same machine, interleaved (docs/cut.md).

The real networks, optimizers and `train_step` of each method (its preset: CycleGAN with the reference's
identity loss, CUT with its PatchNCE on Y, FastCUT with flips), batch 1, random images of --size. Every round
times each method in turn (order rotating), so a load change on a shared machine hits all alike; printed are
medians and the ratio to CycleGAN. The CUT paper's figures (one GPU, 256x256): CycleGAN 0.40 s/iter,
CUT 0.24 (0.60x), FastCUT 0.15 (0.38x).

    python benchmarks/methods_step.py --size 128 --generator resnet_9blocks --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cyclegan.config import build_config
from cyclegan.train import create_state, train_step

METHODS = ("cyclegan", "cut", "fastcut")
PRESET = {"cyclegan": "paper", "cut": "cut", "fastcut": "fastcut"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--generator", default="resnet_9blocks")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--precision", default="fp32", help="fp32 | bf16 | auto (train.precision)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's choice)")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sets = [
        f"model.generator={args.generator}",
        f"model.ngf={args.ngf}",
        f"model.ndf={args.ndf}",
        f"data.crop_size={args.size}",
        f"data.load_size={args.size}",
        f"train.precision={args.precision}",
    ]
    states = {m: create_state(build_config([PRESET[m]], [], sets), device) for m in METHODS}
    gen = torch.Generator().manual_seed(0)
    batch = {k: (torch.rand(1, 3, args.size, args.size, generator=gen) * 2 - 1).to(device) for k in "AB"}

    def step(m: str) -> float:
        t0 = time.perf_counter()
        terms = train_step(states[m], batch)
        float(sum(v.float() for v in terms.values()))  # waits for the device
        return time.perf_counter() - t0

    for m in METHODS:
        for _ in range(args.warmup):
            step(m)
    times = {m: [] for m in METHODS}
    for r in range(args.rounds):
        for m in METHODS[r % 3 :] + METHODS[: r % 3]:
            times[m].append(step(m))
    base = statistics.median(times["cyclegan"])
    print(
        f"{args.size}x{args.size}, {args.generator} ngf {args.ngf}, ndf {args.ndf}, {args.precision}, "
        f"{torch.get_num_threads()} thread(s), {args.rounds} rounds"
    )
    print("| method | s/iter (median) | vs CycleGAN |\n| --- | --- | --- |")
    for m in METHODS:
        med = statistics.median(times[m])
        print(f"| {m} | {med:.3f} | {med / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
