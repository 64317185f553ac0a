"""What torch.compile costs (the first step) against what it gains (every later step), and what the
inductor cache saves a second run: the numbers behind "compile by default only when the run has more
than N steps" (src/cyclegan/runtime.py).

Each measurement runs in a fresh Python process (as a new `cyclegan train` would), with
TORCHINDUCTOR_CACHE_DIR pointing at a folder of its own: run 1 starts from an empty cache ("cold"),
run 2 reuses the folder run 1 filled ("warm": inductor's FX graph cache and AOTAutograd cache, on by
default in torch 2.14). In each process the compiled state's first step is timed, then eager and
compiled steps alternate (`--rounds`), so their steady-state ratio is measured under the same load.

    python benchmarks/compile_cost.py --setups 128/resnet_6blocks --variants bf16+cl fp32 --threads 1

compile cost = first compiled step - a steady compiled step; gain = eager step - compiled step;
break-even N = compile cost / gain (steps after which compiling has paid for itself; none if gain <= 0).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(args) -> dict:
    """Inside the fresh process: time the compiled state's first step, then alternate eager/compiled steps."""
    import torch

    sys.path.insert(0, str(HERE))
    from train_step import make_config, random_batch, variant_overrides

    from cyclegan.train import create_state, train_step

    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = "cpu"
    device = torch.device("cpu")
    size, generator = args.setup.split("/")
    args.size, args.generator = int(size), generator
    eager_cfg = make_config(args, variant_overrides(args.variant, device))
    compiled_cfg = make_config(args, variant_overrides(args.variant + "+compile", device))
    eager, compiled = create_state(eager_cfg, device), create_state(compiled_cfg, device)
    batch = random_batch(args, device, eager.channels_last)
    t = time.perf_counter()
    train_step(compiled, batch)
    first = time.perf_counter() - t
    train_step(eager, batch)
    times = {"eager": [], "compiled": []}
    for _ in range(args.rounds):
        for name, state in (("eager", eager), ("compiled", compiled)):
            t = time.perf_counter()
            train_step(state, batch)
            times[name].append(time.perf_counter() - t)
    e, c = statistics.median(times["eager"]), statistics.median(times["compiled"])
    cost, gain = first - c, e - c
    return {
        "setup": args.setup,
        "variant": args.variant,
        "first_step_s": first,
        "eager_s": e,
        "compiled_s": c,
        "speedup": e / c,
        "compile_cost_s": cost,
        "gain_per_step_s": gain,
        "break_even_steps": cost / gain if gain > 0 else None,
        "times": times,
    }


def run_once(args, setup: str, variant: str, cache_dir: str, label: str) -> dict:
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache_dir, OMP_NUM_THREADS=str(args.threads or 1))
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--setup",
        setup,
        "--variant",
        variant,
        "--rounds",
        str(args.rounds),
        "--threads",
        str(args.threads),
    ]
    t = time.perf_counter()
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{setup} {variant} ({label}) failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(cache=label, process_s=time.perf_counter() - t)
    print(
        f"{setup} {variant} {label:4s}: first step {result['first_step_s']:.1f}s, eager {result['eager_s']:.3f}s, "
        f"compiled {result['compiled_s']:.3f}s ({result['speedup']:.2f}x), "
        f"compile cost {result['compile_cost_s']:.1f}s, "
        f"break-even {result['break_even_steps'] and round(result['break_even_steps'])} steps",
        flush=True,
    )
    return result


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setups", nargs="+", default=["128/resnet_6blocks"], metavar="SIZE/GENERATOR")
    p.add_argument(
        "--variants", nargs="+", default=["bf16+cl", "fp32"], help="eager variants; each is also run +compile"
    )
    p.add_argument("--rounds", type=int, default=3, help="eager/compiled step pairs per process")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-warm", dest="warm", action="store_false", help="skip the second (warm-cache) process")
    p.add_argument("--json")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--setup", help=argparse.SUPPRESS)
    p.add_argument("--variant", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        args.ngf = args.ndf = 64
        args.batch_size, args.identity = 1, True
        print(json.dumps(child(args)))
        return []
    results = []
    for setup in args.setups:
        for variant in args.variants:
            with tempfile.TemporaryDirectory(prefix="inductor_cache_") as cache:
                results.append(run_once(args, setup, variant, cache, "cold"))
                if args.warm:
                    results.append(run_once(args, setup, variant, cache, "warm"))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
