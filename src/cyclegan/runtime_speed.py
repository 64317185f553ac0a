"""Which fast paths pay on the machine at hand: memory format and torch.compile, as measured.

A leaf module (imports only torch): the trainer asks it once, after resolving `train.precision`
("auto" -> "bf16" or "fp32", train/state.py's `resolve_precision`), and the figures behind each answer
are in docs/performance.md ("Fast by default"; benchmarks/train_step.py and benchmarks/compile_cost.py
reproduce them).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

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


# Steps a run needs before torch.compile pays for its first step (benchmarks/compile_cost.py, docs/performance.md,
# Intel AMX machine, one thread, empty inductor cache): at 128/resnet_6blocks bf16 + channels_last the first
# compiled step cost 253 s more than a steady one and each later step gained 0.23 s (1.12x): even after 1100 steps.
# With the cache filled by an earlier run the cost fell to 38 s (28 steps). Twice the cold figure, for margin.
COMPILE_MIN_STEPS = 2000
# Largest crop where compiled bf16 CPU steps were measured faster: 1.12-1.37x at 128; at 256 0.99-1.01x (the
# eager channels_last step is then all oneDNN convolutions, which compiled code calls just the same).
COMPILE_MAX_CPU_CROP = 128


def compile_recommended(*, device: torch.device | str, precision: str, steps: int, crop_size: int) -> bool:
    """Whether `train.compile` should default to on for a run of `steps` optimisation steps on crops of
    `crop_size` at a resolved precision: only when the run is long enough to win back a cold compilation
    (COMPILE_MIN_STEPS), and on the CPU only in bfloat16 at crops up to COMPILE_MAX_CPU_CROP, where compiled
    steps were measured faster (float32: 0.82-1.08x, within noise of eager; bf16 at 256: 0.99-1.01x). On
    CUDA not yet measured: the step-count rule alone. The caller also needs a C++ compiler on the CPU
    (train/state.py checks), and keeps compilation off in the demo and the tests."""
    device = torch.device(device)
    if steps <= COMPILE_MIN_STEPS:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and precision == "bf16" and crop_size <= COMPILE_MAX_CPU_CROP


def persistent_compile_cache(env: dict, *, root: str | os.PathLike | None = None) -> str:
    """Point inductor's cache (compiled kernels, FX graphs, AOTAutograd graphs) at a folder that outlives the
    machine's /tmp, unless the user chose one (TORCHINDUCTOR_CACHE_DIR): a second run of the same model
    then compiles in a sixth (128) to a tenth (256) of the time. Call before the first compilation, with
    `os.environ`; returns the folder."""
    if env.get("TORCHINDUCTOR_CACHE_DIR"):
        return env["TORCHINDUCTOR_CACHE_DIR"]
    base = Path(root) if root is not None else Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = str(base / "cyclegan" / "torchinductor")
    env["TORCHINDUCTOR_CACHE_DIR"] = folder
    return folder
