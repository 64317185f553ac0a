"""CUT and FastCUT: PatchNCE against a direct computation, the layer features and heads, the generator phase
against a step-by-step re-computation in the reference's order, what a step trains, bit-identical resume, and
translate / export from a CUT checkpoint."""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from conftest import TINY, flat_tensors
from cyclegan.checkpoint import load_model, load_tree
from cyclegan.cli import main as cli
from cyclegan.config import build_config
from cyclegan.distributed import DistContext
from cyclegan.errors import UserError
from cyclegan.export import export_onnx
from cyclegan.losses import generator_gan_loss
from cyclegan.methods import create_method, validate
from cyclegan.nets import create_generator
from cyclegan.nets.encoder import layer_features
from cyclegan.nets.generators import ResnetGenerator
from cyclegan.nets.projection import PatchSampleMLP
from cyclegan.patchnce import patch_nce_loss
from cyclegan.train import create_state, train, train_step
from cyclegan.translate import load_translator

SMALL = [
    "model.ngf=4",
    "model.ndf=4",
    "model.nce_mlp_nc=16",
    "loss.nce_patches=32",
    "model.generator=resnet_6blocks",
    "data.load_size=32",
    "data.crop_size=32",
]


def _direct_nce(q: torch.Tensor, k: torch.Tensor, images: int, tau: float) -> tuple[float, torch.Tensor]:
    """Eq. 2 averaged over queries, and its gradient in q, written out: for query i with p = softmax over
    (q_i.k_i, q_i.k_j for j != i of its image) / tau, loss_i = -log p_pos and
    dloss_i/dq_i = (sum_j p_j k_j - k_i) / tau."""
    q, k = q.double(), k.double()
    n = q.shape[0]
    per = n // images
    total, grad = 0.0, torch.zeros_like(q)
    for b in range(images):
        for i in range(per):
            r = b * per + i
            others = [b * per + j for j in range(per) if j != i]
            logits = torch.stack([q[r] @ k[r]] + [q[r] @ k[j] for j in others]) / tau
            p = torch.softmax(logits, 0)
            total += -math.log(p[0].item())
            grad[r] = (sum(p[m] * k[j] for m, j in enumerate([r] + others)) - k[r]) / tau
    return total / n, grad / n


def test_patch_nce_equals_a_direct_computation_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(2 * 5, 8, generator=g), dim=1).requires_grad_()
    k = torch.nn.functional.normalize(torch.randn(2 * 5, 8, generator=g), dim=1).requires_grad_()
    loss = patch_nce_loss(q, k, images=2, temperature=0.07)
    loss.backward()
    value, grad = _direct_nce(q.detach(), k.detach(), 2, 0.07)
    assert loss.item() == pytest.approx(value, rel=1e-5)
    torch.testing.assert_close(q.grad.double(), grad, rtol=1e-4, atol=1e-7)
    assert k.grad is None  # keys are detached (the reference's PatchNCELoss)
    # a case by hand: two patches, keys = queries = orthogonal unit vectors: l = log(1 + exp(-1 / tau))
    e = torch.eye(2)
    assert patch_nce_loss(e, e, images=1, temperature=0.5).item() == pytest.approx(math.log1p(math.exp(-2.0)), rel=1e-6)
    # negatives come from the same image only: two one-patch images give a one-way classification, loss 0
    assert patch_nce_loss(e, e, images=2, temperature=0.07).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    "generator,channels", [("resnet_9blocks", [3, 128, 256, 256, 256]), ("resnet_6blocks", [3, 128, 256, 256, 128])]
)
def test_heads_from_known_channels_are_the_lazily_built_ones(generator, channels):
    """The heads built before any data equal those the reference builds on the first batch (from the features'
    channels): same modules, names (the reference's netF keys) and shapes; the generator is untouched."""
    cfg = build_config(["cut"], [], [f"model.generator={generator}"])
    method = create_method(cfg)
    assert method.head_channels() == channels
    torch.manual_seed(0)
    g = create_generator(generator, ngf=64)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        _, feats = layer_features(g, x, method.layers)
        out, feats_full = layer_features(g, x, method.layers, full=True)
        expected = g(x)
    assert [f.shape[1] for f in feats] == channels
    lazy = PatchSampleMLP([f.shape[1] for f in feats], 256)  # what the reference's create_mlp makes
    built = method.specs()["H"].build()
    assert {k: v.shape for k, v in lazy.state_dict().items()} == {k: v.shape for k, v in built.state_dict().items()}
    assert "mlp_4.2.weight" in built.state_dict()
    # one pass gives the output and the same features as the encoder-only pass (layer 8 read after its in-place ReLU)
    assert torch.equal(out, expected) and all(torch.equal(a, b) for a, b in zip(feats, feats_full))
    assert (feats[2] >= 0).all()
    assert type(g) is ResnetGenerator and set(g.state_dict()) == set(create_generator(generator).state_dict())


def _reference_generator_terms(method, nets, x, y, flipped: bool):
    """The reference's compute_G_loss, pass by pass: G on [x, y] (flipped), D on G(x), then for each NCE term
    the target encoded, the source encoded again, heads on the source (new positions) and target (same ones)."""
    w = method.cfg.loss
    real = torch.cat([x, y]) if w.nce_idt else x
    fake = nets["G"](real.flip(3) if flipped else real)
    n = x.shape[0]
    terms = {"G_GAN": generator_gan_loss(nets["D"](fake[:n]))}

    def nce(src, tgt):
        _, fq = layer_features(nets["G"], tgt, method.layers)
        fq = [f.flip(3) for f in fq] if flipped else fq
        _, fk = layer_features(nets["G"], src, method.layers)
        zk, ids = nets["H"](fk, w.nce_patches)
        zq, _ = nets["H"](fq, w.nce_patches, ids)
        return sum(patch_nce_loss(a, b, images=n, temperature=w.nce_temperature) for a, b in zip(zq, zk)) / len(zq)

    if w.nce_idt:
        terms["NCE"], terms["NCE_Y"] = 0.5 * w.lambda_nce * nce(x, fake[:n]), 0.5 * w.lambda_nce * nce(y, fake[n:])
    else:
        terms["NCE"] = w.lambda_nce * nce(x, fake)
    return terms


@pytest.mark.parametrize("preset,flipped", [("cut", False), ("fastcut", False), ("fastcut", True)])
def test_generator_phase_equals_the_reference_order_of_passes(preset, flipped, monkeypatch):
    """Keys read off the generation pass (or, flipped, an encoding of the unflipped input) give the reference's
    terms, with the same random patch positions (the same draws in the same order)."""
    cfg = build_config([preset], [], SMALL + ["train.batch_size=2"])
    method = create_method(cfg)
    torch.manual_seed(0)
    nets = method.build_networks()
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    monkeypatch.setattr(method, "_flip", lambda: flipped)
    torch.manual_seed(1)
    terms, fakes = method.generator_loss(nets, {"A": x, "B": y})
    torch.manual_seed(1)
    expected = _reference_generator_terms(method, nets, x, y, flipped)
    assert terms.keys() == expected.keys() == ({"G_GAN", "NCE", "NCE_Y"} if preset == "cut" else {"G_GAN", "NCE"})
    for k in terms:
        torch.testing.assert_close(terms[k], expected[k], rtol=1e-5, atol=1e-6, msg=k)
    assert terms["NCE"].item() > 1.0  # not a trivially zero term: ~log(32 patches) at the start
    assert fakes["D"].shape == x.shape and not fakes["D"].requires_grad


def test_flip_coin_is_drawn_from_the_global_generator():
    method = create_method(build_config(["fastcut"], [], SMALL))
    torch.manual_seed(3)
    coins = [method._flip() for _ in range(40)]
    torch.manual_seed(3)
    assert coins == [method._flip() for _ in range(40)] and 5 < sum(coins) < 35
    assert not any(create_method(build_config(["cut"], [], SMALL))._flip() for _ in range(10))


@pytest.mark.parametrize("preset", ["cut", "fastcut"])
def test_a_step_trains_g_and_heads_in_one_phase_and_d_in_the_other(preset, monkeypatch):
    cfg = build_config([preset], [], SMALL + ["train.device=cpu"])
    state = create_state(cfg, torch.device("cpu"))
    nets, method = state.nets, state.method
    params = {name: list(nets[name].parameters()) for name in ("G", "H", "D")}
    assert {id(p) for g in state.opt_g.param_groups for p in g["params"]} == {id(p) for p in params["G"] + params["H"]}
    assert {id(p) for g in state.opt_d.param_groups for p in g["params"]} == {id(p) for p in params["D"]}
    before = {name: [p.detach().clone() for p in ps] for name, ps in params.items()}
    seen = {}
    generator_loss, discriminator_loss = method.generator_loss, method.discriminator_loss

    def spy_g(nets_, batch):
        seen["g_phase"] = {n: {p.requires_grad for p in ps} for n, ps in params.items()}
        return generator_loss(nets_, batch)

    def spy_d(nets_, batch, fakes):
        seen["d_phase_g_grads"] = all(p.grad is not None for p in params["G"][:1] + params["H"])
        seen["d_phase_d_grads"] = [p.grad for p in params["D"]]
        return discriminator_loss(nets_, batch, fakes)

    monkeypatch.setattr(method, "generator_loss", spy_g)
    monkeypatch.setattr(method, "discriminator_loss", spy_d)
    terms = train_step(state, {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1})
    assert set(terms) == ({"G_GAN", "NCE", "NCE_Y", "D"} if preset == "cut" else {"G_GAN", "NCE", "D"})
    assert seen["g_phase"] == {"G": {True}, "H": {True}, "D": {False}}  # D frozen in the G step
    assert seen["d_phase_g_grads"]  # G and the heads had their gradients from the G phase
    assert all(g is None for g in seen["d_phase_d_grads"])  # and D had none from it
    for name in ("G", "H", "D"):  # every network moved; Adam saw each parameter once
        assert any(not torch.equal(a, p) for a, p in zip(before[name], params[name])), name
    assert all(s["step"].item() == 1 for s in state.opt_g.state.values())
    assert len(state.opt_g.state) == len(params["G"]) + len(params["H"])
    assert all(s["step"].item() == 1 for s in state.opt_d.state.values())


def test_fast_paths_give_the_same_step():
    """bf16 autocast and channels_last (the trainer's fast paths) run CUT's step to the fp32 terms' values."""
    results = []
    for extra in ([], ["train.precision=bf16", "train.channels_last=true"]):
        state = create_state(build_config(["cut"], [], SMALL + extra), torch.device("cpu"))
        g = torch.Generator().manual_seed(0)
        batch = {k: torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for k in "AB"}
        torch.manual_seed(5)
        results.append(train_step(state, batch))
    fp32, fast = results
    assert fp32.keys() == fast.keys() == {"G_GAN", "NCE", "NCE_Y", "D"}
    for k in fp32:
        torch.testing.assert_close(fast[k], fp32[k], rtol=2e-2, atol=1e-3, msg=k)


@pytest.mark.parametrize("preset", ["cut", "fastcut"])
def test_resume_is_bit_identical_heads_included(preset, image_root, tiny_overrides, tmp_path):
    base = [*tiny_overrides, f"data.root={image_root}", "model.nce_mlp_nc=16", "loss.nce_patches=32"]
    base += ["optim.ema_decay=0.9"] if preset == "fastcut" else []  # the moving average of G is resumed too
    straight = train(build_config([preset], [], base + ["train.max_steps=8"]), tmp_path / "straight")
    half = train(build_config([preset], [], base + ["train.max_steps=3"]), tmp_path / "resumed")
    assert half.stopped_early and straight.state.step == 8
    resumed = train(build_config([preset], [], base + ["train.max_steps=8"]), tmp_path / "resumed", resume=True)
    assert resumed.state.step == 8
    a, _ = load_tree(tmp_path / "straight" / "checkpoints" / "latest.state.safetensors")
    b, _ = load_tree(tmp_path / "resumed" / "checkpoints" / "latest.state.safetensors")
    assert set(a["nets"]) == {"G", "H", "D"} and "mlp_0.0.weight" in a["nets"]["H"]
    assert (set(a["ema"]) == {"G"}) if preset == "fastcut" else a["ema"] is None
    ta, tb = dict(flat_tensors(a)), dict(flat_tensors(b))
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k
    assert a["progress"] == b["progress"]
    # the heads moved from their initial weights, and the snapshot for inference holds G only
    torch.manual_seed(0)
    fresh = create_method(build_config([preset], [], base)).build_networks()
    assert not torch.equal(fresh["H"].mlp_0[0].weight, a["nets"]["H"]["mlp_0.0.weight"])
    tree, meta = load_model(tmp_path / "straight" / "checkpoints" / "latest.model.safetensors")
    assert set(tree) == {"G"} and meta["directions"] == {"AtoB": "G"} and meta["method"] == preset


def test_translate_and_export_from_a_cut_checkpoint(image_root, tiny_overrides, tmp_path, capsys):
    extra = [f"data.root={image_root}", "train.max_steps=2", "loss.nce_patches=16"]
    cfg = build_config(["cut"], [], [*tiny_overrides, *extra])
    train(cfg, tmp_path / "run")
    run = tmp_path / "run"
    # translate at the input's own size (40x36, not a multiple of 4), the CLI and the API
    out = tmp_path / "out"
    assert cli(["translate", "-c", str(run), str(image_root / "testA"), "--out", str(out), "--no-gallery"]) == 0
    outs = sorted((tmp_path / "out").glob("*.png"))
    assert len(outs) == 3 and all(Image.open(p).size == (40, 36) for p in outs)
    t = load_translator(run, device="cpu")
    assert t.direction == "AtoB" and (t.in_ch, t.out_ch) == (3, 3)
    tree, _ = load_model(run / "checkpoints" / "latest.model.safetensors")
    g = create_generator("resnet_6blocks", ngf=4)
    g.load_state_dict(tree["G"])
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(t.translate_float(x), g.eval()(x), rtol=0, atol=1e-6)
    with pytest.raises(UserError, match="translates AtoB, not BtoA"):
        load_translator(run, "BtoA", device="cpu")
    # ONNX export of the one generator, checked against PyTorch by onnxruntime inside export_onnx
    meta = export_onnx(run, tmp_path / "g.onnx")
    assert meta["check_max_abs_error"] < 1e-4 and meta["direction"] == "AtoB"
    assert json.loads((tmp_path / "g.onnx.json").read_text())["in_channels"] == 3


def test_list_shows_the_methods_and_presets(capsys):
    assert cli(["list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    for row in ("methods", "presets"):
        assert "cut" in rows[row].replace(",", " ").split() and "fastcut" in rows[row].replace(",", " ").split()


def test_settings_are_checked_with_one_line_errors():
    assert validate(build_config(["fastcut"], [], [])).model.method == "fastcut"
    for extra, message in (
        (["model.method=fastcut"], "add the preset"),
        (["model.generator=unet_128"], "not one"),
        (["data.channels_a=1"], "same number of channels"),
        (["model.nce_layers=0,4,40"], "layers 0 to"),
        (["model.nce_layers=4,0"], "ascending"),
        (["loss.nce_temperature=0"], "positive"),
        (["loss.nce_patches=0"], "at least 1"),
        (["loss.lambda_nce=0", "loss.lambda_gan_a=0"], "nothing to train"),
    ):
        with pytest.raises(UserError, match=message):
            validate(build_config(["quick"] if "model.method=fastcut" in extra else ["cut"], [], extra))


# --- two processes (Gloo on the CPU), as tests/train/test_distributed.py ---------------------------------


def _ddp_worker(rank: int, world: int, port: int, tmp: str, data: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
        }
    )
    tmp = Path(tmp)
    base = [*TINY, f"data.root={data}", "model.nce_mlp_nc=16", "loss.nce_patches=32", "train.batch_size=2"]
    with DistContext.from_env("cpu") as dist:
        kw = dict(rank=dist.rank, world_size=dist.world_size, reduce_grads=dist.reduce_grads)
        full = train(build_config(["fastcut"], [], base + ["train.max_steps=4"]), tmp / "full", **kw)
        train(build_config(["fastcut"], [], base + ["train.max_steps=2"]), tmp / "part", **kw)
        resumed = train(build_config(["fastcut"], [], base + ["train.max_steps=4"]), tmp / "part", resume=True, **kw)
        for name, result in (("full", full), ("resumed", resumed)):
            torch.save({k: v.clone() for k, v in result.state.nets.state_dict().items()}, tmp / f"{name}_rank{rank}.pt")


def test_two_processes_agree_and_resume_bit_identically(image_root, tmp_path):
    """FastCUT (flip coins and patch positions from each rank's own streams) under 2 Gloo processes: the ranks
    end with the same G, H and D, and a resumed run equals the straight one, every rank's RNG included."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    method = "spawn" if torch.cuda.is_initialized() else "fork"
    ctx = mp.start_processes(
        _ddp_worker, args=(2, port, str(tmp_path), str(image_root)), nprocs=2, join=False, start_method=method
    )
    deadline = time.monotonic() + 120
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                pytest.fail("2 ranks did not finish within 120 s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
    weights = {(run, r): torch.load(tmp_path / f"{run}_rank{r}.pt") for run in ("full", "resumed") for r in (0, 1)}
    assert any(k.startswith("H.mlp_4.") for k in weights["full", 0])
    for k, w in weights["full", 0].items():
        assert all(torch.equal(w, other[k]) for other in weights.values()), k
    a, _ = load_tree(tmp_path / "full" / "checkpoints" / "latest.state.safetensors")
    b, _ = load_tree(tmp_path / "part" / "checkpoints" / "latest.state.safetensors")
    assert set(a["ranks"]) == {"1"} and not torch.equal(a["rng"]["cpu"], a["ranks"]["1"]["rng"]["cpu"])
    ta, tb = dict(flat_tensors(a)), dict(flat_tensors(b))
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k


@pytest.mark.parametrize("smoke", [False, True])
@pytest.mark.parametrize("task", ["h2z", "mnist"])
def test_experiment_script_gives_each_method_a_valid_config(task, smoke, tmp_path):
    """experiments/cut/run.py's training commands, parsed as `cyclegan train` parses them: valid for all three
    methods, the same shared settings for each, and each method's own preset."""
    import argparse
    import importlib.util

    from cyclegan.commands import train as train_command

    path = Path(__file__).resolve().parents[2] / "experiments" / "cut" / "run.py"
    spec = importlib.util.spec_from_file_location("cut_experiment", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    settings = script.task_settings(task, smoke)
    parser = argparse.ArgumentParser()
    train_command.add_parser(parser.add_subparsers())
    configs = {}
    for method in script.METHODS:
        cmd = script.train_cmd(method, tmp_path, tmp_path / method, settings["sets"], 1, "--max-steps", "5")
        assert cmd[1:4] == ["-m", "cyclegan", "train"]
        configs[method] = validate(train_command.config_from_args(parser.parse_args(cmd[3:])))
    assert [c.model.method for c in configs.values()] == list(script.METHODS)
    assert configs["fastcut"].loss.lambda_nce == 10 and configs["cut"].loss.nce_idt
    assert configs["cyclegan"].loss.pool_size == 50 and configs["cut"].loss.pool_size == 0
    for section in ("data", "train"):
        shared = {json.dumps(getattr(c, section).__dict__ | {"root": ""}, sort_keys=True) for c in configs.values()}
        assert len(shared) == 1, section
    assert len({(c.model.generator, c.model.ngf, c.model.ndf, c.model.norm) for c in configs.values()}) == 1
    c = configs["cut"]
    assert (c.data.crop_size, c.train.max_steps, c.train.threads) == (settings["size"] if task == "h2z" else 32, 5, 1)
