"""torch.compile: whether a run compiles its networks (by device and length), how, and where the compiled
artefacts are cached between runs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from torch import nn

from .errors import UserError
from .runtime import unwrap

COMPILE = ("auto", "true", "false")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_networks(
    nets: nn.ModuleDict, device: torch.device, mode: str = "default", backend: str = "inductor"
) -> nn.ModuleDict:
    """Wrap each network in torch.compile (in place). The wrappers keep the parameters, so optimizers
    built before or after see the same tensors, and `TrainState.state_dict` strips `_orig_mod.`.
    Compilation happens at the first call of each network (minutes on a CPU; seconds on a GPU)."""
    if mode not in COMPILE_MODES:
        raise UserError(f"train.compile_mode={mode!r}: choose one of {', '.join(COMPILE_MODES)}")
    if backend == "inductor" and device.type == "cpu" and not have_cxx():
        raise UserError(
            "train.compile on CPU needs a C++ compiler (g++ or clang++ on PATH, or $CXX); "
            "install one or set train.compile=false"
        )
    options = {} if backend != "inductor" or mode == "default" else {"mode": mode}
    for name in list(nets.keys()):
        nets[name] = torch.compile(unwrap(nets[name]), backend=backend, **options)
    return nets


def have_cxx() -> bool:
    """Whether a C++ compiler is on PATH (inductor needs one on the CPU)."""
    return any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "clang++", "c++") if c)


# Steps a run needs before torch.compile pays for its first step (benchmarks/compile_cost.py, docs/performance.md,
# Intel AMX machine, one thread, empty inductor cache): at 128/resnet_6blocks bf16 + channels_last the first
# compiled step cost 253 s more than a steady one and each later step gained 0.23 s (1.12x): even after 1100 steps.
# With the cache filled by an earlier run the cost fell to 38 s (28 steps). Twice the cold figure, for margin.
COMPILE_MIN_STEPS = 2000


def compile_recommended(*, device: torch.device | str, steps: int) -> bool:
    """Whether `train.compile` should default to on for a run of `steps` optimisation steps: only when the run is
    long enough to win back a cold compilation (COMPILE_MIN_STEPS), and only on CUDA (not yet measured there: the
    step-count rule alone). Not on the CPU: since the eager step keeps NHWC through the fused passes
    (nets/layout.py), compiled steps measured slower than eager ones (bf16 + channels_last, one thread: 0.87x at
    128/resnet_6blocks, 0.88x at 64; float32 was 0.82-1.08x, within noise, before; benchmarks/compile_cost.py,
    docs/performance.md). The caller keeps compilation off in the demo and the tests."""
    return steps > COMPILE_MIN_STEPS and torch.device(device).type == "cuda"


def persistent_compile_cache(env: dict, *, root: str | os.PathLike | None = None) -> str:
    """Point inductor's cache (compiled kernels, FX graphs, AOTAutograd graphs) at a folder that outlives the
    machine's /tmp, unless the user chose one (TORCHINDUCTOR_CACHE_DIR): a second run of the same model
    then compiles in a sixth (128) to a tenth (256) of the time. Call before the first compilation, with
    `os.environ`; returns the folder. Importing torch._dynamo (which much of torch does) already writes torch's
    default, a folder under /tmp, into the environment: that value does not count as the user's choice."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    chosen = env.get("TORCHINDUCTOR_CACHE_DIR")
    if chosen and os.path.abspath(chosen) != os.path.abspath(default_cache_dir()):
        return chosen
    base = Path(root) if root is not None else Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = str(base / "cyclegan" / "torchinductor")
    env["TORCHINDUCTOR_CACHE_DIR"] = folder
    return folder


def resolve_compile(setting: str, *, device: torch.device, steps: int) -> bool:
    """`train.compile` for a run of `steps` steps: "true"/"false" as given; "auto" as `compile_recommended`."""
    if setting not in COMPILE:
        raise UserError(f"train.compile={setting!r}: choose one of {', '.join(COMPILE)}")
    if setting != "auto":
        return setting == "true"
    return compile_recommended(device=device, steps=steps)
