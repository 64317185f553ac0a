"""What keeping freed memory on the heap (runtime.reuse_freed_memory) does to a CPU training step.

Each measurement runs in a fresh process (glibc's allocator settings belong to the whole process, and its
dynamic mmap threshold, once changed, cannot be turned back on): the benchmark's default training state
(benchmarks/train_step.py's `default` variant, random batch), `--warmup` untimed steps, then `--steps` timed
ones, with the minor page faults each step took (memory the kernel mapped and zeroed afresh). `default` is
glibc as a process starts; `reuse` is the setting every CPU training run now uses. Modes alternate, `--repeats`
times, so a load change hits both alike:

    python benchmarks/heap.py --size 128 --generator resnet_6blocks --threads 2
    python benchmarks/heap.py --size 256 --generator resnet_9blocks --threads 2 --steps 6
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(args) -> dict:
    import torch

    sys.path.insert(0, str(HERE))
    from train_step import Variant, time_steps, variant_overrides

    from cyclegan.runtime import reuse_freed_memory

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    heap = reuse_freed_memory(device) if args.mode == "reuse" else contextlib.nullcontext()
    with heap:
        v = Variant("default", variant_overrides("default", device), args, device)
        time_steps(v, args.warmup, device)
        times = time_steps(v, args.steps, device)
    return {
        "mode": args.mode,
        "s_per_iter_median": statistics.median(times),
        "faults_median": statistics.median(v.faults[args.warmup :]),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--generator", default="resnet_6blocks")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--mode", choices=["default", "reuse"], help=argparse.SUPPRESS)  # the child's
    args = p.parse_args(argv)
    args.ngf = args.ndf = 64
    args.batch_size, args.identity, args.device = 1, True, "cpu"
    if args.mode:
        print(json.dumps(child(args)))
        return
    rows = []
    for _ in range(args.repeats):
        for mode in ("default", "reuse"):
            cmd = [sys.executable, __file__, *(argv if argv is not None else sys.argv[1:]), "--mode", mode]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
            print(
                f"{mode:8s} {args.generator} {args.size}x{args.size}, {args.threads} threads: "
                f"{rows[-1]['s_per_iter_median']:.3f} s/iter, {rows[-1]['faults_median']:.0f} page faults/step",
                flush=True,
            )
    med = {m: statistics.median(r["s_per_iter_median"] for r in rows if r["mode"] == m) for m in ("default", "reuse")}
    ratio = med["default"] / med["reuse"]
    print(f"speed with reuse: {ratio:.2f}x the default's (medians over {args.repeats} processes each)")


if __name__ == "__main__":
    main()
