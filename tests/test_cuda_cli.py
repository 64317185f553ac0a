"""The command line on a CUDA device, as a GPU user runs it: train with the fast paths (bf16 or fp16 with
its grad scaler, channels_last, fused Adam, loader workers with pinned memory), stop, resume, translate,
export. Skipped without CUDA; benchmarks/gpu_check.sh runs it on a GPU."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY, write_images
from cyclegan.checkpoint import load_tree
from cyclegan.cli import main
from cyclegan.config import build_config
from cyclegan.train import create_state

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
SETS = [a for o in TINY + ["train.device=cuda", "data.workers=2", "train.channels_last=true"] for a in ("--set", o)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cuda") / "data"
    for split, n, seed in (("trainA", 6, 1), ("trainB", 5, 2), ("testA", 3, 3), ("testB", 2, 4)):
        write_images(root / split, n, seed=seed)
    return root


@pytest.fixture(scope="module")
def cuda_run(data):
    run = data.parent / "run"
    assert (
        main(
            [
                "train",
                str(data),
                "--run-dir",
                str(run),
                "--preset",
                "quick",
                "--device",
                "cuda",
                "--precision",
                "bf16",
                *SETS,
            ]
        )
        == 0
    )
    return run


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_stop_and_resume_on_cuda_continues_the_run(data, tmp_path, precision, capsys):
    common = ["--preset", "quick", "--device", "cuda", "--precision", precision, *SETS]
    assert main(["train", str(data), "--run-dir", str(tmp_path / "straight"), "--max-steps", "8", *common]) == 0
    assert main(["train", str(data), "--run-dir", str(tmp_path / "resumed"), "--max-steps", "4", *common]) == 0
    assert "continue with: cyclegan train --resume" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "resumed"), "--max-steps", "8"]) == 0
    a, _ = load_tree(tmp_path / "straight" / "checkpoints" / "latest.state.safetensors")
    b, _ = load_tree(tmp_path / "resumed" / "checkpoints" / "latest.state.safetensors")
    assert a["progress"] == b["progress"] and a["scaler"] == b["scaler"], (
        a["progress"],
        b["progress"],
        a["scaler"],
        b["scaler"],
    )
    assert (a["scaler"] is not None) == (precision == "fp16")
    for opt in ("opt_g", "opt_d"):  # Adam's step counts, and every moment present
        assert a[opt]["state"].keys() == b[opt]["state"].keys()
        for i, st in a[opt]["state"].items():
            assert torch.equal(st["step"], b[opt]["state"][i]["step"]), (opt, i)
            assert st["step"].item() == 8 or precision == "fp16"  # the grad scaler skips steps that overflow
    # Not bit-identical on CUDA: cuDNN picks kernels per process, and ReflectionPad2d's backward adds
    # with atomics. Rounding noise moves the biases in front of instance norms (zero true gradient)
    # by ~lr per step without changing any output, so the networks are compared by what they compute.
    cfg = build_config(["quick"], [], TINY)
    x = {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    outputs = []
    for tree in (a, b):
        state = create_state(cfg, torch.device("cpu"))
        state.load_state_dict(tree, torch.device("cpu"))
        with torch.no_grad():
            outputs.append({k: net(x["A"] if k in ("G_A", "D_B") else x["B"]) for k, net in state.nets.items()})
    for k in outputs[0]:
        torch.testing.assert_close(outputs[1][k], outputs[0][k], rtol=1e-2, atol=1e-3, msg=k)


def test_translate_on_cuda_matches_cpu(cuda_run, data, tmp_path):
    outs = {}
    for device, precision in (("cpu", "fp32"), ("cuda", "bf16"), ("cuda", "fp16")):
        out = tmp_path / f"{device}_{precision}"
        assert (
            main(
                [
                    "translate",
                    "-c",
                    str(cuda_run),
                    "--direction",
                    "AtoB",
                    str(data / "testA"),
                    "--out",
                    str(out),
                    "--device",
                    device,
                    "--precision",
                    precision,
                    "--no-gallery",
                ]
            )
            == 0
        )
        outs[device, precision] = [np.asarray(Image.open(p)).astype(int) for p in sorted(out.glob("*.png"))]
    ref = outs["cpu", "fp32"]
    assert len(ref) == 3 and ref[0].shape == (36, 40, 3)  # the input's own size
    for key, images in outs.items():
        assert [i.shape for i in images] == [i.shape for i in ref], key
        assert max(np.abs(i - r).mean() for i, r in zip(images, ref)) < 2, key


def test_export_of_a_cuda_trained_run(cuda_run, tmp_path):
    pytest.importorskip("onnxruntime")
    assert (
        main(["export", "-c", str(cuda_run), "--direction", "AtoB", "--out", str(tmp_path / "g.onnx")]) == 0
    )  # checks itself
    assert (tmp_path / "g.onnx").stat().st_size > 0
