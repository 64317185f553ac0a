"""Helpers shared by the benchmark scripts: device sync, peak memory, machine facts, tables, JSON.

Peak memory means: on CUDA, `torch.cuda.max_memory_allocated` (what the caching allocator handed
out); on CPU, the resident set's high-water mark (`VmHWM` in /proc/self/status), reset before each
measured block by writing 5 to /proc/self/clear_refs (Linux >= 4.0). Where that reset is not possible
the process-wide `ru_maxrss` is reported instead and flagged as such.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

from cyclegan import runtime
from cyclegan.machine import cpu_name
from cyclegan.runtime import glibc

MB = 2**20


def sync(device: torch.device) -> None:
    """Wait for queued device work, so a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _trim_heap() -> None:
    """Return freed heap pages to the OS (glibc keeps them), so RSS reflects live memory."""
    gc.collect()
    libc = glibc()
    if libc is not None:
        libc.malloc_trim(0)


class PeakMemory:
    """Peak memory of a block, measured above the level at its start.

    `extra` is the peak in bytes above the start level (the block's working set: activations,
    gradients, temporaries); `absolute` is the peak itself (includes everything the process holds).
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.extra = 0
        self.absolute = 0
        self.method = ""

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            self.method = "cuda max_memory_allocated"
        else:
            _trim_heap()
            self._start = (_status_kb("VmRSS") or 0) * 1024
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # reset VmHWM to the current RSS
                self.method = "VmHWM (reset per block)"
            except OSError:
                self.method = "ru_maxrss (process-wide, not reset)"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            sync(self.device)
            self.absolute = torch.cuda.max_memory_allocated(self.device)
        else:
            hwm = _status_kb("VmHWM")
            if hwm is None or self.method.startswith("ru_maxrss"):
                scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
                self.absolute = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
            else:
                self.absolute = hwm * 1024
        self.extra = max(0, self.absolute - self._start)


def tensor_bytes(tensors) -> int:
    """Bytes of distinct storages among `tensors` (None entries ignored)."""
    seen, total = set(), 0
    for t in tensors:
        if t is None:
            continue
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


def summarize(seconds: list[float]) -> dict:
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds), "n": len(seconds)}


def machine(device: torch.device) -> dict:
    """What the figures were measured on."""
    info = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_name(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    else:
        info["cpu_bf16"] = cpu_has_bf16()
    return info


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively here (AVX-512 BF16 / AMX), not emulated."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    """Print rows as an aligned text table; columns are (key, header)."""
    cells = [[h for _, h in columns]] + [[_fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for j, row in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
        if j == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def write_json(path: str | None, payload: dict) -> None:
    """Write `payload` to `path`, or to stdout when path is "-"."""
    if not path:
        return
    text = json.dumps(payload, indent=2, default=str)
    if path == "-":
        print(text)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")


ISA_VAR = "ONEDNN_MAX_CPU_ISA"


@contextlib.contextmanager
def pretend_cpu(kind: str):
    """runtime answers as on a CPU without native bf16, with AVX-512 ("avx512") or AVX2 only, so that every `auto`
    takes that CPU's choice; the kernels are that CPU's only when oneDNN is capped too (ONEDNN_MAX_CPU_ISA)."""
    wanted = {"avx512": "AVX512_CORE", "avx2": "AVX2"}[kind]
    if os.environ.get(ISA_VAR, "").upper() != wanted:
        print(f"note: {ISA_VAR} is not {wanted}: the choices are those of that CPU, the kernels this machine's")
    saved = runtime.native_cpu_bf16, runtime.cpu_avx512
    runtime.native_cpu_bf16, runtime.cpu_avx512 = (lambda: None), (lambda: kind == "avx512")
    runtime.resolve_precision.cache_clear()
    try:
        yield
    finally:
        runtime.native_cpu_bf16, runtime.cpu_avx512 = saved
        runtime.resolve_precision.cache_clear()
