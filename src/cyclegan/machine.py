"""What a run computed on: the software and the machine, one record per start or resume of `cyclegan train`.

The `auto` settings (precision, memory format, Winograd convolutions) are chosen per machine, and bfloat16 rounds
differently on different CPUs, so beside config.json's choices a run directory keeps the machines that made them:
RUN/environment.jsonl, one JSON line per start or resume (rank 0's machine under torchrun), appended, never
rewritten. `cyclegan check` lists them and `cyclegan package` puts them in the model card.
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

import torch

from . import runtime
from .plots import read_log

FILE = "environment.jsonl"
SOURCE = Path(__file__).resolve().parents[2]  # the checkout, when the package runs from one (src/cyclegan/...)


def source_revision(root: Path = SOURCE) -> str | None:
    """The git commit of the checkout the package runs from ("+" appended when tracked files differ from it), or
    None when it is installed from a wheel. Only `root` itself is asked, never a repository around it (a virtual
    environment inside some other project)."""
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, timeout=5
        )
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("+" if dirty.returncode == 0 and dirty.stdout.strip() else "")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def facts(device: torch.device) -> dict:
    """The software and hardware a run on `device` computes with (JSON-ready)."""
    try:
        version = metadata.version("cyclegan")
    except metadata.PackageNotFoundError:
        version = None
    out = {
        "cyclegan": version,
        "source": source_revision(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "os": platform.platform(terse=True),
        "cpu": cpu_name(),
        "cpu_bf16": runtime.native_cpu_bf16(),  # "AMX-BF16", "AVX512-BF16" or None
        "avx512": runtime.cpu_avx512(),
        "threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
        out["cuda"] = torch.version.cuda
    return out


def record(run_dir: str | Path, device: torch.device, *, step: int, world_size: int = 1) -> dict:
    """Append this start's line to RUN/environment.jsonl (one write of one line) and return it."""
    line = {"step": step, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "world_size": world_size, **facts(device)}
    with open(Path(run_dir) / FILE, "a") as f:
        f.write(json.dumps(line) + "\n")
    return line


def read(run_dir: str | Path) -> list[dict]:
    """The run's records, oldest first ([] for a run from before this file existed; a torn line is skipped)."""
    return read_log(Path(run_dir) / FILE)


def describe(rec: dict) -> str:
    """One line for people: 'Intel Xeon ... (AMX-BF16), 2 threads; torch 2.14.1, cyclegan 0.1.0 (source 1a2b3c)'."""
    ranks = rec.get("world_size", 1)
    if rec.get("gpu"):
        where = f"{rec['gpu']} (CUDA {rec.get('cuda')})" + (f" x {ranks}" if ranks > 1 else "")
    else:
        kind = rec.get("cpu_bf16") or ("AVX-512, no native bf16" if rec.get("avx512") else "no AVX-512 or native bf16")
        where = f"{rec.get('cpu', '?')} ({kind}), {rec.get('threads', '?')} threads"
        where += f", {ranks} processes" if ranks > 1 else ""
    software = f"torch {rec.get('torch', '?')}, cyclegan {rec.get('cyclegan') or '?'}"
    if rec.get("source"):
        software += f" (source {rec['source']})"
    return f"{where}; {software}"
