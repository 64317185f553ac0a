"""pix2pix: paired loading (same crop and flip for both halves), networks against the reference's
parameter counts, the conditional objective, direction handling, and a training step on real facades."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import FACADES, needs_facades
from cyclegan.cli import build_parser
from cyclegan.commands.train import config_from_args
from cyclegan.config import PRESETS, build_config
from cyclegan.data.aligned import (
    AlignedDataset,
    aligned_pairs,
    build_aligned,
    pair_folders,
    split_aligned_folder,
    split_halves,
)
from cyclegan.data.datasets import sample_generator
from cyclegan.data.transforms import Preprocess, to_float
from cyclegan.errors import UserError
from cyclegan.methods import create_method
from cyclegan.nets import count_parameters
from cyclegan.train import train
from cyclegan.train.datasets import build_dataset
from cyclegan.train.state import create_state
from cyclegan.train.step import train_step
from cyclegan.translate import load_translator

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "reference_networks.json"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a busy 2-core machine two OpenMP threads run these small nets ~10x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# A small pix2pix that runs in milliseconds: same structure as the preset, tiny widths.
TINY = [
    "model.generator=resnet_6blocks",
    "model.ngf=4",
    "model.ndf=4",
    "data.load_size=36",
    "data.crop_size=32",
    "data.workers=0",
    "train.progress=false",
    "train.device=cpu",
]


def _noise(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def side_by_side(tmp_path) -> tuple[Path, list[tuple[np.ndarray, np.ndarray]]]:
    """tmp/train/{0,1,2}.png: 24x48 files, left half and right half different noise."""
    halves = []
    for i in range(3):
        left, right = _noise(24, 24, 2 * i), _noise(24, 24, 2 * i + 1)
        _save(np.concatenate([left, right], 1), tmp_path / "train" / f"{i}.png")
        halves.append((left, right))
    return tmp_path, halves


def _expected(half: np.ndarray, pre: Preprocess, params) -> torch.Tensor:
    top, left, flip = params
    x = torch.from_numpy(half).permute(2, 0, 1)[:, top : top + pre.crop_size, left : left + pre.crop_size]
    return to_float(x.flip(-1) if flip else x)


def test_aligned_crops_and_flips_both_halves_identically(side_by_side):
    root, halves = side_by_side
    pre = Preprocess("crop", load_size=24, crop_size=16, flip=True)
    ds = AlignedDataset(aligned_pairs(str(root)), pre, seed=7)
    assert len(ds) == 3
    seen = set()
    for epoch in range(4):
        for i in range(3):
            item = ds[(epoch, i)]
            params = pre.params(24, 24, sample_generator(7, epoch, i))  # the draw the dataset makes
            seen.add(params)
            left, right = halves[i]
            assert torch.equal(item["A"], _expected(left, pre, params)), "A must be the left half"
            assert torch.equal(item["B"], _expected(right, pre, params)), "B: the same crop and flip as A"
            assert item["skipped"] == 0
    assert len({p[:2] for p in seen}) > 3 and {p[2] for p in seen} == {True, False}  # crops and flips vary
    again = AlignedDataset(aligned_pairs(str(root)), pre, seed=7)[(2, 1)]
    assert torch.equal(again["A"], ds[(2, 1)]["A"])  # a function of (seed, epoch, index) only


def test_aligned_resize_and_crop_keeps_pairs_aligned(tmp_path):
    half = _noise(40, 40, 0)
    _save(np.concatenate([half, half], 1), tmp_path / "same.png")  # identical halves stay identical
    pre = Preprocess("resize_and_crop", load_size=36, crop_size=32, flip=True)
    ds = AlignedDataset(aligned_pairs(str(tmp_path)), pre, seed=0)
    items = [ds[(e, 0)] for e in range(6)]
    assert all(torch.equal(it["A"], it["B"]) for it in items)
    assert items[0]["A"].shape == (3, 32, 32)
    assert len({it["A"].sum().item() for it in items}) > 1  # different crops per epoch


def test_split_halves_drops_an_odd_last_column():
    a, b = split_halves(torch.arange(2 * 7).reshape(1, 2, 7))
    assert a.shape == b.shape == (1, 2, 3)
    assert a[0, 0].tolist() == [0, 1, 2] and b[0, 0].tolist() == [3, 4, 5]


def test_two_folders_pair_by_name(tmp_path):
    for name, seed in (("x", 0), ("sub/y", 1)):
        _save(_noise(20, 20, seed), tmp_path / "A" / f"{name}.jpg")
        _save(_noise(20, 20, seed + 10), tmp_path / "B" / f"{name}.png")
    pairs = pair_folders(tmp_path / "A", tmp_path / "B")
    assert [(a.relative_to(tmp_path).as_posix(), b.relative_to(tmp_path).as_posix()) for a, b in pairs] == [
        ("A/sub/y.jpg", "B/sub/y.png"),
        ("A/x.jpg", "B/x.png"),
    ]
    pre = Preprocess("crop", crop_size=16, flip=True)
    item = AlignedDataset(pairs, pre, seed=3)[(0, 1)]
    params = pre.params(20, 20, sample_generator(3, 0, 1))
    assert torch.equal(item["B"], _expected(_noise(20, 20, 10), pre, params))
    # the same folders through the trainA/trainB layout
    (tmp_path / "A").rename(tmp_path / "trainA")
    (tmp_path / "B").rename(tmp_path / "trainB")
    assert len(aligned_pairs(str(tmp_path))) == 2
    _save(_noise(20, 20, 5), tmp_path / "trainA" / "lonely.png")
    with pytest.raises(UserError, match="lonely"):
        aligned_pairs(str(tmp_path))


def test_paired_sizes_that_crop_differently_fail_early(tmp_path):
    _save(_noise(20, 20, 0), tmp_path / "A" / "x.png")
    _save(_noise(24, 20, 1), tmp_path / "B" / "x.png")
    cfg = build_config(
        [],
        [],
        [f"data.dir_a={tmp_path / 'A'}", f"data.dir_b={tmp_path / 'B'}", "data.preprocess=crop", "data.crop_size=16"],
    )
    with pytest.raises(UserError, match="different sizes"):
        build_aligned(cfg.data, 0)
    cfg.data.preprocess = "resize_and_crop"  # both resized to load_size: fine
    assert len(build_aligned(cfg.data, 0)) == 1


def test_grey_input_colour_target_from_side_by_side(side_by_side):
    root, halves = side_by_side
    cfg = build_config(["pix2pix"], [], TINY + [f"data.root={root}", "data.channels_a=1"])
    item = build_dataset(cfg)[(0, 0)]
    assert item["A"].shape == (1, 32, 32) and item["B"].shape == (3, 32, 32)
    method = create_method(cfg)
    assert method.specs()["D"].kwargs["in_ch"] == 4  # conditional D sees input + output channels


def test_split_aligned_folder(side_by_side, tmp_path):
    root, halves = side_by_side
    assert split_aligned_folder(root / "train", tmp_path / "a", tmp_path / "b") == 3
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / "1.png")), halves[1][0])
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b" / "1.png")), halves[1][1])


def test_preset_is_the_reference_pix2pix():
    cfg = build_config(["pix2pix"])
    assert PRESETS["pix2pix"]["model.method"] == "pix2pix"
    assert (cfg.model.generator, cfg.model.norm, cfg.model.dropout, cfg.model.discriminator) == (
        "unet_256",
        "batch",
        True,
        "basic",
    )
    assert (cfg.loss.gan_mode, cfg.loss.lambda_l1, cfg.loss.pool_size, cfg.loss.lambda_identity) == (
        "vanilla",
        100.0,
        0,
        0.0,
    )
    assert (cfg.optim.lr, cfg.optim.beta1, cfg.optim.n_epochs, cfg.optim.n_epochs_decay) == (2e-4, 0.5, 100, 100)
    assert (cfg.train.batch_size, cfg.data.load_size, cfg.data.crop_size) == (1, 286, 256)
    assert create_method(cfg).test_train_mode is True


@torch.no_grad()
def test_networks_match_reference_parameter_counts_and_shapes():
    nets = create_method(build_config(["pix2pix"])).build_networks()
    assert count_parameters(nets["G"]) == 54_413_955  # unet_256, batch norm (dropout adds none)
    assert count_parameters(nets["D"]) == 2_768_705  # basic PatchGAN, 6 input channels, batch norm
    if REFERENCE.is_file():
        import json

        ref = json.loads(REFERENCE.read_text())
        assert count_parameters(nets["G"]) == ref["generators"]["unet_256/norm=batch/dropout=True"]["parameters"]
        assert count_parameters(nets["D"]) == ref["discriminators"]["basic/norm=batch/input_nc=6"]["parameters"]
        sd = ref["generators"]["unet_256/norm=batch/dropout=True"]["state_dict"]
        assert [(k, list(v.shape)) for k, v in nets["G"].state_dict().items()] == [(k, s) for k, s in sd]
    nets.eval()
    x = torch.zeros(1, 3, 256, 256)
    y = nets["G"](x)
    assert y.shape == (1, 3, 256, 256)
    assert nets["D"](torch.cat([x, y], 1)).shape == (1, 1, 30, 30)


def _hooked(nets) -> tuple[dict[str, list], list]:
    inputs: dict[str, list] = {k: [] for k in nets}
    handles = [
        net.register_forward_hook(lambda m, args, out, k=k: inputs[k].append(args[0])) for k, net in nets.items()
    ]
    return inputs, handles


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_objective_and_direction(direction):
    cfg = build_config(
        ["pix2pix"],
        [],
        TINY + [f"data.direction={direction}", "model.dropout=false", "data.channels_a=1", "data.channels_b=3"],
    )
    method = create_method(cfg)
    torch.manual_seed(0)
    nets = method.build_networks()
    batch = {"A": torch.rand(2, 1, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    src, dst = ("A", "B") if direction == "AtoB" else ("B", "A")
    assert method.directions == {direction: "G"} and method.translator(nets, direction) is nets["G"]
    inputs, handles = _hooked(nets)
    terms, fakes = method.generator_loss(nets, batch)
    for h in handles:
        h.remove()
    assert set(terms) == {"G_GAN", "G_L1"}
    assert len(inputs["G"]) == 1 and inputs["G"][0] is batch[src]
    fake = nets["G"](batch[src])  # batch norm in train mode: same batch, same output
    assert terms["G_L1"].item() == pytest.approx(100 * F.l1_loss(fake, batch[dst]).item(), rel=1e-5)
    pred = nets["D"](torch.cat([batch[src], fake], 1))
    assert terms["G_GAN"].item() == pytest.approx(
        F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred)).item(), rel=1e-5
    )
    assert fakes["D"].shape == (2, 4, 32, 32) and not fakes["D"].requires_grad
    d_terms = method.discriminator_loss(nets, batch, fakes)
    real = nets["D"](torch.cat([batch[src], batch[dst]], 1))
    bce = F.binary_cross_entropy_with_logits
    expect = 0.5 * (bce(real, torch.ones_like(real)) + bce(nets["D"](fakes["D"]), torch.zeros_like(real)))
    assert d_terms["D"].item() == pytest.approx(expect.item(), rel=1e-5)


def test_l1_only_runs_no_discriminator():
    cfg = build_config(["pix2pix"], [], TINY + ["loss.lambda_gan_a=0"])
    state = create_state(cfg, torch.device("cpu"))
    assert state.method.active_discriminators() == () and state.opt_d is None and state.pools == {}
    inputs, _ = _hooked(state.nets)
    d_before = [p.clone() for p in state.nets["D"].parameters()]
    terms = train_step(state, {"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32)})
    assert set(terms) == {"G_L1"} and inputs["D"] == [] and len(inputs["G"]) == 1
    assert all(torch.equal(a, b) for a, b in zip(d_before, state.nets["D"].parameters()))
    with pytest.raises(UserError, match="nothing to train"):
        create_method(build_config(["pix2pix"], [], ["loss.lambda_gan_a=0", "loss.lambda_l1=0"]))
    with pytest.raises(UserError, match="AtoB or BtoA"):
        create_method(build_config(["pix2pix"], [], ["data.direction=sideways"]))


def test_cli_method_pix2pix_gets_its_preset_and_direction():
    args = build_parser().parse_args(["train", "facades", "--method", "pix2pix", "--direction", "BtoA"])
    cfg = config_from_args(args)
    assert (cfg.model.method, cfg.model.generator, cfg.loss.gan_mode, cfg.data.direction) == (
        "pix2pix",
        "unet_256",
        "vanilla",
        "BtoA",
    )
    cfg = config_from_args(build_parser().parse_args(["train", "h2z"]))
    assert (cfg.model.method, cfg.model.generator) == ("cyclegan", "resnet_9blocks")


def test_train_loop_and_translate_modes(side_by_side, tmp_path):
    root, _ = side_by_side
    cfg = build_config(
        ["pix2pix"],
        [],
        TINY + [f"data.root={root}", "data.direction=BtoA", "train.max_steps=2", "train.sample_every=1"],
    )
    result = train(cfg, tmp_path / "run")
    assert result.state.step == 2 and (tmp_path / "run" / "samples" / "step_0000002.png").is_file()
    default = load_translator(tmp_path / "run", "BtoA", "cpu")
    assert default.in_ch == 3 and default.out_ch == 3
    net = default.fn
    assert net.training and any(isinstance(m, torch.nn.Dropout) for m in net.modules())  # reference test.py default
    assert not load_translator(tmp_path / "run", "BtoA", "cpu", train_mode=False).fn.training  # --eval-mode
    out = default(torch.randint(0, 256, (1, 3, 24, 24), dtype=torch.uint8))
    assert out.shape == (1, 3, 24, 24) and out.dtype == torch.uint8
    with pytest.raises(UserError, match="translates BtoA, not AtoB"):
        load_translator(tmp_path / "run", "AtoB", "cpu")


def _palette_fraction(x: torch.Tensor) -> float:
    """Fraction of pixels within 40 RGB levels of a facades label colour."""
    from cyclegan.metrics.segmentation import FACADES_PALETTE

    rgb = ((x + 1) * 127.5).permute(1, 2, 0).reshape(-1, 1, 3)
    d = (rgb - torch.tensor(FACADES_PALETTE, dtype=torch.float32)[None]).norm(dim=-1).min(1).values
    return (d < 40).float().mean().item()


@needs_facades
def test_training_step_on_real_facades():
    torch.manual_seed(0)
    cfg = build_config(
        ["pix2pix"], [], [f"data.root={FACADES}", "data.max_images=2", "data.workers=0", "train.device=cpu"]
    )
    ds = build_dataset(cfg)
    assert len(ds) == 2
    item = ds[(0, 0)]
    assert item["A"].shape == item["B"].shape == (3, 256, 256)
    assert _palette_fraction(item["B"]) > 0.6 and _palette_fraction(item["A"]) < 0.1  # A = photo, B = labels
    state = create_state(cfg, torch.device("cpu"))
    before = {k: [p.detach().clone() for p in net.parameters()] for k, net in state.nets.items()}
    terms = train_step(state, {k: item[k][None] for k in ("A", "B")})
    assert set(terms) == {"G_GAN", "G_L1", "D"} and all(torch.isfinite(v) for v in terms.values())
    assert 10 < terms["G_L1"].item() < 200  # 100 x mean |G(x) - y| of an untrained G on [-1, 1] images
    for k, net in state.nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[k], net.parameters())), f"{k} was not updated"
    assert state.step == 1
