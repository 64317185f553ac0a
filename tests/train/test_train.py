"""Training: a few steps run and learn, resume is bit-identical, real images train at 64x64."""

import io
import json
from contextlib import nullcontext

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import HORSE2ZEBRA, flat_tensors, needs_horse2zebra
from cyclegan.checkpoint import load_tree
from cyclegan.config import build_config
from cyclegan.train import create_state, train, train_step


def test_resume_is_bit_identical(image_root, tiny_overrides, tmp_path):
    base = tiny_overrides + [f"data.root={image_root}", "loss.pool_size=3", "loss.lambda_identity=0.5"]
    straight = train(build_config([], [], base + ["train.max_steps=9"]), tmp_path / "straight")
    assert straight.state.step == 9 and straight.state.epoch == 1  # crossed the epoch boundary at 6
    half = train(build_config([], [], base + ["train.max_steps=4"]), tmp_path / "resumed")
    assert half.stopped_early and half.state.step == 4
    resumed = train(build_config([], [], base + ["train.max_steps=9"]), tmp_path / "resumed", resume=True)
    assert resumed.state.step == 9
    a, _ = load_tree(tmp_path / "straight" / "checkpoints" / "latest.state.safetensors")
    b, _ = load_tree(tmp_path / "resumed" / "checkpoints" / "latest.state.safetensors")
    ta, tb = dict(flat_tensors(a)), dict(flat_tensors(b))
    assert ta.keys() == tb.keys()
    for k in ta:
        if "/rng/" in k:
            continue
        assert torch.equal(ta[k], tb[k]), k
    assert a["progress"] == b["progress"]
    log = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    assert max(r["step"] for r in log) == 9


def test_full_run_writes_everything(image_root, tiny_overrides, tmp_path):
    cfg = build_config([], [], tiny_overrides + [f"data.root={image_root}"])
    result = train(cfg, tmp_path / "run")
    run = tmp_path / "run"
    assert result.state.step == 12 and result.state.epoch == 2 and not result.stopped_early
    assert json.loads((run / "config.json").read_text())["model"]["ngf"] == 4
    for name in ("latest.state", "latest.model", "epoch_0001.model", "epoch_0002.model"):
        assert (run / "checkpoints" / f"{name}.safetensors").is_file(), name
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r for r in records if "cycle_A" in r]
    assert {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B", "lr"} <= set(losses[0])
    # TensorBoard has the losses and, in its Images tab, the sample grids (as saved, to rounding)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert "loss/cycle_A" in events.Tags()["scalars"]
    images = events.Images("samples")
    assert len(images) == 2
    shown = np.asarray(Image.open(io.BytesIO(images[-1].encoded_image_string)).convert("RGB"), dtype=np.int16)
    saved = np.asarray(Image.open(run / "samples" / "epoch_0002.png").convert("RGB"), dtype=np.int16)
    assert shown.shape == saved.shape and np.abs(shown - saved).max() <= 1
    # the lr follows the linear policy: epoch 0 at the base lr, epoch 1 at 1 - 1/2
    assert {r["lr"] for r in losses if r["epoch"] <= 1.0} == {2e-4}
    assert [r["lr"] for r in losses if r["epoch"] > 1.0] == pytest.approx([1e-4] * 3)


def test_discriminators_are_frozen_during_the_generator_phase(image_root, tiny_overrides):
    cfg = build_config([], [], tiny_overrides + [f"data.root={image_root}", "loss.pool_size=0"])
    state = create_state(cfg, torch.device("cpu"))
    d_before = {k: v.clone() for k, v in state.nets["D_A"].state_dict().items()}
    g_grads = []
    state.nets["G_A"].model[1].weight.register_hook(lambda g: g_grads.append(g))
    batch = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    terms = train_step(state, batch)
    assert g_grads and set(terms) == {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}
    # D changed only through its own phase: its Adam state exists and has seen exactly one step
    assert all(s["step"].item() == 1 for s in state.opt_d.state.values())
    assert any(not torch.equal(d_before[k], v) for k, v in state.nets["D_A"].state_dict().items())


def test_identity_weight_zero_skips_its_passes(tiny_overrides):
    cfg = build_config([], [], tiny_overrides + ["loss.lambda_identity=0"])
    state = create_state(cfg, torch.device("cpu"))
    calls = {"G_A": 0, "G_B": 0}
    for name in calls:
        state.nets[name].register_forward_hook(lambda m, i, o, name=name: calls.__setitem__(name, calls[name] + 1))
    terms = train_step(state, {"A": torch.zeros(1, 3, 32, 32), "B": torch.zeros(1, 3, 32, 32)})
    assert "idt_A" not in terms and calls == {"G_A": 2, "G_B": 2}  # fake + reconstruction each


@needs_horse2zebra
def test_training_steps_on_real_horse2zebra_at_64(tmp_path):
    overrides = [
        f"data.dir_a={HORSE2ZEBRA / 'trainA'}",
        f"data.dir_b={HORSE2ZEBRA / 'trainB'}",
        "data.max_images=24",
        "data.load_size=72",
        "data.crop_size=64",
        "data.workers=0",
        "model.generator=resnet_6blocks",
        "model.ngf=8",
        "model.ndf=8",
        "train.max_steps=12",
        "train.progress=false",
        "train.log_every=4",
        "train.sample_every=0",
    ]
    result = train(build_config([], [], overrides), tmp_path / "run")
    assert result.state.step == 12
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    cyc = [r["cycle_A"] for r in records if "cycle_A" in r]
    assert all(torch.isfinite(torch.tensor(cyc))) and cyc[-1] < cyc[0]  # reconstruction improves


def test_threads_setting_is_applied_during_the_run_and_checked(image_root, tiny_overrides, tmp_path):
    from types import SimpleNamespace

    from cyclegan.errors import UserError

    before = torch.get_num_threads()
    seen = []
    hook = SimpleNamespace(epoch_end=lambda state, run_dir: seen.append(torch.get_num_threads()))
    try:
        torch.set_num_threads(2)
        train(
            build_config([], [], tiny_overrides + [f"data.root={image_root}", "train.threads=1"]),
            tmp_path / "one",
            hooks=hook,
        )
        assert seen == [1, 1]  # at both epoch ends
        assert torch.get_num_threads() == 2  # the caller's setting again afterwards
        assert json.loads((tmp_path / "one" / "config.json").read_text())["train"]["threads"] == 1  # kept for resume
        with pytest.raises(UserError, match="train.threads"):
            train(
                build_config([], [], tiny_overrides + [f"data.root={image_root}", "train.threads=-1"]), tmp_path / "bad"
            )
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "first,second", [("fused", "fused"), ("foreach", "foreach"), ("foreach", "fused"), ("fused", "foreach")]
)
def test_resume_keeps_adam_kernel_and_layout(image_root, tiny_overrides, tmp_path, first, second):
    """channels_last parameters get their Adam moments back in their own layout (fused Adam assumes
    it: on the CPU it updated wrongly, on CUDA it refuses), and the kernel is the resuming run's."""
    base = tiny_overrides + [f"data.root={image_root}", "train.channels_last=true", "loss.pool_size=0"]
    straight = train(build_config([], [], base + [f"train.adam={first}", "train.max_steps=6"]), tmp_path / "straight")
    train(build_config([], [], base + [f"train.adam={first}", "train.max_steps=3"]), tmp_path / "resumed")
    changed = (
        pytest.warns(UserWarning, match=f"train.adam '{first}' -> '{second}'") if first != second else nullcontext()
    )
    with changed:  # the user is told that the resumed run is not the one it continues
        resumed = train(
            build_config([], [], base + [f"train.adam={second}", "train.max_steps=6"]),
            tmp_path / "resumed",
            resume=True,
        )
    for group in resumed.state.opt_g.param_groups + resumed.state.opt_d.param_groups:
        assert bool(group["fused"]) == (second == "fused") and bool(group["foreach"]) == (second == "foreach")
    for p, st in resumed.state.opt_g.state.items():
        assert st["exp_avg"].stride() == p.stride() and st["exp_avg_sq"].stride() == p.stride()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    for k, net in straight.state.nets.items():
        if first == second:  # the same kernel all along: bit-identical
            for (name, a), b in zip(net.state_dict().items(), resumed.state.nets[k].state_dict().values()):
                assert torch.equal(a, b), (k, name)
        elif k.startswith("G"):  # fused and foreach Adam round differently, and the biases before instance
            with torch.no_grad():  # norms (zero true gradient) then drift apart by ~lr: compare outputs
                torch.testing.assert_close(resumed.state.nets[k](x), net(x), rtol=0, atol=1e-3, msg=k)


def test_resume_at_another_precision(image_root, tiny_overrides, tmp_path):
    """bf16 autocast fills the pools with bf16 fakes; resumed in float32, D must still get float32."""
    base = tiny_overrides + [f"data.root={image_root}", "loss.pool_size=1"]
    train(build_config([], [], base + ["train.precision=bf16", "train.max_steps=3"]), tmp_path / "run")
    with pytest.warns(UserWarning, match="train.precision 'bf16' -> 'fp32'"):
        resumed = train(
            build_config([], [], base + ["train.precision=fp32", "train.max_steps=9"]), tmp_path / "run", resume=True
        )
    assert resumed.state.step == 9


def test_resume_with_another_crop_size_starts_the_pools_again(image_root, tiny_overrides, tmp_path):
    base = tiny_overrides + [f"data.root={image_root}", "loss.pool_size=2"]
    train(build_config([], [], base + ["train.max_steps=3"]), tmp_path / "run")
    smaller = base + ["data.load_size=28", "data.crop_size=24", "train.max_steps=6"]
    with (
        pytest.warns(UserWarning, match="history pools start empty again"),
        pytest.warns(UserWarning, match="data.load_size 36 -> 28; data.crop_size 32 -> 24"),
    ):
        resumed = train(build_config([], [], smaller), tmp_path / "run", resume=True)
    assert resumed.state.step == 6
    assert all(im.shape[-1] == 24 for pool in resumed.state.pools.values() for im in pool.images)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["crop_size"] == 24


def test_resume_with_changed_settings_says_which(image_root, tiny_overrides, tmp_path):
    """Settings may change on resume (the run is then no longer the one it continues): a warning names each
    change; a plain resume, or one that changes only where it stops and what it logs, says nothing."""
    import warnings

    base = tiny_overrides + [f"data.root={image_root}", "loss.pool_size=0"]
    train(build_config([], [], base + ["train.max_steps=2"]), tmp_path / "run")
    changed = base + ["loss.lambda_a=3", "optim.lr=0.001"]
    with pytest.warns(UserWarning, match=r"changed settings \(loss.lambda_a 10.0 -> 3.0; optim.lr 0.0002 -> 0.001\)"):
        train(build_config([], [], changed + ["train.max_steps=4"]), tmp_path / "run", resume=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        neutral = ["train.max_steps=6", "train.progress=false", "train.log_every=3", "data.workers=0"]
        assert train(build_config([], [], changed + neutral), tmp_path / "run", resume=True).state.step == 6


def test_pools_of_images_of_several_sizes_are_saved_and_resumed(tmp_path, tiny_overrides):
    """preprocess=none keeps each image's own size (batch 1); the pools then hold several sizes."""
    from conftest import write_images

    for split, sizes in (("trainA", [(32, 36), (40, 32), (36, 36)]), ("trainB", [(44, 40), (32, 32)])):
        for i, size in enumerate(sizes):
            write_images(tmp_path / "data" / split / str(i), 1, size=size, seed=i)
    base = tiny_overrides + [f"data.root={tmp_path / 'data'}", "data.preprocess=none", "loss.pool_size=3"]
    straight = train(build_config([], [], base + ["train.max_steps=5"]), tmp_path / "straight")
    train(build_config([], [], base + ["train.max_steps=2"]), tmp_path / "resumed")
    resumed = train(build_config([], [], base + ["train.max_steps=5"]), tmp_path / "resumed", resume=True)
    for k, net in straight.state.nets.items():
        for a, b in zip(net.parameters(), resumed.state.nets[k].parameters()):
            assert torch.equal(a, b), k
    assert len({im.shape for pool in resumed.state.pools.values() for im in pool.images}) > 1
