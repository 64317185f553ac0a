"""Benchmark the real CycleGAN training step: the plain eager float32 path against fast paths.

Builds the real networks and optimizers (`cyclegan.train.create_state`) and times the real
`cyclegan.train.train_step`, for the plain path (float32, contiguous NCHW, no compilation, PyTorch's
default Adam kernel for the device) and for each fast variant, all in one process. Timing is
interleaved: every round runs each variant in turn (the order rotating), so a load change on a shared
machine hits all variants alike; speedups are ratios of medians, and also the median of per-round
ratios ("paired").

Every variant starts from the same seeded weights and takes its first step on the same batch, so the
first step doubles as the fidelity check: loss terms and per-network gradients against the plain path.

On a CPU the whole process keeps freed memory on the heap as a training run does
(runtime.reuse_freed_memory), for every row; the `faults/step` column counts the minor page faults of each
timed step (benchmarks/heap.py compares the setting against glibc's own, each in a fresh process). Peak
memory is measured on one more, untimed step per variant after the timed rounds.

    python benchmarks/train_step.py --size 128 --generator resnet_6blocks --precision bf16
    python benchmarks/train_step.py --size 256 --generator resnet_9blocks --variants fp32+foreach bf16 bf16+compile
    python benchmarks/train_step.py --size 64 --variants bf16 --curves 200 --data ../shared/data/horse2zebra
    python benchmarks/train_step.py --reference ../shared/reference/upstream-2a7afba --threads 1
    ONEDNN_MAX_CPU_ISA=AVX512_CORE MKL_ENABLE_INSTRUCTIONS=AVX512 python benchmarks/train_step.py \
        --reference ../shared/reference/upstream-2a7afba --cpu-kind avx512 \
        --variants default default+nowino   # as a CPU without native bf16: with and without Winograd

With `--reference DIR` (the reference implementation, ../shared/reference/README.md) a `reference` row
times the reference's own training step (its CycleGANModel.optimize_parameters) in the same rounds, every
row gets its ratio to it, and the machine's measured peak (a large 3x3 convolution in float32, bfloat16
and bfloat16 channels_last; benchmarks/peak.py) is printed with each row's fraction of it (FLOPs of one
step counted by torch's FlopCounterMode, divided by its time). Without --size/--generator/--setups it
runs both paper setups, 128/resnet_6blocks and 256/resnet_9blocks, and without --variants it measures
`default` (the trainer exactly as `cyclegan train` runs it with no flags: whatever the defaults are
today), `bf16` and `bf16+cl`.

Variant specs are tokens joined by "+": a precision (fp32 | bf16 | fp16 | auto), `cl` (channels_last),
`wino` / `nowino` (train.winograd true / false: Winograd F(4x4, 3x3) residual convolutions), `compile`
(torch.compile, inductor), an Adam kernel (forloop | foreach | fused; default: the trainer's
`auto`), `ema` (moving average of the generators, optim.ema_decay=0.999), `default` (the trainer's own
defaults, no precision/layout/compile/Adam overrides at all). Without --variants, one variant is built
from --precision / --channels-last / --compile.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ISA_VAR,
    MB,
    PeakMemory,
    machine,
    pretend_cpu,
    print_table,
    summarize,
    sync,
    tensor_bytes,
    write_json,
)
from peak import bf16_kind, conv_peak, count_flops, gflops, isa_flags  # noqa: E402
from reference_step import ReferenceStep  # noqa: E402

from cyclegan.config import build_config  # noqa: E402
from cyclegan.errors import UserError  # noqa: E402
from cyclegan.runtime import resolve_device, resolve_precision, reuse_freed_memory  # noqa: E402
from cyclegan.train import create_state, train_step  # noqa: E402

PRECISIONS = ("fp32", "bf16", "fp16", "auto")
ADAMS = ("forloop", "foreach", "fused")


def plain_overrides(device: torch.device) -> list[str]:
    """The plain eager float32 step, with PyTorch's default Adam for the device (what a
    straightforward implementation such as the reference gets)."""
    adam = "foreach" if device.type == "cuda" else "forloop"
    return [
        "train.precision=fp32",
        "train.channels_last=false",
        "train.winograd=false",
        "train.compile=false",
        f"train.adam={adam}",
    ]


def variant_overrides(spec: str, device: torch.device) -> list[str]:
    """'bf16+cl+compile' -> config overrides (on top of the plain path unless 'default' is given)."""
    tokens = spec.split("+")
    out = [] if "default" in tokens else plain_overrides(device)
    if "default" not in tokens and not any(t in ADAMS for t in tokens):
        out.append("train.adam=auto")
    for t in tokens:
        if t in PRECISIONS:
            out.append(f"train.precision={t}")
        elif t == "cl":
            out.append("train.channels_last=true")
        elif t == "wino":
            out.append("train.winograd=true")
        elif t == "nowino":
            out.append("train.winograd=false")
        elif t == "compile":
            out.append("train.compile=true")
        elif t == "graphs":  # torch.compile recording CUDA graphs (the step marks each iteration)
            out += ["train.compile=true", "train.compile_mode=reduce-overhead"]
        elif t in ADAMS:
            out.append(f"train.adam={t}")
        elif t == "ema":
            out.append("optim.ema_decay=0.999")
        elif t not in ("default", "plain"):
            raise SystemExit(
                f"unknown token {t!r} in variant {spec!r}; use fp32|bf16|fp16|auto, cl, wino, nowino, compile, graphs, "
                f"forloop|foreach|fused, ema, default"
            )
    return out


def make_config(args, overrides: list[str], seed: int = 0):
    base = [
        f"model.generator={args.generator}",
        f"model.ngf={args.ngf}",
        f"model.ndf={args.ndf}",
        f"train.batch_size={args.batch_size}",
        f"train.seed={seed}",
        f"train.device={args.device}",
        f"loss.lambda_identity={0.5 if args.identity else 0.0}",
    ]
    return build_config([], [], base + overrides)


def random_batch(args, device: torch.device, channels_last: bool) -> dict:
    g = torch.Generator().manual_seed(1234)
    batch = {k: (torch.rand(args.batch_size, 3, args.size, args.size, generator=g) * 2 - 1).to(device) for k in "AB"}
    if channels_last:
        batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    return batch


def nets_channels_last(nets) -> bool:
    """Whether the trainer put the networks in NHWC (read from the weights, so that a `default` variant
    reports what the defaults chose, whatever the config field says)."""
    w = next((p for p in nets.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1), None)
    return w is not None and not w.is_contiguous() and w.is_contiguous(memory_format=torch.channels_last)


def state_bytes(state) -> int:
    """Parameters, gradients, optimizer moments and pooled images of one training state."""
    tensors = [t for p in state.nets.parameters() for t in (p, p.grad)]
    tensors += list(state.nets.buffers())
    for opt in (state.opt_g, state.opt_d):
        if opt is not None:
            tensors += [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    tensors += [im for pool in state.pools.values() for im in pool.images]
    return tensor_bytes(tensors)


def grads_of(state) -> dict[str, torch.Tensor]:
    return {
        k: torch.cat([p.grad.detach().float().flatten() for p in net.parameters() if p.grad is not None]).cpu()
        for k, net in state.nets.items()
    }


def rel(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).norm() / b.norm().clamp_min(1e-30))


class Variant:
    def __init__(self, name: str, overrides: list[str], args, device: torch.device):
        self.name, self.overrides = name, overrides
        self.cfg = make_config(args, overrides)
        self.state = create_state(self.cfg, device)
        self.precision = resolve_precision(self.cfg.train.precision, device.type)
        if self.state.scaler is not None:  # fp16: a first step at PyTorch's initial scale (2^16) can overflow
            self.state.scaler = torch.amp.GradScaler(device.type, init_scale=2.0**8)  # and be skipped: no fidelity
        self.batch = random_batch(args, device, self.state.channels_last)
        self.times: list[float] = []
        self.faults: list[int] = []
        self.round_means: list[float] = []
        self.first_step = self.extra_peak = 0.0
        self.first_terms: dict[str, float] = {}
        self.first_grads: dict[str, torch.Tensor] = {}

    def step(self) -> dict:
        return train_step(self.state, self.batch)

    def describe(self) -> dict:
        t = self.cfg.train
        return {
            "precision": self.precision,
            "channels_last": self.state.channels_last,
            "compile": t.compile,
            "adam": self.state.opt_g.param_groups[0].get("fused")
            and "fused"
            or ("foreach" if self.state.opt_g.param_groups[0].get("foreach") else "forloop"),
        }

    def memory_bytes(self) -> int:
        return state_bytes(self.state)


class ReferenceVariant(Variant):
    """The reference implementation's own training step (benchmarks/reference_step.py), same batch."""

    def __init__(self, args, device: torch.device):
        self.name = "reference"
        self.ref = ReferenceStep(
            args.reference, generator=args.generator, ngf=args.ngf, ndf=args.ndf, identity=args.identity, device=device
        )
        self.batch = random_batch(args, device, False)
        self.times, self.faults, self.round_means = [], [], []
        self.first_step = self.extra_peak = 0.0
        self.first_terms, self.first_grads = {}, {}
        self.precision = "fp32"

    def step(self) -> dict:
        return self.ref(self.batch)

    def describe(self) -> dict:
        return {"precision": "fp32", "channels_last": False, "compile": False, "adam": "forloop (reference)"}

    def memory_bytes(self) -> int:
        return tensor_bytes(self.ref.tensors())


def time_steps(v: Variant, n: int, device: torch.device) -> list[float]:
    """Wall time of `n` steps; the minor page faults they took (memory the kernel handed out afresh) are
    added to v.faults."""
    out = []
    for _ in range(n):
        sync(device)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = time.perf_counter()
        v.step()
        sync(device)
        out.append(time.perf_counter() - t)
        v.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
    return out


def fidelity_floors(args, device: torch.device, plain: Variant) -> dict:
    """How far the plain path's own first-step gradients move under perturbations far below any
    fast path's rounding: the batch times (1 + 1e-6 noise), and the batch rounded to bfloat16. At
    initialisation the gradients are sums of terms of random sign that cancel (the outputs do not
    yet match the targets), so tiny changes are amplified; these rows give that floor."""
    g = torch.Generator().manual_seed(99)
    perturb = {
        "plain, batch x (1 + 1e-6 noise)": lambda x: x * (1 + 1e-6 * torch.randn(x.shape, generator=g).to(x.device)),
        "plain, batch rounded to bf16": lambda x: x.bfloat16().to(x.dtype),
    }
    floors = {}
    for name, fn in perturb.items():
        state = create_state(plain.cfg, device)
        terms = train_step(state, {k: fn(v) for k, v in plain.batch.items()})
        grads = grads_of(state)
        floors[name] = {
            "loss_rel_err_max": max(rel(float(terms[k]), plain.first_terms[k]) for k in plain.first_terms),
            "grad_rel_err": {k: rel(grads[k], plain.first_grads[k]) for k in grads},
        }
        floors[name]["grad_rel_err_max"] = max(floors[name]["grad_rel_err"].values())
        del state
    return floors


def run_timing(args, device: torch.device, specs: list[str]) -> list[Variant]:
    variants = [Variant("plain", plain_overrides(device), args, device)]
    if args.reference:
        variants.append(ReferenceVariant(args, device))
    variants += [Variant(s, variant_overrides(s, device), args, device) for s in specs]
    for v in variants:
        print(f"warming up {v.name} ...", flush=True)
        t = time.perf_counter()
        if v is variants[0]:  # the plain step's work, in FLOPs (the same arithmetic every variant does)
            args.step_flops, terms = count_flops(v.step)
        else:
            terms = v.step()  # the fidelity step: same weights, same batch for all
        sync(device)
        v.first_step = time.perf_counter() - t
        if not isinstance(v, ReferenceVariant):
            v.first_terms = {k: float(x) for k, x in terms.items()}
            v.first_grads = grads_of(v.state)
        time_steps(v, max(0, args.warmup - 1), device)
    if args.floors:
        variants[0].floors = fidelity_floors(args, device, variants[0])
    for r in range(args.rounds):
        shift = r % len(variants)
        for v in variants[shift:] + variants[:shift]:
            times = time_steps(v, args.iters, device)
            v.times += times
            v.round_means.append(sum(times) / len(times))
        print(
            f"round {r + 1}/{args.rounds}: " + ", ".join(f"{v.name} {v.round_means[-1]:.3f}s" for v in variants),
            flush=True,
        )
    for v in variants:  # peak memory: one more step each, untimed (measuring it on a CPU trims the heap)
        with PeakMemory(device) as mem:
            v.step()
        v.extra_peak, v.memory_method = mem.extra, mem.method
    return variants


def report(args, device: torch.device, variants: list[Variant], info: dict, peak: dict | None = None) -> dict:
    plain = variants[0]
    base = statistics.median(plain.times)
    ref = next((v for v in variants if isinstance(v, ReferenceVariant)), None)
    flops = getattr(args, "step_flops", 0)
    rows = []
    for v in variants:
        s = summarize(v.times)
        paired = statistics.median(p / q for p, q in zip(plain.round_means, v.round_means))
        row = {
            "variant": v.name,
            "size": args.size,
            "generator": args.generator,
            **v.describe(),
            "s_per_iter_median": s["median"],
            "s_per_iter_min": s["min"],
            "s_per_iter_max": s["max"],
            "n": s["n"],
            "images_per_s": args.batch_size / s["median"],
            "speedup": base / s["median"],
            "speedup_paired": paired,
            "first_step_s": v.first_step,
            "page_faults_per_step": statistics.median(v.faults) if v.faults else None,
            "peak_mb": (v.memory_bytes() + v.extra_peak) / MB,
            "state_mb": v.memory_bytes() / MB,
            "step_extra_mb": v.extra_peak / MB,
            "step_tflop": flops / 1e12,
            "achieved_gflops": flops / s["median"] / 1e9,
        }
        if ref is not None:
            row["vs_reference"] = statistics.median(ref.times) / s["median"]
            row["vs_reference_paired"] = statistics.median(r / q for r, q in zip(ref.round_means, v.round_means))
        if peak:
            row["fraction_of_peak"] = row["achieved_gflops"] / peak["best_gflops"]
            bf16 = max(peak["bf16_gflops"], peak["bf16_channels_last_gflops"])
            own = peak["fp32_gflops"] if v.precision == "fp32" else bf16
            row["fraction_of_precision_peak"] = row["achieved_gflops"] / own
        if v is plain or isinstance(v, ReferenceVariant):
            rows.append(row)
            continue
        row["loss_rel_err_max"] = max(rel(v.first_terms[k], plain.first_terms[k]) for k in plain.first_terms)
        row["grad_rel_err"] = {k: rel(v.first_grads[k], plain.first_grads[k]) for k in plain.first_grads}
        row["grad_cosine_min"] = min(
            float(torch.nn.functional.cosine_similarity(v.first_grads[k].double(), g.double(), 0))
            for k, g in plain.first_grads.items()
        )
        row["grad_rel_err_max"] = max(row["grad_rel_err"].values())
        rows.append(row)
    print()
    print(
        f"{args.generator} {args.size}x{args.size}, batch {args.batch_size}, "
        f"identity {'on' if args.identity else 'off'}, "
        f"device {info['device']} ({info.get('gpu') or info['cpu']}), {info['threads']} threads, "
        f"load average {info['load_average'][0]:.1f} at start"
        if info.get("load_average")
        else ""
    )
    columns = [
        ("variant", "variant"),
        ("precision", "prec"),
        ("s_per_iter_median", "s/it med"),
        ("s_per_iter_min", "min"),
        ("s_per_iter_max", "max"),
        ("images_per_s", "img/s"),
        ("speedup", "vs plain"),
        ("speedup_paired", "paired"),
    ]
    if ref is not None:
        columns += [("vs_reference", "vs ref"), ("vs_reference_paired", "paired")]
    if peak:
        columns += [("fraction_of_peak", "of peak"), ("fraction_of_precision_peak", "of prec. peak")]
    columns += [("peak_mb", "peak MB"), ("first_step_s", "1st step s"), ("page_faults_per_step", "faults/step")]
    print_table(rows, columns)
    if flops:
        print(
            f"one step = {flops / 1e9:.1f} GFLOP (FlopCounterMode, plain step)"
            + (
                f"; at the machine's peak ({peak['best_gflops']:.0f} GFLOP/s) "
                f"{flops / peak['best_gflops'] / 1e9:.2f} s/iter"
                + (
                    f", {statistics.median(ref.times) * peak['best_gflops'] * 1e9 / flops:.1f}x the reference"
                    if ref
                    else ""
                )
                if peak
                else ""
            )
        )
    print()
    print("fidelity (first step, same weights and batch as plain): relative errors of loss terms and gradients")
    floors = getattr(plain, "floors", {})
    print_table(
        [r for r in rows[1:] if r["variant"] != "reference"]
        + [{"variant": k, "precision": "fp32", **v} for k, v in floors.items()],
        [
            ("variant", "variant"),
            ("precision", "precision"),
            ("loss_rel_err_max", "loss max"),
            ("grad_rel_err_max", "grad max"),
            ("grad_cosine_min", "grad cos min"),
        ],
    )
    if floors:
        print("(the last rows are the plain path itself under tiny input perturbations: the conditioning floor)")
    print(f"memory: {getattr(plain, 'memory_method', '')}; peak = training state + the step's high-water above it")
    return {
        "config": {
            k: getattr(args, k)
            for k in (
                "size",
                "generator",
                "batch_size",
                "ngf",
                "ndf",
                "identity",
                "iters",
                "rounds",
                "warmup",
                "threads",
                "reference",
            )
        },
        "machine": info,
        "peak": peak,
        "step_flops": flops,
        "results": rows,
        "fidelity_floors": floors,
    }


# ---- 200-step loss curves on real data ----------------------------------------------------------


def real_batches(args, device: torch.device, n: int) -> list[dict]:
    """n batches of random horse2zebra crops (the training transforms, fixed seed), on the CPU."""
    from cyclegan.data import EpochBatchSampler
    from cyclegan.train.datasets import build_dataset

    load = int(round(args.curve_size * 286 / 256))
    cfg = build_config(
        [], [], [f"data.root={args.data}", f"data.load_size={load}", f"data.crop_size={args.curve_size}"]
    )
    dataset = build_dataset(cfg)
    sampler = EpochBatchSampler(len(dataset), args.batch_size, seed=0)
    out, epoch = [], 0
    while len(out) < n:
        sampler.set_epoch(epoch)
        for keys in sampler:
            items = [dataset[k] for k in keys]
            out.append({k: torch.stack([it[k] for it in items]) for k in ("A", "B")})
            if len(out) == n:
                break
        epoch += 1
    return out


def run_curves(args, device: torch.device, specs: list[str]) -> dict:
    """Train plain, each variant, and plain with two more seeds (other initial weights and pools:
    the run-to-run noise) for args.curves steps on the same real batches, interleaved step by step.

    Curves are compared as means over windows of curves/8 steps (see compare_curves)."""
    args.size = args.curve_size
    batches = real_batches(args, device, args.curves)
    seeds = ("plain", "plain seed 1", "plain seed 2")
    runs = {"plain": make_config(args, plain_overrides(device))}
    runs.update({s: make_config(args, variant_overrides(s, device)) for s in specs})
    runs.update({name: make_config(args, plain_overrides(device), seed=i) for i, name in enumerate(seeds) if i})
    states = {name: create_state(cfg, device) for name, cfg in runs.items()}
    losses = {name: [] for name in runs}
    seconds = {name: 0.0 for name in runs}
    for i, batch in enumerate(batches):
        for name, state in states.items():
            b = {k: v.to(device) for k, v in batch.items()}
            if state.channels_last:
                b = {k: v.contiguous(memory_format=torch.channels_last) for k, v in b.items()}
            t = time.perf_counter()
            terms = train_step(state, b)
            sync(device)
            seconds[name] += time.perf_counter() - t
            losses[name].append({k: float(v) for k, v in terms.items()})
        if (i + 1) % 25 == 0:
            print(f"curves: step {i + 1}/{len(batches)}", flush=True)
    window = max(1, args.curves // 8)
    summary, rows = compare_curves(losses, specs, window)
    print()
    print(
        f"loss curves: {args.curves} steps on {args.data} crops {args.curve_size}x{args.curve_size}, windows of "
        f"{window} steps;"
    )
    print(
        "diff = mean over windows of |window mean(run) - window mean(plain)|; "
        "noise = the mean (and max) of that between the plain runs of seeds 0, 1, 2"
    )
    print_table(
        rows,
        [
            ("variant", "variant"),
            ("term", "term"),
            ("diff", "diff"),
            ("noise", "noise"),
            ("noise_max", "noise max"),
            ("ratio", "diff/noise"),
            ("final plain", "last window plain"),
            ("final fast", "last window variant"),
        ],
    )
    for name, s in summary.items():
        print(
            f"{name}: {'within' if s['within_noise'] else 'NOT within'} run-to-run noise (mean diff/noise <= 1.5) "
            f"(diff/noise averaged over terms {s['mean_ratio']:.2f}, largest {max(s['ratio_to_noise'].values()):.2f}); "
            f"time {seconds[name]:.0f}s vs plain {seconds['plain']:.0f}s"
        )
    return {
        "steps": args.curves,
        "size": args.curve_size,
        "window": window,
        "summary": summary,
        "seconds": seconds,
        "losses": losses,
    }


def compare_curves(losses: dict[str, list[dict]], specs: list[str], window: int) -> tuple[dict, list[dict]]:
    """Per loss term: diff = mean over windows of |window mean(variant) - window mean(plain)|, and the
    same between the plain runs of seeds 0, 1, 2 (three pairs: noise = their mean, noise_max = their
    max). GAN training is chaotic: any two runs decorrelate within tens of steps whatever their
    arithmetic, so a variant that only rounds differently scores about 1 (as far from plain as another
    seed; float32 channels_last, exact in float64, scored 1.05 over 200 steps at 64x64) and a wrong one
    scores well above. Within noise: diff/noise averaged over the terms <= 1.5 (single terms of a
    correct path range from about 0.5 to 1.8)."""
    seeds = ("plain", "plain seed 1", "plain seed 2")
    terms = list(losses["plain"][0])

    def windows(name, k):
        xs = [r[k] for r in losses[name]]
        return [sum(xs[j : j + window]) / len(xs[j : j + window]) for j in range(0, len(xs), window)]

    def diff(a, b, k):
        return statistics.mean(abs(x - y) for x, y in zip(windows(a, k), windows(b, k)))

    pairs = [(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1 :]]
    noise = {k: statistics.mean(diff(a, b, k) for a, b in pairs) for k in terms}
    noise_max = {k: max(diff(a, b, k) for a, b in pairs) for k in terms}
    summary, rows = {}, []
    for name in specs:
        diffs = {k: diff(name, "plain", k) for k in terms}
        ratio = {k: diffs[k] / max(noise[k], 1e-12) for k in terms}
        mean_ratio = statistics.mean(ratio.values())
        summary[name] = {
            "mean_abs_window_diff": diffs,
            "noise": noise,
            "noise_max": noise_max,
            "ratio_to_noise": ratio,
            "mean_ratio": mean_ratio,
            "within_noise": mean_ratio <= 1.5,
        }
        rows += [
            {
                "variant": name,
                "term": k,
                "diff": diffs[k],
                "noise": noise[k],
                "noise_max": noise_max[k],
                "ratio": ratio[k],
                "final plain": windows("plain", k)[-1],
                "final fast": windows(name, k)[-1],
            }
            for k in terms
        ]
    return summary, rows


def main(argv=None) -> dict:
    with contextlib.ExitStack() as stack:
        return _main(argv, stack)


def _main(argv, stack: contextlib.ExitStack) -> dict:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", type=int, help="image side (default 128)")
    p.add_argument("--generator", help="generator name (default resnet_6blocks)")
    p.add_argument(
        "--setups",
        nargs="+",
        metavar="SIZE/GENERATOR",
        help="several setups in one run, e.g. 128/resnet_6blocks 256/resnet_9blocks "
        "(default: --size/--generator; with --reference and neither given, both of these)",
    )
    p.add_argument(
        "--reference",
        help="folder of the reference implementation (e.g. "
        "../shared/reference/upstream-2a7afba): time its own training step as row "
        "'reference', and the machine's peak",
    )
    p.add_argument(
        "--peak",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="measure the machine's convolution peak (default: on with --reference)",
    )
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--ndf", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument(
        "--precision", choices=PRECISIONS, default="bf16", help="precision of the fast variant (default bf16)"
    )
    p.add_argument("--channels-last", action="store_true", help="fast variant: channels_last")
    p.add_argument("--compile", action="store_true", help="fast variant: torch.compile the networks")
    p.add_argument(
        "--identity",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="identity loss (default on, as the reference)",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        help="several fast variants, e.g. fp32+foreach bf16 bf16+compile (overrides the three flags above)",
    )
    p.add_argument("--iters", type=int, default=2, help="timed steps per variant per round")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per variant (the first includes compilation)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: PyTorch's choice)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument(
        "--floors",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the plain path's gradient change under tiny input perturbations (two extra steps)",
    )
    p.add_argument(
        "--cpu-kind",
        choices=("avx512", "avx2"),
        help="take every auto choice (precision, layout, Adam) as on a CPU without native bf16, with AVX-512 or "
        "AVX2 only; run under ONEDNN_MAX_CPU_ISA=AVX512_CORE (or AVX2) so that the kernels are that CPU's too",
    )
    p.add_argument("--json", help="write the results as JSON to this file ('-' for stdout)")
    p.add_argument(
        "--curves",
        type=int,
        default=0,
        help="also train this many steps on real data with each path and compare loss curves",
    )
    p.add_argument("--curves-only", action="store_true", help="skip the timing, only run --curves")
    p.add_argument("--curve-size", type=int, default=64, help="crop size for --curves (default 64)")
    p.add_argument(
        "--data",
        default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "horse2zebra"),
        help="folder with trainA/ and trainB/ for --curves",
    )
    args = p.parse_args(argv)
    if args.setups:
        setups = [_setup(x, p) for x in args.setups]
    elif args.reference and args.size is None and args.generator is None:
        setups = [(128, "resnet_6blocks"), (256, "resnet_9blocks")]
    else:
        setups = [(args.size or 128, args.generator or "resnet_6blocks")]
    args.size, args.generator = setups[0]
    if args.reference and not args.variants:
        args.variants = ["default", "bf16", "bf16+cl"]

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except UserError as e:
        p.error(str(e))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the training loop sets it
    args.device = str(device)
    # as a CPU training run keeps freed memory (runtime.process_settings), for every row: the reference's own
    # step takes (nearly) no page faults either way (glibc's dynamic threshold serves its fp32 tensors), ours
    # 6,000-80,000 per step without it; the faults/step column shows it
    stack.enter_context(reuse_freed_memory(device))
    if args.cpu_kind:
        stack.enter_context(pretend_cpu(args.cpu_kind))
    specs = args.variants or [
        "+".join([args.precision] + (["cl"] if args.channels_last else []) + (["compile"] if args.compile else []))
    ]
    info = machine(device)
    info["isa"] = isa_flags()
    info["bf16"] = bf16_kind(info["isa"]) if device.type == "cpu" else info.get("gpu")
    if args.cpu_kind:
        info["cpu_kind"] = f"{args.cpu_kind}, no native bf16 (ONEDNN_MAX_CPU_ISA={os.environ.get(ISA_VAR, 'unset')})"
        print(f"deciding as on a CPU of kind {info['cpu_kind']}", flush=True)
    print(
        f"machine: {info.get('gpu') or info['cpu']}; ISA: {' '.join(info['isa']) or 'unknown'} ({info['bf16']}); "
        f"torch {info['torch']}, {info['threads']} threads, load average {info['load_average'][0]:.1f}",
        flush=True,
    )
    out: dict = {}
    peak = None
    if (args.peak if args.peak is not None else bool(args.reference)) and not args.curves_only:
        peak = conv_peak(device=device)
        print(
            f"peak ({peak['shape']}): float32 {gflops(peak['fp32_gflops'])}, bfloat16 {gflops(peak['bf16_gflops'])}, "
            f"bfloat16 channels_last {gflops(peak['bf16_channels_last_gflops'])} GFLOP/s",
            flush=True,
        )
    if not args.curves_only:
        reports = []
        for size, generator in setups:
            args.size, args.generator = size, generator
            print(f"\n== {generator} {size}x{size} ==", flush=True)
            variants = run_timing(args, device, specs)
            info["load_average_end"] = machine(device)["load_average"]
            reports.append(report(args, device, variants, dict(info), peak))
        out = reports[0] if len(reports) == 1 else {"machine": info, "peak": peak, "setups": reports}
        out["results"] = [r for rep_ in reports for r in rep_["results"]]  # every row, with its size and generator
    if args.curves:
        if not (Path(args.data) / "trainA").is_dir():
            raise SystemExit(f"--curves needs real data: {args.data}/trainA not found (use --data)")
        out["curves"] = run_curves(args, device, specs)
    out.setdefault("machine", info)
    write_json(args.json, out)
    return out


def _setup(text: str, parser) -> tuple[int, str]:
    size, _, generator = text.partition("/")
    if not size.isdigit() or not generator:
        parser.error(f"--setups {text!r}: write SIZE/GENERATOR, e.g. 256/resnet_9blocks")
    return int(size), generator


if __name__ == "__main__":
    main()
