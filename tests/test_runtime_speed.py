"""runtime_speed: the memory format recommended per device, precision and CPU kind."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cyclegan import runtime_speed
from cyclegan.runtime_speed import cpu_bf16_kind, recommended_memory_format

CL, NCHW = torch.channels_last, torch.contiguous_format


@pytest.mark.parametrize("kind,precision,expected", [
    ("amx", "bf16", CL), ("amx", "fp32", NCHW), ("avx512_bf16", "bf16", NCHW), ("none", "bf16", NCHW),
    ("amx", "fp16", NCHW),  # no fp16 path measured on CPUs
])
def test_cpu_memory_format_by_kind(monkeypatch, kind, precision, expected):
    monkeypatch.setattr(runtime_speed, "cpu_bf16_kind", lambda: kind)
    assert recommended_memory_format("cpu", precision) == expected


def test_cuda_low_precision_is_channels_last():
    assert recommended_memory_format(torch.device("cuda"), "bf16") == CL
    assert recommended_memory_format("cuda", "fp16") == CL
    assert recommended_memory_format("cuda", "fp32") == NCHW


def test_cpu_kind_agrees_with_the_cpu_flags():
    flags = ""
    try:
        flags = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo")
    expected = "amx" if " amx_tile" in flags else "avx512_bf16" if " avx512_bf16" in flags else "none"
    assert cpu_bf16_kind() == expected


def test_compile_only_for_long_runs_in_bf16_on_cpu():
    from cyclegan.runtime_speed import COMPILE_MIN_STEPS, compile_recommended

    assert not compile_recommended(device="cpu", precision="bf16", steps=COMPILE_MIN_STEPS, crop_size=128)
    assert compile_recommended(device="cpu", precision="bf16", steps=COMPILE_MIN_STEPS + 1, crop_size=128)
    assert not compile_recommended(device="cpu", precision="bf16", steps=10**6, crop_size=256)  # measured 0.99-1.01x
    assert not compile_recommended(device="cpu", precision="fp32", steps=10**6, crop_size=128)
    assert compile_recommended(device="cuda", precision="fp32", steps=10**6, crop_size=256)
    assert not compile_recommended(device="cuda", precision="bf16", steps=100, crop_size=256)


def test_persistent_compile_cache_respects_the_users_choice(tmp_path):
    from cyclegan.runtime_speed import persistent_compile_cache

    env = {"TORCHINDUCTOR_CACHE_DIR": "/mine"}
    assert persistent_compile_cache(env, root=tmp_path) == "/mine" and env["TORCHINDUCTOR_CACHE_DIR"] == "/mine"
    env = {}
    folder = persistent_compile_cache(env, root=tmp_path)
    assert folder == str(tmp_path / "cyclegan" / "torchinductor") == env["TORCHINDUCTOR_CACHE_DIR"]
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert persistent_compile_cache(env) == str(tmp_path / "xdg" / "cyclegan" / "torchinductor")
