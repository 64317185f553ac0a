"""The fast default: `train.precision=auto` picks bf16 where the hardware computes it natively, says so, records
the choice; a bf16 run resumes bit-identically, and a resumed run keeps the precision it started with."""

import json

import torch

from conftest import TINY, flat_tensors
from cyclegan.checkpoint import load_tree
from cyclegan.cli import main
from cyclegan.config import Config, build_config
from cyclegan.runtime import cpu_bf16_pays, native_cpu_bf16, precision_note, resolve_precision
from cyclegan.train import create_state, train

DEFAULT = [o for o in TINY if not o.startswith("train.precision")]  # TINY pins fp32; these tests use the default


def test_the_default_is_auto_and_auto_follows_the_hardware():
    assert Config().train.precision == "auto"
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_bf16_pays() else "fp32")
    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    note = precision_note("auto", torch.device("cpu"))
    if cpu_bf16_pays():
        assert note.startswith("precision: bf16 autocast (auto: native on this CPU (")
    elif native_cpu_bf16():  # AVX512-BF16 measured slower than float32 here
        assert note.startswith("precision: fp32 (auto: this CPU's AVX512-BF16 convolutions ran at ")
    else:
        assert note == "precision: fp32 (auto: no native bfloat16 on this device)"


def test_auto_is_said_and_recorded(image_root, tmp_path, capsys):
    train(build_config([], [], DEFAULT + [f"data.root={image_root}", "train.max_steps=2"]), tmp_path / "run")
    chosen = resolve_precision("auto", "cpu")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["precision"] == chosen
    assert f"precision: {chosen}" in capsys.readouterr().out


def test_bf16_resume_is_bit_identical(image_root, tmp_path):
    base = DEFAULT + [f"data.root={image_root}", "train.precision=bf16", "loss.pool_size=3", "loss.lambda_identity=0.5"]
    train(build_config([], [], base + ["train.max_steps=7"]), tmp_path / "straight")
    train(build_config([], [], base + ["train.max_steps=3"]), tmp_path / "resumed")
    train(build_config([], [], base + ["train.max_steps=7"]), tmp_path / "resumed", resume=True)
    a, _ = load_tree(tmp_path / "straight" / "checkpoints" / "latest.state.safetensors")
    b, _ = load_tree(tmp_path / "resumed" / "checkpoints" / "latest.state.safetensors")
    ta, tb = dict(flat_tensors(a)), dict(flat_tensors(b))
    assert ta.keys() == tb.keys()
    for k in ta:
        if "/rng/" not in k:
            assert torch.equal(ta[k], tb[k]), k


def test_a_resumed_run_keeps_its_precision(image_root, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", str(image_root), "--run-dir", str(run), "--precision", "bf16", "--max-steps", "2", "--no-progress"]
    for o in DEFAULT:
        if not o.startswith("train.progress"):
            args += ["--set", o]
    assert main(args) == 0
    assert main(["train", "--resume", str(run), "--max-steps", "4", "--no-progress"]) == 0  # no --precision given
    assert json.loads((run / "config.json").read_text())["train"]["precision"] == "bf16"
    assert "precision: bf16" in capsys.readouterr().out.split("resuming")[-1]


def test_auto_on_an_avx512_cpu_without_bf16_trains_fp32_in_channels_last_and_says_so(
    pretend_cpu, image_root, tmp_path, capsys
):
    """Where bf16 would be emulated but AVX-512 is there, auto trains in float32 in NHWC (1.14x the reference's step,
    docs/performance.md) and records both choices; an explicit --precision fp32 keeps the reference's layout."""
    pretend_cpu(None, True)
    for precision, nhwc in (("auto", True), ("fp32", False)):
        direct = create_state(build_config([], [], DEFAULT + [f"train.precision={precision}"]), torch.device("cpu"))
        assert direct.channels_last is nhwc  # as benchmarks and the API build it, not only through train()
        run = tmp_path / precision
        cfg = build_config(
            [], [], DEFAULT + [f"data.root={image_root}", "train.max_steps=2", f"train.precision={precision}"]
        )
        result = train(cfg, run)
        recorded = json.loads((run / "config.json").read_text())["train"]
        assert (recorded["precision"], recorded["channels_last"]) == ("fp32", "true" if nhwc else "false")
        assert result.state.channels_last is nhwc
        out = capsys.readouterr().out
        assert ("channels_last memory format" in out) is nhwc
        assert ("precision: fp32 (auto: no native bfloat16 on this device)" in out) is (precision == "auto")
