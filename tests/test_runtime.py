"""runtime: native bf16 detection and the memory format chosen per device, precision and CPU kind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cyclegan import runtime
from cyclegan.errors import UserError
from cyclegan.runtime import glibc, native_cpu_bf16, process_settings, resolve_channels_last


@pytest.mark.parametrize(
    "kind,precision,expected",
    [
        ("AMX-BF16", "bf16", True),
        ("AMX-BF16", "fp32", False),
        ("AVX512-BF16", "bf16", False),
        (None, "bf16", False),
        ("AMX-BF16", "fp16", False),  # no fp16 path measured on CPUs
    ],
)
def test_cpu_channels_last_by_kind(monkeypatch, kind, precision, expected):
    monkeypatch.setattr(runtime, "native_cpu_bf16", lambda: kind)
    assert resolve_channels_last("auto", "cpu", precision) is expected


@pytest.mark.parametrize(
    "bf16,avx512,precision,expected",
    [
        (None, True, "auto", True),  # AVX-512 without native bf16: auto trains in fp32, NHWC (1.14x measured)
        (None, True, "fp32", False),  # an explicit fp32 is the strict path: the reference's layout
        (None, False, "auto", True),  # AVX2 only: NHWC for the Winograd convolutions auto takes there (1.20x)
        ("AMX-BF16", True, "auto", True),  # auto is bf16 there: AMX is fed from NHWC
        ("AMX-BF16", True, "fp32", False),
        ("AVX512-BF16", True, "auto", False),  # bf16 without AMX
    ],
)
def test_cpu_channels_last_follows_the_precision_asked_for(pretend_cpu, bf16, avx512, precision, expected):
    pretend_cpu(bf16, avx512)
    assert resolve_channels_last("auto", "cpu", precision) is expected
    assert not resolve_channels_last("false", "cpu", precision) and resolve_channels_last("true", "cpu", precision)


@pytest.mark.parametrize(
    "bf16,speedup,expected",
    [
        ("AMX-BF16", 0.5, "bf16"),  # AMX: bf16 without measuring (the probe is not consulted)
        ("AVX512-BF16", 1.9, "bf16"),  # AMD Zen 4's kind: bf16 convolutions 1.7-1.9x float32
        ("AVX512-BF16", 0.8, "fp32"),  # AVX512-BF16 slower than float32 (a Xeon capped below AMX: 0.7-0.8x)
        ("AVX512-BF16", 1.3, "fp32"),  # faster than direct float32, slower than float32 with Winograd (1.4-1.7x)
        (None, 3.0, "fp32"),
    ],
)
def test_auto_precision_takes_avx512_bf16_only_where_it_measures_faster(pretend_cpu, bf16, speedup, expected):
    pretend_cpu(bf16, True, bf16_speedup=speedup)
    assert runtime.resolve_precision("auto", "cpu") == expected
    assert runtime.resolve_precision("bf16", "cpu") == "bf16"  # asked for, it is what runs
    note = runtime.precision_note("auto", torch.device("cpu"))
    assert note.startswith(f"precision: {expected}")
    if bf16 == "AVX512-BF16":  # the measurement is said, either way
        assert f"{speedup:.1f}x float32's speed" in note
    assert resolve_channels_last("auto", "cpu", "auto") is (expected == "fp32" or bf16 == "AMX-BF16")


@pytest.mark.parametrize("bf16", [None, "AVX512-BF16", "AMX-BF16"])
def test_asking_for_bf16_on_a_cpu_that_would_emulate_it_says_so(pretend_cpu, bf16):
    """bf16 where the CPU has no native instructions is emulated, 8-500x slower (AMD EPYC Zen 1, session 18): it
    still runs when asked for, and the first lines of the run say what it costs and what auto would do."""
    pretend_cpu(bf16, False)
    note = runtime.precision_note("bf16", torch.device("cpu"))
    if bf16 is None:
        assert note.startswith("precision: bf16 (asked for; this CPU has no native bfloat16, so it is emulated")
        assert "--precision auto trains in float32 here" in note
    else:
        assert note == "precision: bf16"
    assert runtime.precision_note("fp32", torch.device("cpu")) == "precision: fp32"


def test_the_bf16_probe_measures_without_touching_the_random_state():
    before = torch.random.get_rng_state()
    runtime.cpu_bf16_speedup.cache_clear()
    speedup = runtime.cpu_bf16_speedup()
    # a ratio, not a speed test: AMX runs these ~10x float32's speed; emulated bf16 (no native support) 8-500x
    # slower, 0.04 measured on a busy AMD Zen 1
    assert 1e-4 < speedup < 50 and torch.equal(torch.random.get_rng_state(), before)
    assert runtime.cpu_bf16_speedup() == speedup  # measured once per process


def test_cpu_avx512_agrees_with_the_cpu_flags():
    try:
        flags = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags")).split()
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo")
    assert runtime.cpu_avx512() == all(f in flags for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl"))


@pytest.mark.parametrize(
    "bf16,avx512,precision,device,expected",
    [
        (None, False, "auto", "cpu", True),  # AVX2 only: float32, Winograd (1.20x the step with NHWC)
        (None, True, "auto", "cpu", True),  # AVX-512 without native bf16: float32, Winograd (1.25x)
        (None, False, "fp32", "cpu", False),  # the strict path: the reference's direct convolutions
        ("AMX-BF16", True, "auto", "cpu", False),  # bf16 there: autocast convolutions
        (None, False, "bf16", "cpu", False),
        (None, False, "auto", "cuda", False),
    ],
)
def test_winograd_is_the_float32_that_auto_chooses_on_a_cpu(pretend_cpu, bf16, avx512, precision, device, expected):
    pretend_cpu(bf16, avx512)
    assert runtime.resolve_winograd("auto", device, precision) is expected
    assert runtime.resolve_winograd("true", device, precision) and not runtime.resolve_winograd("false", "cpu", "auto")
    if bf16 is None and precision == "auto" and device == "cpu":  # NHWC follows, unless Winograd is turned off
        assert resolve_channels_last("auto", "cpu", "auto", "false") is avx512
    with pytest.raises(UserError, match="train.winograd='yes'"):
        runtime.resolve_winograd("yes", "cpu", "auto")


def test_cuda_low_precision_is_channels_last_and_explicit_settings_win():
    assert resolve_channels_last("auto", "cuda", "bf16") and resolve_channels_last("auto", "cuda", "fp16")
    assert not resolve_channels_last("auto", "cuda", "fp32")
    assert resolve_channels_last("true", "cpu", "fp32") and not resolve_channels_last("false", "cuda", "bf16")
    with pytest.raises(UserError, match="train.channels_last='yes'"):
        resolve_channels_last("yes", "cpu", "fp32")


def test_cpu_kind_agrees_with_the_cpu_flags():
    flags = ""
    try:
        flags = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo")
    expected = "AMX-BF16" if " amx_bf16" in flags else "AVX512-BF16" if " avx512_bf16" in flags else None
    assert native_cpu_bf16() == expected


def test_old_configs_with_a_boolean_channels_last_still_load():
    from cyclegan.config import Config

    assert Config.from_dict({"train": {"channels_last": True}}).train.channels_last == "true"
    assert Config.from_dict({"train": {"channels_last": False}}).train.channels_last == "false"


def test_compile_auto_only_for_long_runs_where_it_pays():
    from cyclegan.compiling import COMPILE_MIN_STEPS, resolve_compile

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    long, short = COMPILE_MIN_STEPS + 1, COMPILE_MIN_STEPS
    assert not resolve_compile("auto", device=cpu, steps=long)  # compiled CPU steps measured slower (0.87-0.90x)
    assert resolve_compile("auto", device=cuda, steps=long)
    assert not resolve_compile("auto", device=cuda, steps=short)  # the demo, tests
    assert resolve_compile("true", device=cpu, steps=1)  # asked for: always
    assert not resolve_compile("false", device=cuda, steps=long)
    with pytest.raises(UserError, match="train.compile"):
        resolve_compile("yes", device=cpu, steps=long)


def test_compile_cache_outlives_tmp_unless_chosen(tmp_path):
    from cyclegan.compiling import persistent_compile_cache

    env = {"XDG_CACHE_HOME": str(tmp_path)}
    assert (
        persistent_compile_cache(env) == str(tmp_path / "cyclegan" / "torchinductor") == env["TORCHINDUCTOR_CACHE_DIR"]
    )
    assert persistent_compile_cache({"TORCHINDUCTOR_CACHE_DIR": "/x"}) == "/x"


def test_compile_cache_is_ours_even_after_torch_wrote_its_default(tmp_path):
    """`import torch._dynamo` (done by much of torch, e.g. while cyclegan.train imports) puts torch's own default,
    /tmp/torchinductor_USER, into the environment: the training CLI printed and used that folder, losing the
    cache at every reboot. In a fresh process, as `cyclegan train` runs it:"""
    code = (
        "import os, cyclegan.train\n"
        "from cyclegan.compiling import persistent_compile_cache\n"
        "print(persistent_compile_cache(os.environ))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"} | {"XDG_CACHE_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(tmp_path / "cyclegan" / "torchinductor")


@pytest.mark.parametrize(("precision", "tf32"), [("bf16", True), ("fp32", False)])
def test_tf32_matmul_on_cuda_unless_strict_fp32_and_restored(monkeypatch, precision, tf32):
    """On a GPU the fast path lets float32 matrix products use TF32; strict fp32 keeps PyTorch's default (off),
    and the process gets its setting back afterwards (train() is a library call too)."""
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    before = torch.backends.cuda.matmul.allow_tf32
    with process_settings(0, torch.device("cuda", 0), precision):
        assert torch.backends.cuda.matmul.allow_tf32 is tf32
    assert torch.backends.cuda.matmul.allow_tf32 == before
    with process_settings(0, torch.device("cpu"), precision):  # nothing of CUDA's changes for a CPU run
        assert torch.backends.cuda.matmul.allow_tf32 == before


@pytest.mark.skipif(glibc() is None, reason="the heap setting is glibc's (Linux); elsewhere it does nothing")
def test_cpu_runs_reuse_freed_memory_without_page_faults_and_hand_it_back_after():
    """A training step frees and re-allocates the same activations. Outside the block glibc maps a 48 MiB
    block afresh every time (above its mmap ceiling), every page faulted in again; inside, the block comes
    back from the heap (no page faults once glibc has settled), and on leaving the heap gives what it kept
    back to the OS. A fresh process: the setting is process-wide."""
    code = """
import resource, torch
from cyclegan.runtime import process_settings, reuse_freed_memory
def faults(n=5):
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        torch.ones(48 << 20, dtype=torch.uint8)  # writes every page, freed at once
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start
def rss_mib():
    line = next(x for x in open("/proc/self/status") if x.startswith("VmRSS:"))
    return int(line.split()[1]) // 1024
before = faults()
with reuse_freed_memory():
    faults(20)  # glibc settles within a few (here 1-6: the heap cannot always grow in place at first)
    inside = faults()
    with reuse_freed_memory():  # an inner block (an evaluation during training) leaves it on for the outer one
        pass
    inside += faults()
    kept = rss_mib()
handed_back = kept - rss_mib()
with process_settings(0, torch.device("cpu")):  # a CPU training run gets it
    faults(20)
    run = faults()
print(before, inside, run, handed_back)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    before, inside, run, handed_back = map(int, out.split())
    pages = 5 * (48 << 20) // 4096
    assert before > pages // 2, out
    assert inside < 2 * pages // 100 and run < pages // 100, out
    assert handed_back >= 40, out  # MiB: the freed 48 MiB block left the process with the setting
