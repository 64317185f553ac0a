"""Shared fixtures: small generated image folders, the shared real data, tiny configs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

# The README's test command runs the suite in parallel (pytest-xdist's `-n auto`): the cores are shared out among the
# workers, so that two workers on two cores do not each run two threads.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // WORKERS)))
MAX_WORKERS = 4  # more adds start-up (each worker imports torch and collects) and memory, not speed


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker per core, at most MAX_WORKERS."""
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


@pytest.fixture(autouse=True, scope="session")
def temporary_files_under_pytest(tmp_path_factory):
    """Processes the tests start (torchrun's rendezvous folders, docs/architecture.md's examples) write their
    temporary files under pytest's base folder, which pytest prunes, not into the machine's /tmp, where each run
    of the suite left four folders behind."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(tmp_path_factory.mktemp("tmp")))
        yield


SHARED_DATA = Path(os.environ.get("CYCLEGAN_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
HORSE2ZEBRA = SHARED_DATA / "horse2zebra"
FACADES = SHARED_DATA / "facades"
MNIST_USPS = SHARED_DATA / "mnist_usps"

needs_horse2zebra = pytest.mark.skipif(
    not (HORSE2ZEBRA / "trainA").is_dir(), reason=f"horse2zebra not found at {HORSE2ZEBRA} (set CYCLEGAN_DATA)"
)
needs_facades = pytest.mark.skipif(
    not (FACADES / "train").is_dir(), reason=f"facades not found at {FACADES} (set CYCLEGAN_DATA)"
)


def write_images(folder: Path, n: int, size=(40, 36), mode="RGB", seed=0, ext=".png") -> list[Path]:
    """n random images of a given size and mode; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    channels = {"RGB": 3, "L": 1, "RGBA": 4}[mode]
    for i in range(n):
        a = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
        p = folder / f"img_{i:03d}{ext}"
        Image.fromarray(a[:, :, 0] if channels == 1 else a, mode).save(p)
        paths.append(p)
    return paths


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """A tiny dataset: trainA (6), trainB (5), testA (3), testB (3) of 40x36 RGB images."""
    write_images(tmp_path / "data" / "trainA", 6, seed=1)
    write_images(tmp_path / "data" / "trainB", 5, seed=2)
    write_images(tmp_path / "data" / "testA", 3, seed=3)
    write_images(tmp_path / "data" / "testB", 3, seed=4)
    return tmp_path / "data"


TINY = [  # on the CPU also where a GPU is present: only there is a resumed run bit-identical (docs/performance.md)
    "train.device=cpu",
    "train.precision=fp32",
    "model.generator=resnet_6blocks",
    "model.ngf=4",
    "model.ndf=4",
    "data.load_size=36",
    "data.crop_size=32",
    "data.workers=0",
    "optim.n_epochs=1",
    "optim.n_epochs_decay=1",
    "train.progress=false",
    "train.log_every=2",
    "train.sample_every=0",
    "train.save_every_epochs=1",
]


@pytest.fixture
def pretend_cpu(monkeypatch):
    """pretend_cpu(bf16, avx512, bf16_speedup=2.0): make runtime see a CPU with that native bfloat16 ("AMX-BF16",
    "AVX512-BF16" or None), with or without AVX-512, and whose bf16 convolutions measure bf16_speedup times float32's
    speed, for the choices made from them (cached answers cleared both ways)."""
    from cyclegan import runtime

    def pretend(bf16: str | None, avx512: bool, bf16_speedup: float = 2.0) -> None:
        monkeypatch.setattr(runtime, "native_cpu_bf16", lambda: bf16)
        monkeypatch.setattr(runtime, "cpu_avx512", lambda: avx512)
        monkeypatch.setattr(runtime, "cpu_bf16_speedup", lambda: bf16_speedup)
        runtime.resolve_precision.cache_clear()

    yield pretend
    runtime.resolve_precision.cache_clear()


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)


def flat_tensors(tree, prefix: str = ""):
    """(path, tensor) for every tensor in a nested dict/list checkpoint tree."""
    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from flat_tensors(v, f"{prefix}/{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from flat_tensors(v, f"{prefix}/{i}")


def cyclegan_method_setup(image_root, tiny: list[str], *extra: str):
    """A validated cyclegan method (identity off), its networks built from seed 0, and a random 2-image batch
    of 32x32 RGB in [-1, 1]: what the tests of single generator-loss terms need."""
    from cyclegan.config import build_config
    from cyclegan.methods import create_method, validate

    cfg = validate(build_config([], [], tiny + [f"data.root={image_root}", "loss.lambda_identity=0", *extra]))
    method = create_method(cfg)
    torch.manual_seed(0)
    nets = method.build_networks()
    batch = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    return method, nets, batch


def assert_resume_bit_identical(overrides: list[str], tmp_path, total: int = 7, first: int = 3) -> None:
    """Train `total` steps straight, and `first` steps then resume to `total`, with the same overrides: the
    two final training states (networks, optimisers, pools, RNG states, progress) must be equal bit for bit."""
    from cyclegan.checkpoint import load_tree
    from cyclegan.config import build_config
    from cyclegan.train import train

    def cfg(steps):
        return build_config([], [], overrides + [f"train.max_steps={steps}"])

    straight = train(cfg(total), tmp_path / "straight")
    train(cfg(first), tmp_path / "resumed")
    resumed = train(cfg(total), tmp_path / "resumed", resume=True)
    assert straight.state.step == resumed.state.step == total
    a, _ = load_tree(tmp_path / "straight" / "checkpoints" / "latest.state.safetensors")
    b, _ = load_tree(tmp_path / "resumed" / "checkpoints" / "latest.state.safetensors")
    ta, tb = dict(flat_tensors(a)), dict(flat_tensors(b))
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
