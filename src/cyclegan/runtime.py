"""Where and how a run computes: device, CPU threads, precision, Adam kernel, compilation, memory format, heap.

A leaf of the package (it imports nothing of cyclegan but errors): training, translation, export and the
benchmarks all choose their runtime here, so that the same names mean the same thing everywhere.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading
import time

import torch
from torch import nn

from .errors import UserError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"device {name!r}: cyclegan runs on cpu or cuda (auto picks a GPU if there is one)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(
            f"device {name!r}: only {torch.cuda.device_count()} GPU(s) visible (cuda:0 to "
            f"cuda:{torch.cuda.device_count() - 1}); CUDA_VISIBLE_DEVICES renumbers them from 0"
        )
    return dev


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (Linux; not musl, macOS or Windows), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except (OSError, AttributeError):
        return None


class _HeapUsers:
    """How many blocks are inside `reuse_freed_memory` now. glibc's settings belong to the whole process, so an
    inner block (an evaluation during training) must leave them on for the outer one: the last to leave restores."""

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()


_HEAP_USERS = _HeapUsers()


@contextlib.contextmanager
def reuse_freed_memory(device: torch.device | str = "cpu"):
    """For work on a CPU `device`: serve every allocation from the heap and keep freed memory for the next step
    (glibc only; nothing changes for a GPU, whose tensors have their own caching allocator).

    A training step allocates and frees the same large activations every iteration. By default glibc
    hands blocks above its mmap threshold straight to the kernel and gives the heap's free top back
    (trimming), so the next step takes them again, page by page, each page zeroed by the kernel: 6,000-
    80,000 minor page faults per CycleGAN step (128 to 256 pixels, bf16 channels_last), 5-10% of its time
    on a two-core Xeon (benchmarks/train_step.py prints faults per step). With mmap off (M_MMAP_MAX 0)
    and a 1 GiB trim threshold the process keeps what it freed, as caching allocators (jemalloc,
    tcmalloc, CUDA's) do, and the steps reuse it: no page faults after the first. The resident set stays
    at its peak while the block runs. Afterwards glibc gets settings close to its own steady state back
    (mmap above 32 MiB, the ceiling of its dynamic threshold, trimming above 64 MiB; the dynamic
    threshold itself cannot be re-enabled) and the free memory is handed back (malloc_trim)."""
    libc = glibc()
    if libc is None or torch.device(device).type != "cpu":
        yield
        return
    with _HEAP_USERS.lock:
        _HEAP_USERS.count += 1
        if _HEAP_USERS.count == 1:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    try:
        yield
    finally:
        with _HEAP_USERS.lock:
            _HEAP_USERS.count -= 1
            if _HEAP_USERS.count == 0:
                libc.mallopt(_M_MMAP_MAX, 65536)
                libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
                libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
                libc.malloc_trim(0)


@contextlib.contextmanager
def process_settings(threads: int, device: torch.device, precision: str = "fp32"):
    """The process-wide switches a run needs, restored afterwards (train() is a library call too):
    cuDNN's autotuner and the current device on a GPU, the CPU thread count, and on a GPU TF32 for the
    float32 matrix products that autocast leaves in float32 (Ampere and later) unless the run is strict
    float32 (`precision` "fp32": PyTorch's defaults, the reference's numbers); on a CPU, the heap keeps
    freed memory for the next step (`reuse_freed_memory`)."""
    benchmark, n_threads = torch.backends.cudnn.benchmark, torch.get_num_threads()
    matmul_tf32 = torch.backends.cuda.matmul.allow_tf32
    current = torch.cuda.current_device() if device.type == "cuda" else None
    with reuse_freed_memory(device):
        try:
            if device.type == "cuda":
                torch.backends.cudnn.benchmark = True
                torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
                torch.cuda.set_device(device)  # pinned-memory thread and new tensors default to the training GPU
            if threads:
                torch.set_num_threads(threads)
            yield
        finally:
            torch.backends.cudnn.benchmark = benchmark
            torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
            torch.set_num_threads(n_threads)
            if current is not None:
                torch.cuda.set_device(current)


def unwrap(net: nn.Module) -> nn.Module:
    """The plain module under torch.compile (`_orig_mod`) and DDP-style (`module`) wrappers."""
    net = getattr(net, "_orig_mod", net)
    return getattr(net, "module", net)


AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device_type: str, precision: str):
    """torch.autocast to `precision` ("bf16", "fp16") on that device type; nothing for "fp32"."""
    dtype = AUTOCAST[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)


PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ADAM_IMPLS = ("auto", "fused", "foreach", "forloop")


@functools.lru_cache(maxsize=None)
def native_cpu_bf16() -> str | None:
    """The CPU's native bfloat16 instructions ("AMX-BF16" or "AVX512-BF16"), or None where bf16 would be emulated
    (several times slower than float32: AVX2-only or AVX-512 without BF16, ARM)."""
    try:
        caps = torch._C._cpu._get_cpu_capability()  # cpuinfo's flags, as torch sees them
    except (AttributeError, RuntimeError):
        return None
    return "AMX-BF16" if caps.get("amx_bf16") else "AVX512-BF16" if caps.get("avx512_bf16") else None


# What cpu_bf16_speedup() must show for auto to train in bf16 on an AVX512-BF16 CPU without AMX. The probe times
# direct convolutions, but the float32 that auto would run instead has Winograd residual convolutions in NHWC
# (resolve_winograd), whose step runs 1.4-1.7x the direct float32 one (AVX-512, docs/performance.md, session 15)
# with 1,000x smaller rounding than bf16: bf16 must at least match that. AMD Zen 4 measured 1.7-1.9x.
BF16_MIN_SPEEDUP = 1.5


@functools.lru_cache(maxsize=None)
def cpu_bf16_speedup() -> float:
    """How many times faster a bf16-autocast convolution (forward and backward, a residual block's 3x3 shape) runs
    than in float32 on this CPU, measured once per process (about 0.1 s; the global random state is untouched).
    AVX512-BF16 without AMX pays on some CPUs and not on others: AMD Zen 4 ran these convolutions 1.7-1.9x faster
    in bf16, a Xeon capped at AVX512-BF16 (ONEDNN_MAX_CPU_ISA) 0.7-0.8x (docs/performance.md, session 13). Under
    torchrun each rank measures, and the training loop takes rank 0's choice."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 128, 32, 32, generator=g)
    w = torch.randn(128, 128, 3, 3, generator=g) * 0.03

    def run(dtype: torch.dtype | None) -> float:
        xi, wi = x.clone().requires_grad_(), w.clone().requires_grad_()
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            y = nn.functional.conv2d(xi, wi, padding=1)
        y.float().sum().backward()
        return time.perf_counter() - t

    times: dict = {None: [], torch.bfloat16: []}
    for _ in range(4):  # interleaved; the first round warms both up and is dropped
        for dtype in times:
            times[dtype].append(run(dtype))
    return min(times[None][1:]) / min(times[torch.bfloat16][1:])


def cpu_bf16_pays() -> bool:
    """Whether auto trains in bf16 on this CPU: always with AMX, with AVX512-BF16 alone where its convolutions measure
    at least BF16_MIN_SPEEDUP times float32's speed."""
    kind = native_cpu_bf16()
    return kind == "AMX-BF16" or (kind == "AVX512-BF16" and cpu_bf16_speedup() >= BF16_MIN_SPEEDUP)


@functools.lru_cache(maxsize=None)
def resolve_precision(name: str, device_type: str, option: str = "train.precision") -> str:
    """The autocast precision to run: `name` itself, or for "auto" bf16 where the device computes
    it natively and fast (CUDA with bf16 support, sm_80 and later; CPUs with AMX-BF16, and CPUs with
    AVX512-BF16 where bf16 convolutions measure BF16_MIN_SPEEDUP times float32's speed: cpu_bf16_pays), else fp32.
    `option` names the setting in the error message."""
    if name not in PRECISIONS:
        raise UserError(f"{option}={name!r}: choose one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    if device_type == "cuda":
        return (
            "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False) else "fp32"
        )
    return "bf16" if device_type == "cpu" and cpu_bf16_pays() else "fp32"


CHANNELS_LAST = ("auto", "true", "false")


@functools.lru_cache(maxsize=None)
def cpu_avx512() -> bool:
    """Whether the CPU has AVX-512 as oneDNN's avx512_core kernels need it (F, BW, DQ, VL)."""
    try:
        caps = torch._C._cpu._get_cpu_capability()
    except (AttributeError, RuntimeError):
        return False
    return all(caps.get(f) for f in ("avx512_f", "avx512_bw", "avx512_dq", "avx512_vl"))


def resolve_channels_last(setting: str, device_type: str, precision: str, winograd: str = "auto") -> bool:
    """Whether to train in channels_last (NHWC) for `train.channels_last` and the requested `train.precision`
    ("auto" included). "auto": where NHWC was measured to pay (docs/performance.md, "Fast by default"):
    - bf16 on CPUs with AMX: matrix units fed from NHWC (a bf16 3x3 convolution 2.4x faster; with nets/layout.py
      nothing else in the step converts layouts);
    - bf16/fp16 on CUDA (tensor cores);
    - the float32 that `precision=auto` chose on a CPU with AVX-512 (no native bf16, or bf16 measured slower than
      float32: cpu_bf16_pays): oneDNN's AVX-512 float32
      NHWC convolutions make the whole step 1.14x faster at 128 and 256 (emulated on the AMX machine with
      ONEDNN_MAX_CPU_ISA=AVX512_CORE); on AVX2-only CPUs only with `train.winograd` (resolve_winograd), whose
      tile gathers read NHWC (measured with F(2x2, 3x3): the step 1.20x the reference in NHWC, 1.13x in NCHW;
      direct convolutions alone gain nothing from NHWC there, 0.98x). Not for an explicit `precision=fp32`, the
      strict path, which keeps the reference's layout and so its results;
    - not bf16 on AVX512-BF16 CPUs without AMX (never measured to pay)."""
    if setting not in CHANNELS_LAST:
        raise UserError(f"train.channels_last={setting!r}: choose one of {', '.join(CHANNELS_LAST)}")
    if setting != "auto":
        return setting == "true"
    chosen = resolve_precision(precision, device_type)
    if chosen == "fp32":
        return (
            precision == "auto"
            and device_type == "cpu"
            and (cpu_avx512() or resolve_winograd(winograd, device_type, precision))
        )
    return device_type == "cuda" or (device_type == "cpu" and chosen == "bf16" and native_cpu_bf16() == "AMX-BF16")


WINOGRAD = ("auto", "true", "false")


def resolve_winograd(setting: str, device_type: str, precision: str) -> bool:
    """Whether the 3x3 stride-1 convolutions (the residual blocks') run as Winograd F(4x4, 3x3) (nets/winograd.py),
    for `train.winograd` and the requested `train.precision` ("auto" included). "auto": where training computes
    in float32 because `precision=auto` found no fast bfloat16 on a CPU. There oneDNN's direct convolution
    already runs near the float32 peak, and 4x fewer multiplications is the lever left (docs/performance.md,
    session 15). Never for an explicit `precision=fp32`, the strict path whose results are the reference's, nor
    under bf16/fp16 autocast or on CUDA, where the layer runs the direct convolution anyway."""
    if setting not in WINOGRAD:
        raise UserError(f"train.winograd={setting!r}: choose one of {', '.join(WINOGRAD)}")
    if setting != "auto":
        return setting == "true"
    return precision == "auto" and device_type == "cpu" and resolve_precision(precision, device_type) == "fp32"


def precision_note(name: str, device: torch.device) -> str:
    """One line on the precision a run uses and why, for the first lines of `cyclegan train`."""
    chosen = resolve_precision(name, device.type)
    if name != "auto":
        if chosen == "bf16" and device.type == "cpu" and native_cpu_bf16() is None:
            return (
                "precision: bf16 (asked for; this CPU has no native bfloat16, so it is emulated: its convolutions "
                "ran 8-500x slower than float32's on such a CPU, docs/performance.md; --precision auto trains in "
                "float32 here)"
            )
        return f"precision: {chosen}"
    measured = device.type == "cpu" and native_cpu_bf16() == "AVX512-BF16"
    if chosen == "bf16":
        why = f"CPU ({native_cpu_bf16()})" if device.type == "cpu" else torch.cuda.get_device_name(device)
        if measured:
            why += f", convolutions {cpu_bf16_speedup():.1f}x float32's speed here"
        return (
            f"precision: bf16 autocast (auto: native on this {why}); --precision fp32 for strict float32, "
            "whose results do not depend on the machine"
        )
    if measured:
        return (
            f"precision: fp32 (auto: this CPU's AVX512-BF16 convolutions ran at {cpu_bf16_speedup():.1f}x float32's "
            f"speed, under the {BF16_MIN_SPEEDUP}x that bf16 must gain; --precision bf16 to use it anyway)"
        )
    return "precision: fp32 (auto: no native bfloat16 on this device)"


def adam_options(impl: str, device: torch.device, precision: str = "fp32") -> dict:
    """Keyword arguments selecting Adam's kernel. All give the same update up to rounding; `foreach`
    (multi-tensor operations) is bit-identical to the reference's `forloop` and a little faster on
    CPU (Adam is ~1.5% of a float32 CPU step); `fused` (one kernel for the whole update) is the fastest
    on CUDA, and on CPU too (3-4x less time than foreach, 5-10% of a bfloat16 step; train/adam.py keeps it
    from copying channels_last weights): `auto` takes it on CPU for every precision but float32, whose results
    stay those of the reference's Adam."""
    if impl not in ADAM_IMPLS:
        raise UserError(f"train.adam={impl!r}: choose one of {', '.join(ADAM_IMPLS)}")
    if impl == "auto":
        impl = "fused" if device.type == "cuda" or precision != "fp32" else "foreach"
    return {"fused": {"fused": True}, "foreach": {"foreach": True}, "forloop": {"foreach": False}}[impl]


def _contiguous(grad: torch.Tensor) -> torch.Tensor:
    return grad.contiguous()


def _contiguous_grad_hook(module, inputs, output):
    """Forward hook: the gradient that reaches this layer's output goes on in NCHW layout (a tensor
    hook on the output sees the gradient before any in-place op that follows, e.g. ReLU(True)). Only where
    the stock kernel ran: an output left in channels_last came from nets/layout.py's batch-of-one path,
    whose gradient is right in either layout, so copying it would only cost time."""
    if output.requires_grad and output.is_contiguous():
        output.register_hook(_contiguous)


@functools.lru_cache(maxsize=None)
def instance_norm_backward_is_wrong_for_channels_last_grads(device_type: str) -> bool:
    """Probe a PyTorch bug (seen in 2.14 on CPU): instance norm of a contiguous batch-of-one input,
    given a channels_last gradient (which the next channels_last convolution hands back), returns
    a wrong input gradient, silently. Forward results are right, so only gradients show it."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 3, 3, generator=g).to(device_type).requires_grad_()
    grad = torch.randn(1, 4, 3, 3, generator=g).to(device_type)
    (expected,) = torch.autograd.grad(nn.functional.instance_norm(x), x, grad)
    (got,) = torch.autograd.grad(nn.functional.instance_norm(x), x, grad.contiguous(memory_format=torch.channels_last))
    return not torch.allclose(got, expected, rtol=1e-4, atol=1e-5)


def guard_channels_last(nets: nn.ModuleDict, device: torch.device) -> int:
    """Where the instance-norm bug above is present, make every instance norm pass a contiguous
    gradient back (one copy per layer in the backward pass). Returns the number of layers hooked."""
    if not instance_norm_backward_is_wrong_for_channels_last_grads(device.type):
        return 0
    norms = [m for m in nets.modules() if isinstance(m, nn.modules.instancenorm._InstanceNorm)]
    for m in norms:
        m.register_forward_hook(_contiguous_grad_hook)
    return len(norms)
