"""Shared by the fault-injection tests: real images, the CLI as a real process, a run's state compared."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from conftest import HORSE2ZEBRA, TINY, flat_tensors

SRC = Path(__file__).resolve().parents[2] / "src"


def real_data(root: Path, n_a: int = 4, n_b: int = 3, test: int = 0) -> Path:
    """A dataset of the first real horse2zebra images, linked (not copied) from the shared data."""
    for split, n in (("trainA", n_a), ("trainB", n_b), ("testA", test), ("testB", test)):
        if not n:
            continue
        (root / split).mkdir(parents=True)
        for f in sorted((HORSE2ZEBRA / split).glob("*.jpg"))[:n]:
            (root / split / f.name).symlink_to(f)
    return root


def env(**extra: str) -> dict:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        **extra,
    }


def cli(*args: str, timeout: float = 300, **extra_env: str) -> subprocess.CompletedProcess:
    """`python -m cyclegan ARGS` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cyclegan", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(**extra_env),
        check=False,
    )


def tiny_sets(*extra: str) -> list[str]:
    """--set flags for the tiny networks of tests/conftest.py's TINY, plus `extra`."""
    return [a for o in [*TINY, "train.threads=1", *extra] for a in ("--set", o)]


def start_train(*args: str, new_session: bool = False) -> subprocess.Popen:
    """`cyclegan train ARGS` in the background; new_session=True gives it (and its DataLoader workers) a process group
    of its own, to signal as a whole with os.killpg, as SLURM signals every process of a job step."""
    return subprocess.Popen(
        [sys.executable, "-m", "cyclegan", "train", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
        start_new_session=new_session,
    )


def wait_for_step(run: Path, proc: subprocess.Popen, step: int, timeout: float = 120) -> None:
    """Until the run's log.jsonl holds a record of `step` or later (the run is training)."""
    import json

    log, deadline = run / "log.jsonl", time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if log.is_file():
            steps = [json.loads(line).get("step", 0) for line in log.read_text().splitlines() if line.strip()]
            if steps and max(steps) >= step:
                return
        time.sleep(0.1)
    raise AssertionError(f"the run did not reach step {step}: {proc.poll()=}")


def wait_for_output(proc: subprocess.Popen, text: str, timeout: float = 60) -> str:
    """Read the process's stdout until it has printed `text`; returns what was read (communicate() gives the rest).
    Reads the pipe's file descriptor directly, so nothing is left in the text wrapper's buffer."""
    import select

    fd, seen, deadline = proc.stdout.fileno(), b"", time.time() + timeout
    while text.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.time()))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            raise AssertionError(f"no {text!r} on stdout ({proc.poll()=}): {seen.decode(errors='replace')}")
        seen += chunk
    return seen.decode(errors="replace")  # a character cut at the end comes whole in communicate()'s part


def state_tensors(run: Path, name: str = "latest") -> dict[str, torch.Tensor]:
    from cyclegan.checkpoint import load_tree

    tree, _ = load_tree(run / "checkpoints" / f"{name}.state.safetensors")
    return dict(flat_tensors(tree))


def assert_same_state(a: Path, b: Path) -> None:
    """Every tensor of the two runs' latest states equal, bit for bit (RNG states aside, as "
    "tests/train/test_train.py)."""
    ta, tb = state_tensors(a), state_tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        if "/rng/" not in k:
            assert torch.equal(ta[k], tb[k]), k


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The one line a failed command printed on stderr (warnings aside); fails if there is a traceback or more."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [
        line
        for line in proc.stderr.replace("\r", "\n").splitlines()
        if line.strip() and not line.startswith("warning: ") and not re.search(r"\d+%\|", line)
    ]  # bars aside
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]
