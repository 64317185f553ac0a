"""machine.py: each start of a run records the software and machine it computed on (RUN/environment.jsonl)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import torch

from conftest import TINY
from cyclegan import machine, runtime
from cyclegan.config import build_config
from cyclegan.train import train


def test_facts_are_this_process():
    f = machine.facts(torch.device("cpu"))
    assert f["torch"] == torch.__version__ and f["threads"] == torch.get_num_threads()
    assert f["cpu_bf16"] == runtime.native_cpu_bf16() and f["avx512"] == runtime.cpu_avx512()
    assert f["device"] == "cpu" and "gpu" not in f and f["cpu"]
    assert json.loads(json.dumps(f)) == f  # JSON as it is


def test_describe_says_the_kind_of_cpu_and_the_software():
    cpu = {"cpu": "Intel Xeon", "cpu_bf16": "AMX-BF16", "threads": 2, "torch": "2.14.1", "cyclegan": "0.1.0"}
    assert machine.describe(cpu) == "Intel Xeon (AMX-BF16), 2 threads; torch 2.14.1, cyclegan 0.1.0"
    avx2 = dict(cpu, cpu_bf16=None, avx512=False, source="1a2b3c4d5e6f+", world_size=2)
    assert machine.describe(avx2) == (
        "Intel Xeon (no AVX-512 or native bf16), 2 threads, 2 processes; torch 2.14.1, cyclegan 0.1.0 "
        "(source 1a2b3c4d5e6f+)"
    )
    assert "(AVX-512, no native bf16)" in machine.describe(dict(avx2, avx512=True))
    gpu = dict(cpu, gpu="NVIDIA H100", cuda="12.8", world_size=4)
    assert machine.describe(gpu).startswith("NVIDIA H100 (CUDA 12.8) x 4; torch 2.14.1")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git command")
def test_source_revision_names_the_checkout_and_whether_it_was_changed(tmp_path):
    assert machine.source_revision(tmp_path) is None  # not a checkout (an installed wheel)
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert machine.source_revision(repo) == head and len(head) == 12
    (repo / "new.py").write_text("")  # untracked files do not count
    assert machine.source_revision(repo) == head
    (repo / "a.py").write_text("x = 2\n")
    assert machine.source_revision(repo) == head + "+"
    inner = repo / "venv" / "lib"
    inner.mkdir(parents=True)
    assert machine.source_revision(inner) is None  # only the folder itself, never a repository around it


def test_read_skips_a_torn_line_and_a_run_without_the_file(tmp_path):
    assert machine.read(tmp_path) == []
    (tmp_path / machine.FILE).write_text('{"step": 0, "cpu": "a"}\n{"step": 40, "cp')
    assert machine.read(tmp_path) == [{"step": 0, "cpu": "a"}]


def test_each_start_and_resume_of_a_run_appends_its_machine(image_root, tmp_path):
    run = tmp_path / "run"
    base = TINY + [f"data.root={image_root}"]
    train(build_config([], [], base + ["train.max_steps=2", "train.threads=1"]), run)
    with pytest.warns(UserWarning, match="changed settings"):
        train(build_config([], [], base + ["train.max_steps=3", "train.threads=2"]), run, resume=True)
    records = machine.read(run)
    assert [r["step"] for r in records] == [0, 2]
    assert [r["threads"] for r in records] == [1, 2]  # the run's own setting, inside its process settings
    for r in records:
        assert r["world_size"] == 1 and r["torch"] == torch.__version__ and r["device"] == "cpu"
