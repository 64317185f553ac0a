"""Profile the real CycleGAN training step with torch.profiler: where the time goes, per operator.

Builds the real state (`cyclegan.train.create_state`) for each variant (same tokens as
benchmarks/train_step.py: fp32|bf16, cl, compile, forloop|foreach|fused), takes `--warmup` untimed steps,
then profiles `--steps` steps and prints, per variant, the operators by self CPU time, grouped into
families (convolution forward/backward, instance norm, reflection padding, transposed convolution,
layout conversions, element-wise, losses, optimizer), so two variants can be compared side by side:

    python benchmarks/profile_step.py --size 128 --generator resnet_6blocks --variants bf16 bf16+cl --threads 1
    python benchmarks/profile_step.py --variants stock+bf16+foreach stock+bf16+cl+foreach bf16 bf16+cl --steps 2

The token `stock` profiles the networks as they were before nets/layout.py: PyTorch's own InstanceNorm2d
and ReflectionPad2d classes swapped back in (with train/state.py's channels_last guard hooks, which then
apply), for a before/after comparison in one process. Variants are profiled in turn, one step each per
round (`--steps` rounds), so a load change on a shared machine hits them alike.

`--json FILE` writes the per-family and per-operator totals (milliseconds per step).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_json
from train_step import make_config, random_batch, variant_overrides

from cyclegan.nets import layout
from cyclegan.train import create_state, train_step

# operator name (substring) -> family; the first match wins, so the specific names come first
FAMILIES = (
    ("convolution_backward_overrideable", "conv transpose/other backward"),
    ("mkldnn_convolution_backward", "conv backward"),
    ("convolution_backward", "conv backward"),
    ("slow_conv_transpose", "conv transpose"),
    ("conv_transpose", "conv transpose"),
    ("mkldnn_convolution", "conv forward"),
    ("_convolution", "conv forward"),
    ("conv2d", "conv forward"),
    ("native_batch_norm_backward", "instance norm backward"),
    ("batch_norm_backward", "instance norm backward"),
    ("native_group_norm_backward", "instance norm backward"),
    ("batch_norm", "instance norm"),
    ("instance_norm", "instance norm"),
    ("group_norm", "instance norm"),
    ("reflection_pad2d_backward", "reflection pad backward"),
    ("reflection_pad", "reflection pad"),
    ("copy_", "copies / layout conversions"),
    ("contiguous", "copies / layout conversions"),
    ("clone", "copies / layout conversions"),
    ("_to_copy", "copies / layout conversions"),
    ("adam", "optimizer"),
    ("_foreach", "optimizer"),
    ("addcdiv", "optimizer"),
    ("lerp", "optimizer"),
    ("l1_loss", "losses"),
    ("mse", "losses"),
    ("pow", "losses"),
    ("sgn", "losses"),
    ("abs", "losses"),
    ("threshold_backward", "activations"),
    ("relu", "activations"),
    ("leaky_relu", "activations"),
    ("tanh", "activations"),
    ("Torch-Compiled Region", "compiled graph"),
    ("CompiledFunction", "compiled graph"),
)


def family(name: str) -> str:
    low = name.lower()
    return next((f for key, f in FAMILIES if key.lower() in low), "other")


def use_stock_layers(nets: nn.Module) -> int:
    """Turn nets/layout.py's layers back into PyTorch's own classes (same attributes, stock forward)."""
    n = 0
    for m in nets.modules():
        for ours, stock in ((layout.InstanceNorm2d, nn.InstanceNorm2d), (layout.ReflectionPad2d, nn.ReflectionPad2d)):
            if type(m) is ours:
                m.__class__ = stock
                n += 1
    return n


def build(spec: str, args, device: torch.device):
    tokens = spec.split("+")
    cfg = make_config(args, variant_overrides("+".join(t for t in tokens if t != "stock"), device))
    state = create_state(cfg, device)
    if "stock" in tokens:
        use_stock_layers(state.nets)
    batch = random_batch(args, device, state.channels_last)
    for _ in range(args.warmup):
        train_step(state, batch)
    return state, batch


def profile_variants(specs: list[str], args, device: torch.device) -> list[dict]:
    built = {s: build(s, args, device) for s in specs}
    ops = {s: defaultdict(float) for s in specs}
    wall = {s: 0.0 for s in specs}
    for _ in range(args.steps):
        for spec, (state, batch) in built.items():
            t = time.perf_counter()
            with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
                train_step(state, batch)
            wall[spec] += (time.perf_counter() - t) / args.steps
            for e in prof.key_averages():
                ops[spec][e.key] += e.self_cpu_time_total / 1e3 / args.steps
    results = []
    for spec in specs:
        fams: dict[str, float] = defaultdict(float)
        for name, ms in ops[spec].items():
            fams[family(name)] += ms
        results.append(
            {
                "variant": spec,
                "wall_ms_per_step": wall[spec] * 1e3,
                "families_ms": dict(fams),
                "ops_ms": dict(sorted(ops[spec].items(), key=lambda kv: -kv[1])[: args.top]),
            }
        )
    return results


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--generator", default="resnet_6blocks")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--identity", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--variants", nargs="+", default=["bf16", "bf16+cl"])
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--steps", type=int, default=1, help="profiled steps per variant (rounds)")
    p.add_argument("--top", type=int, default=25, help="operators listed per variant")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.device = "cpu"
    device = torch.device("cpu")
    results = profile_variants(args.variants, args, device)
    names = sorted({f for r in results for f in r["families_ms"]}, key=lambda f: -results[0]["families_ms"].get(f, 0))
    rows = [{"family": f, **{r["variant"]: r["families_ms"].get(f, 0.0) for r in results}} for f in names]
    rows.append({"family": "step wall time (profiled)", **{r["variant"]: r["wall_ms_per_step"] for r in results}})
    print(
        f"\n{args.generator} {args.size}x{args.size}, batch {args.batch_size}, {torch.get_num_threads()} threads: "
        "self CPU ms per step by family"
    )
    print_table(rows, [("family", "family")] + [(r["variant"], r["variant"]) for r in results])
    for r in results:
        print(f"\n{r['variant']}: top operators (self CPU ms per step)")
        print_table([{"op": k, "ms": v} for k, v in r["ops_ms"].items()], [("op", "operator"), ("ms", "ms")])
    out = {
        "config": {k: getattr(args, k) for k in ("size", "generator", "batch_size", "steps", "threads")},
        "results": results,
    }
    write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
