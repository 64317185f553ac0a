"""The machine's measured convolution peak, and the work of one training step.

Peak: a large 3x3 convolution (the residual blocks' shape at 256x256: 256 -> 256 channels on a 64x64 map,
by default; batch 1) run forward, timed best-of-n, in float32 (NCHW), bfloat16 (NCHW) and bfloat16
channels_last, the layouts the CPU's instructions favour differently (AVX-512 FMA; AVX512_BF16 dot
products; AMX tiles, which oneDNN feeds from NHWC). The best of the three is "the machine's peak": a
step cannot run faster than its convolution FLOPs at that rate.

Work: FLOPs of one training step, counted by `torch.utils.flop_counter.FlopCounterMode` (convolutions
and matrix products, forward and backward, 2 per multiply-add).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

CPU = torch.device("cpu")

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16")


def isa_flags() -> list[str]:
    """Which of the instruction sets that decide bf16 speed this CPU reports (/proc/cpuinfo)."""
    try:
        line = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        return []
    have = set(line.split(":", 1)[1].split())
    return [f for f in ISA_FLAGS if f in have]


def bf16_kind(flags: list[str]) -> str:
    """'AMX-BF16', 'AVX512-BF16 (no AMX)' or 'no native bf16', the three cases the targets distinguish."""
    if "amx_bf16" in flags:
        return "AMX-BF16"
    return "AVX512-BF16 (no AMX)" if "avx512_bf16" in flags else "no native bf16"


def gflops(value: float) -> str:
    """A GFLOP/s figure for printing: whole numbers from 10 up, two significant digits below (emulated bf16 on a
    CPU without it runs at well under 1)."""
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def conv_peak(*, channels: int = 256, size: int = 64, reps: int = 5, device: torch.device = CPU) -> dict:
    """GFLOP/s of a 3x3 convolution (channels -> channels, size x size, batch 1) in each layout/dtype, best of
    `reps` after one warm-up call, interleaved (each rep runs the three in turn)."""
    flops = 2 * channels * channels * 9 * size * size
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, size + 2, size + 2, generator=g).to(device)
    w = torch.randn(channels, channels, 3, 3, generator=g).to(device) * 0.02
    cases = {
        "fp32": (x, w),
        "bf16": (x.bfloat16(), w.bfloat16()),
        "bf16_channels_last": (
            x.bfloat16().contiguous(memory_format=torch.channels_last),
            w.bfloat16().contiguous(memory_format=torch.channels_last),
        ),
    }
    best = {k: float("inf") for k in cases}
    with torch.no_grad():
        for a, b in cases.values():
            torch.nn.functional.conv2d(a, b)
        for _ in range(reps):
            for k, (a, b) in cases.items():
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t = time.perf_counter()
                torch.nn.functional.conv2d(a, b)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                best[k] = min(best[k], time.perf_counter() - t)
    out = {f"{k}_gflops": flops / t / 1e9 for k, t in best.items()}
    out["best_gflops"] = max(out.values())
    out["shape"] = f"3x3 conv {channels}->{channels} ch, {size}x{size}, batch 1"
    return out


def count_flops(fn) -> tuple[int, object]:
    """(FLOPs counted while running fn(), fn's result)."""
    with FlopCounterMode(display=False) as counter:
        result = fn()
    return counter.get_total_flops(), result
