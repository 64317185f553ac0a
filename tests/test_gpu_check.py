"""benchmarks/gpu_check.sh, the one command a short GPU lease runs: every step is reached and given its
arguments, and a failing step does not stop the ones after it. A stand-in Python records the calls (no GPU)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
STEPS = [
    "env",
    "tests_eager",
    "bench_train_b1",
    "bench_translate",
    "cli_cuda",
    "bench_train_b48",
    "tests_compiled",
    "bench_compile",
]


def run_check(tmp_path: Path, **env) -> tuple[list[str], list[list[str]]]:
    """Run the script with a stand-in Python that logs its arguments (and fails the translation benchmark)."""
    log = tmp_path / "calls.txt"
    fake = tmp_path / "python"
    fake.write_text(
        f'#!/usr/bin/env bash\necho "$*" >> {log}\n[[ "$*" == *translate.py* ]] && exit 3\nexit 0\n', encoding="utf-8"
    )
    fake.chmod(0o755)
    out = tmp_path / "out"
    result = subprocess.run(
        ["bash", str(SCRIPT), str(out)],
        env={**os.environ, "PYTHON": str(fake), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    summary = (out / "summary.txt").read_text().splitlines()
    return summary, [line.split() for line in log.read_text().splitlines()]


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils' timeout")
def test_every_step_runs_and_a_failure_does_not_stop_the_rest(tmp_path):
    summary, calls = run_check(tmp_path)
    assert [line.split(":")[0] for line in summary] == STEPS
    assert "bench_translate: rc=3" in summary[3] and all("rc=0" in s for s in summary[4:])
    train = [c for c in calls if "benchmarks/train_step.py" in c]
    assert len(train) == 4 and all("--device" in c and c[c.index("--device") + 1] == "cuda" for c in train)
    assert "default" in train[0] and "--reference" not in train[0]  # the default path, measured first
    assert any("-m" in c and "cuda and not slow" in " ".join(c) for c in calls)


@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils' timeout")
def test_reference_adds_the_reference_step_to_the_first_benchmark(tmp_path):
    _, calls = run_check(tmp_path, REFERENCE="runs/upstream")
    first = next(c for c in calls if "benchmarks/train_step.py" in c)
    assert first[first.index("--reference") + 1] == "runs/upstream"
