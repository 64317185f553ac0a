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
