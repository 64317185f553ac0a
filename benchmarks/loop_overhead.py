"""Does the training loop add hidden cost? A real `cyclegan train` run against the benchmark's step (issue 23).

Times, in one run, on the same machine and thread count:

1. `benchmarks/train_step.py --variants default`: the bare training step as `cyclegan train` runs it with no
   flags (random batch already in memory, nothing else), median seconds per iteration;
2. a real `cyclegan train` on a dataset folder for --steps iterations with the default settings at that size
   (data loading, augmentation, the history pools, the divergence guard, logging, sample grids, checkpoints:
   all I/O included), in a fresh process: its whole wall time (start-up included) and its steady-state
   seconds per iteration from log.jsonl's `wall_s` (after the first --skip steps);
3. the benchmark again (the machine's load drifts; the two benchmark runs bracket the real one).

It prints both and their ratio. The issue's bar: the real run within 10% of the benchmark's step time.

    python benchmarks/loop_overhead.py ../shared/data/horse2zebra --size 128 --generator resnet_6blocks \\
        --steps 500 --threads 2

`--cpu-kind avx2` (or avx512) makes both the benchmark and the real run take every `auto` choice as on a CPU
without native bf16 (float32, Winograd, channels_last); with ONEDNN_MAX_CPU_ISA=AVX2 (or AVX512_CORE) and
MKL_ENABLE_INSTRUCTIONS=AVX2 in the environment the kernels are that CPU's too (both processes inherit them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def bench(args, out: Path) -> float:
    """Median s/iter of the default step (benchmarks/train_step.py in its own process)."""
    cmd = [
        sys.executable,
        str(HERE / "train_step.py"),
        "--size",
        str(args.size),
        "--generator",
        args.generator,
        "--variants",
        "default",
        "--threads",
        str(args.threads),
        "--rounds",
        str(args.rounds),
        "--iters",
        "3",
        "--warmup",
        "2",
        "--no-floors",
        "--json",
        str(out),
    ]
    if args.cpu_kind:
        cmd += ["--cpu-kind", args.cpu_kind]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    rows = json.loads(out.read_text())["results"]
    return next(r["s_per_iter_median"] for r in rows if r["variant"] == "default")


def real_run(args, run: Path) -> dict:
    """A fresh `cyclegan train` process for --steps steps; its wall time and steady-state s/iter."""
    load = round(args.size * 286 / 256)  # the paper's resize-then-crop ratio (143 for 128, 286 for 256)
    sets = [
        f"data.load_size={load}",
        f"data.crop_size={args.size}",
        f"model.generator={args.generator}",
        f"train.threads={args.threads}",
    ]
    argv = ["train", str(args.data), "--run-dir", str(run), "--no-progress", "--max-steps", str(args.steps)]
    argv += [a for s in sets for a in ("--set", s)]
    if args.cpu_kind:  # the CLI itself, with runtime's answers as on that CPU (common.pretend_cpu)
        code = (
            f"import sys; sys.path.insert(0, {str(HERE)!r}); from common import pretend_cpu; "
            f"from cyclegan.cli import main\nwith pretend_cpu({args.cpu_kind!r}): sys.exit(main({argv!r}))"
        )
        cmd = [sys.executable, "-c", code]
    else:
        cmd = [sys.executable, "-m", "cyclegan", *argv]
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    timed = [(r["step"], r["wall_s"]) for r in records if "wall_s" in r and "step" in r and "it_per_s" in r]
    (s0, w0), (s1, w1) = next(t for t in timed if t[0] >= args.skip), timed[-1]
    config = json.loads((run / "config.json").read_text())["train"]
    return {
        "wall_s": wall,
        "s_per_iter_whole": wall / args.steps,
        "s_per_iter_steady": (w1 - w0) / (s1 - s0),
        "chosen": {k: config.get(k) for k in ("precision", "channels_last", "winograd", "compile", "adam")},
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", type=Path, help="a dataset folder (trainA, trainB), e.g. ../shared/data/horse2zebra")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--generator", default="resnet_6blocks")
    p.add_argument("--steps", type=int, default=500, help="iterations of the real run")
    p.add_argument("--skip", type=int, default=50, help="steps left out of the steady-state rate (start-up)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="benchmark rounds (3 steps each) per benchmark run")
    p.add_argument(
        "--cpu-kind",
        choices=("avx512", "avx2"),
        help="decide every auto as on a CPU without native bf16 (see benchmarks/train_step.py --cpu-kind)",
    )
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    if not (args.data / "trainA").is_dir():
        sys.exit(f"{args.data}: no trainA folder; give a dataset folder with trainA and trainB")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        before = bench(args, tmp / "before.json")
        real = real_run(args, tmp / "run")
        after = bench(args, tmp / "after.json")
    step = statistics.mean([before, after])
    result = {
        "size": args.size,
        "generator": args.generator,
        "threads": args.threads,
        "steps": args.steps,
        "cpu_kind": args.cpu_kind,
        "bench_s_per_iter": [before, after],
        **real,
        "whole_vs_bench": real["s_per_iter_whole"] / step,
        "steady_vs_bench": real["s_per_iter_steady"] / step,
    }
    print(f"{args.size}/{args.generator}, {args.threads} thread(s), defaults chosen: {real['chosen']}")
    print(f"benchmark step (default):         {before:.3f} s/iter before, {after:.3f} after")
    print(f"real run, {args.steps} steps, whole:  {real['s_per_iter_whole']:.3f} s/iter ({real['wall_s']:.0f} s)")
    print(f"real run, steady (after {args.skip}):   {real['s_per_iter_steady']:.3f} s/iter")
    print(f"ratio to the benchmark: whole {result['whole_vs_bench']:.3f}, steady {result['steady_vs_bench']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
