"""Preemption under torchrun: SIGTERM to every process of the job (as SLURM sends it), the ranks agree on the step
to stop at, rank 0 writes the state, and the run resumes under torchrun bit-identically to one never stopped."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_horse2zebra
from cyclegan.checkpoint import load_tree
from cyclegan.distributed import saved_world_size

from .helpers import assert_same_state, env, real_data, tiny_sets, wait_for_step

pytestmark = [needs_horse2zebra, pytest.mark.slow]


def _torchrun(*args, **kwargs) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "cyclegan",
        "train",
        *map(str, args),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), **kwargs)


def test_sigterm_under_torchrun(tmp_path):
    data = real_data(tmp_path / "data")
    sets = tiny_sets("optim.n_epochs=50", "train.log_every=1")
    total = 7  # 4 images over 2 ranks: 2 steps an epoch
    proc = _torchrun(data, "--run-dir", tmp_path / "run", "--preset", "quick", *sets)
    ranks = []
    try:
        wait_for_step(tmp_path / "run", proc, 2, timeout=240)
        ranks = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        assert len(ranks) == 2
        for pid in [proc.pid, *ranks]:  # torchrun and both ranks, as SLURM signals every process of a job step
            os.kill(pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=240)
    finally:
        for pid in [*ranks, proc.pid] if proc.poll() is None else ():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    # torchrun itself ends with its SignalException (exit 1, its own traceback); the ranks saved and exited 75
    assert "preempted at step" in out and "Traceback" not in out, (out, err)
    step = int(out.split("preempted at step ")[1].split()[0])
    assert 2 <= step < total
    tree, meta = load_tree(tmp_path / "run" / "checkpoints" / "latest.state.safetensors")
    assert meta["step"] == step and saved_world_size(tree) == 2 and set(tree["ranks"]) == {"1"}

    resumed = _torchrun("--resume", tmp_path / "run", "--max-steps", total)
    straight = _torchrun(data, "--run-dir", tmp_path / "straight", "--preset", "quick", *sets, "--max-steps", total)
    for p in (resumed, straight):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, (out, err)
    assert_same_state(tmp_path / "run", tmp_path / "straight")
