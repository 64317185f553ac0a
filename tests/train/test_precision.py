"""The fast default: `train.precision=auto` picks bf16 where the hardware computes it natively, says so, records
the choice; a bf16 run resumes bit-identically, and a resumed run keeps the precision it started with."""

import json

import pytest
import torch

from conftest import TINY, flat_tensors
from cyclegan.checkpoint import load_tree, save_tree
from cyclegan.cli import main
from cyclegan.config import Config, build_config
from cyclegan.nets.winograd import WinogradConv2d
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


@pytest.mark.parametrize("avx512", [True, False])
def test_auto_on_a_cpu_without_bf16_trains_fp32_with_winograd_in_channels_last_and_says_so(
    pretend_cpu, image_root, tmp_path, capsys, avx512
):
    """Where bf16 would be emulated (AVX-512 or AVX2 only), auto trains in float32, in NHWC, with Winograd residual
    convolutions (1.25x / 1.20x the plain step, docs/performance.md) and records each choice; an explicit
    --precision fp32 keeps the reference's layout and direct convolutions."""
    pretend_cpu(None, avx512)
    for precision, fast in (("auto", True), ("fp32", False)):
        direct = create_state(build_config([], [], DEFAULT + [f"train.precision={precision}"]), torch.device("cpu"))
        assert direct.channels_last is fast  # as benchmarks and the API build it, not only through train()
        assert any(isinstance(m, WinogradConv2d) for m in direct.nets.modules()) is fast
        run = tmp_path / precision
        cfg = build_config(
            [], [], DEFAULT + [f"data.root={image_root}", "train.max_steps=2", f"train.precision={precision}"]
        )
        result = train(cfg, run)
        recorded = json.loads((run / "config.json").read_text())["train"]
        on = "true" if fast else "false"
        assert (recorded["precision"], recorded["channels_last"], recorded["winograd"]) == ("fp32", on, on)
        assert result.state.channels_last is fast
        assert sum(isinstance(m, WinogradConv2d) for m in result.state.nets.modules()) == (2 * 2 * 6 if fast else 0)
        out = capsys.readouterr().out
        assert ("channels_last memory format" in out) is fast
        assert (
            "3x3 convolutions by Winograd F(4x4, 3x3) (--precision fp32: strict, direct convolutions)" in out
        ) is fast
        assert ("precision: fp32 (auto: no native bfloat16 on this device)" in out) is (precision == "auto")


def test_a_resumed_run_keeps_its_convolutions(pretend_cpu, image_root, tmp_path):
    """The recorded winograd=true holds on resume even where auto would now choose otherwise (another machine),
    and the resumed run ends bit-identical to an uninterrupted one."""
    pretend_cpu(None, False)
    base = DEFAULT + [f"data.root={image_root}", "loss.pool_size=3", "loss.lambda_identity=0.5"]
    train(build_config([], [], base + ["train.max_steps=5"]), tmp_path / "straight")
    train(build_config([], [], base + ["train.max_steps=2"]), tmp_path / "resumed")
    pretend_cpu("AMX-BF16", True)  # the run moved to a machine where auto would train in bf16 without Winograd
    result = train(build_config([], [], base + ["train.max_steps=5"]), tmp_path / "resumed", resume=True)
    assert result.state.cfg.train.winograd == "true" and result.state.cfg.train.precision == "fp32"
    a, _ = load_tree(tmp_path / "straight" / "checkpoints" / "latest.state.safetensors")
    b, _ = load_tree(tmp_path / "resumed" / "checkpoints" / "latest.state.safetensors")
    ta, tb = dict(flat_tensors(a)), dict(flat_tensors(b))
    for k in ta:
        if "/rng/" not in k:
            assert torch.equal(ta[k], tb[k]), k


def test_a_run_saved_before_winograd_existed_resumes_with_direct_convolutions(pretend_cpu, image_root, tmp_path):
    """A resume state whose config has no train.winograd ran direct convolutions: auto must not switch them on
    mid-run (that would end the exact continuation), even on a CPU where a new run would take Winograd. (It holds
    because the state records the precision resolved, fp32, and auto takes Winograd only for precision=auto.)"""
    pretend_cpu(None, False)
    run = tmp_path / "run"
    old = DEFAULT + [f"data.root={image_root}", "train.winograd=false", "train.channels_last=false"]
    train(build_config([], [], old + ["train.max_steps=2"]), run)
    state = run / "checkpoints" / "latest.state.safetensors"
    tree, meta = load_tree(state)
    del meta["config"]["train"]["winograd"]
    save_tree(state, tree, meta)
    result = train(build_config([], [], DEFAULT + [f"data.root={image_root}", "train.max_steps=4"]), run, resume=True)
    assert result.state.cfg.train.winograd == "false" and result.state.step == 4
    assert not any(isinstance(m, WinogradConv2d) for m in result.state.nets.modules())
