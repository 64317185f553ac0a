"""Which fast paths pay on the machine at hand: memory format and torch.compile, as measured.

A leaf module (imports only torch): the trainer asks it once, after resolving `train.precision`
("auto" -> "bf16" or "fp32", train/state.py's `resolve_precision`), and the figures behind each answer
are in docs/performance.md ("Fast by default"; benchmarks/train_step.py and benchmarks/compile_cost.py
reproduce them).
"""

from __future__ import annotations

import functools

import torch


@functools.cache
def cpu_bf16_kind() -> str:
    """How this CPU computes bfloat16 convolutions: "amx" (AMX tiles, e.g. Xeon Sapphire Rapids and later),
    "avx512_bf16" (AVX-512 BF16 dot products, e.g. AMD Zen 4, no AMX), or "none" (emulated)."""
    probes = (("amx", "_is_amx_tile_supported"), ("avx512_bf16", "_is_avx512_bf16_supported"))
    for kind, probe in probes:
        try:
            if getattr(torch.cpu, probe)():
                return kind
        except (AttributeError, RuntimeError):
            continue
    return "none"


def recommended_memory_format(device: torch.device | str, precision: str) -> torch.memory_format:
    """The memory format to train in, for a resolved precision ("fp32" | "bf16" | "fp16").

    channels_last (NHWC) where low-precision convolutions run on matrix units that oneDNN / cuDNN feed
    from NHWC: CPUs with AMX (a bf16 3x3 convolution 2.5-4x faster in NHWC than in NCHW, and with
    nets/layout.py nothing else in the step converts layouts any more) and CUDA (tensor cores). NCHW
    elsewhere: in float32 on the CPU NHWC convolutions are not faster, and on AVX512-BF16 CPUs without
    AMX it was never measured to pay."""
    device = torch.device(device)
    if precision not in ("bf16", "fp16"):
        return torch.contiguous_format
    if device.type == "cuda":
        return torch.channels_last
    if device.type == "cpu" and precision == "bf16" and cpu_bf16_kind() == "amx":
        return torch.channels_last
    return torch.contiguous_format
