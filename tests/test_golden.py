"""Golden runs: 20 training steps from a fixed seed on real images, for CycleGAN, pix2pix and the SimGAN
baseline, must give the recorded losses and weights, bit for bit.

The values in tests/golden/ were recorded before the package's redesign (issue 24); a refactoring that
changes any number here changed behaviour. They pin the strict path (fp32, separate network calls); the fused
calls of the default path are held to it by tests/methods/test_fused.py. Bits depend on the CPU's kernels and torch's
version: on the
machine kind that recorded them (same torch, same CPU flags) the check is exact; elsewhere losses must
agree to 1e-4 relative and weights are not compared bit for bit.

Re-record (only for an intended change of numbers, said so in the commit): python tests/test_golden.py
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import FACADES, HORSE2ZEBRA  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"
COMMON = [
    "train.device=cpu",
    "train.threads=1",
    "train.precision=fp32",
    "train.fuse_passes=false",
    "train.max_steps=20",
    "train.log_every=1",
    "train.progress=false",
    "train.sample_every=0",
    "train.save_every_epochs=0",
    "data.workers=0",
    "data.max_images=4",
    "optim.n_epochs=2",
    "optim.n_epochs_decay=3",
    "train.seed=3",
]
RUNS = {  # name: (data folder, presets, overrides)
    "cyclegan": (
        HORSE2ZEBRA,
        [],
        [
            "model.generator=resnet_6blocks",
            "model.ngf=8",
            "model.ndf=8",
            "data.load_size=36",
            "data.crop_size=32",
            "loss.pool_size=3",
            "loss.lambda_identity=0.5",
        ],
    ),
    "pix2pix": (
        FACADES,
        ["pix2pix"],
        ["model.generator=unet_128", "model.ngf=4", "model.ndf=4", "data.load_size=136", "data.crop_size=128"],
    ),
    "simgan": (
        HORSE2ZEBRA,
        ["simgan"],
        [
            "model.generator=resnet_6blocks",
            "model.ngf=8",
            "model.ndf=8",
            "data.load_size=36",
            "data.crop_size=32",
            "loss.pool_size=3",
        ],
    ),
}


META = {"epoch", "it_per_s", "lr", "time", "s_per_step", "wall_s"}  # log fields that are not losses


def machine() -> dict:
    flags = ""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        pass
    isa = sorted(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f" {f}" in flags)
    return {"torch": torch.__version__.split("+")[0], "isa": isa}


def golden_run(name: str, run_dir: Path) -> dict:
    """Train one of RUNS for 20 steps; its per-step losses and a hash of every saved weight."""
    from safetensors.torch import load_file

    from cyclegan.config import build_config
    from cyclegan.train import train

    root, presets, overrides = RUNS[name]
    cfg = build_config(presets, [], COMMON + overrides + [f"data.root={root}"])
    train(cfg, run_dir)
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    losses = {
        r["step"]: {k: v for k, v in r.items() if isinstance(v, float) and k not in META} for r in records if "lr" in r
    }
    weights = load_file(str(run_dir / "checkpoints" / "latest.model.safetensors"))
    digest = {
        k: hashlib.sha256(v.reshape(-1).contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()[:16]
        for k, v in sorted(weights.items())
    }
    norms = {k: float(v.double().norm()) for k, v in sorted(weights.items()) if v.is_floating_point()}
    return {
        "machine": machine(),
        "losses": {str(k): v for k, v in sorted(losses.items())},
        "weights": digest,
        "weight_norms": norms,
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RUNS))
def test_golden(name, tmp_path):
    root = RUNS[name][0]
    if not root.is_dir():
        pytest.skip(f"{root} not found (set CYCLEGAN_DATA)")
    threads = torch.get_num_threads()
    try:
        got = golden_run(name, tmp_path / "run")
    finally:
        torch.set_num_threads(threads)
    want = json.loads((GOLDEN / f"{name}.json").read_text())
    assert got["losses"].keys() == want["losses"].keys()
    exact = got["machine"] == want["machine"]
    for step, terms in want["losses"].items():
        assert got["losses"][step].keys() == terms.keys(), step
        for k, v in terms.items():
            if exact:
                assert got["losses"][step][k] == v, (step, k, got["losses"][step][k], v)
            else:
                assert math.isclose(got["losses"][step][k], v, rel_tol=1e-4, abs_tol=1e-6), (step, k)
    assert got["weights"].keys() == want["weights"].keys()
    if exact:
        assert got["weights"] == want["weights"]
    for k, v in want["weight_norms"].items():
        assert math.isclose(got["weight_norms"][k], v, rel_tol=1e-4), k


if __name__ == "__main__":
    import tempfile

    GOLDEN.mkdir(exist_ok=True)
    for name in sys.argv[1:] or RUNS:
        with tempfile.TemporaryDirectory() as d:
            result = golden_run(name, Path(d) / "run")
        (GOLDEN / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
        print(name, "recorded:", len(result["losses"]), "steps,", len(result["weights"]), "tensors")
