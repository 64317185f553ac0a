"""The paper's baselines (SimGAN, feature loss + GAN, CoGAN, BiGAN/ALI): shapes, losses, tied weights,
CoGAN's latent search, the fixed feature networks, real-image training steps and the translate CLI."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from conftest import HORSE2ZEBRA, needs_horse2zebra
from cyclegan.checkpoint import load_model
from cyclegan.cli import main as cli
from cyclegan.config import build_config
from cyclegan.data import build_unaligned
from cyclegan.errors import UserError
from cyclegan.methods import METHODS, create_method
from cyclegan.methods import feature_gan as feature_gan_module
from cyclegan.methods.cogan import latent_search
from cyclegan.metrics.inception import FIDInceptionV3
from cyclegan.nets import count_parameters
from cyclegan.nets import perceptual as feats
from cyclegan.nets.latent import LATENT_NETS
from cyclegan.train import create_state, train, train_step

BASELINES = ("simgan", "feature_gan", "cogan", "bigan", "bigan_latent")
SMALL = ["model.ngf=4", "model.ndf=4", "model.latent_dim=8", "model.latent_steps=3", "train.batch_size=2"]


@pytest.fixture(scope="module")
def random_inception() -> feats.InceptionFeatures:
    """The Inception trunk with its random initial weights: the loss mechanics need no pretrained ones."""
    torch.manual_seed(0)
    return feats.InceptionFeatures(FIDInceptionV3()).eval().requires_grad_(False)


@pytest.fixture(autouse=True)
def _no_real_feature_weights(monkeypatch, random_inception):
    """feature_gan gets the random trunk instead of loading the FID weights (tested in tests/metrics)."""
    monkeypatch.setattr(feature_gan_module, "create_feature_net", lambda name, weights=None: random_inception)


def test_all_baselines_are_registered():
    assert set(BASELINES) <= set(METHODS.names())


def _config(method: str, size: int, *extra: str):
    gen = "resnet_9blocks" if size == 256 else "resnet_6blocks"
    return build_config(
        [method], [], [f"data.crop_size={size}", f"data.load_size={size}", f"model.generator={gen}", *SMALL, *extra]
    )


@pytest.mark.parametrize("size", [128, 256])
@pytest.mark.parametrize("method", BASELINES)
def test_translation_and_loss_shapes(method, size):
    """Each method's networks build at the paper's sizes; both loss phases give scalars; translation keeps
    the input's size and channels (forward passes only: backward steps are tested on real images below)."""
    cfg = _config(method, size, "data.channels_a=1")
    if method in ("simgan", "feature_gan"):  # these compare G(x) with x: equal channels only
        with pytest.raises(UserError, match="channels"):
            create_method(cfg).specs()
        cfg = _config(method, size)
    torch.manual_seed(0)
    method_ = create_method(cfg)
    nets = method_.build_networks()
    ca, cb = cfg.data.channels_a, cfg.data.channels_b
    batch = {"A": torch.rand(1, ca, size, size) * 2 - 1, "B": torch.rand(1, cb, size, size) * 2 - 1}
    with torch.no_grad():
        terms, fakes = method_.generator_loss(nets, batch)
        terms.update(method_.discriminator_loss(nets, batch, fakes))
    assert set(fakes) == set(method_.active_discriminators())
    assert terms and all(t.dim() == 0 and torch.isfinite(t) for t in terms.values())
    for direction, (cin, cout) in (("AtoB", (ca, cb)), ("BtoA", (cb, ca))):
        assert method_.io_channels(direction) == (cin, cout)
        with torch.no_grad():
            y = method_.translator(nets, direction)(torch.rand(1, cin, size, size) * 2 - 1)
        assert y.shape == (1, cout, size, size) and y.abs().max() <= 1


def test_latent_networks_shapes_and_counts():
    g = LATENT_NETS.create("cogan_generator", latent_dim=100, out_ch_a=3, out_ch_b=1, size=128, ngf=8)
    a, b = g(torch.rand(2, 100))
    assert a.shape == (2, 3, 128, 128) and b.shape == (2, 1, 128, 128)
    d = LATENT_NETS.create("cogan_discriminator", in_ch_a=3, in_ch_b=1, size=256, ndf=8)
    assert d(torch.zeros(2, 1, 256, 256), "B").shape == (2, 1)
    e = LATENT_NETS.create("latent_encoder", in_ch=3, latent_dim=50, size=256, ndf=8)
    assert e(torch.zeros(2, 3, 256, 256)).shape == (2, 50)
    j = LATENT_NETS.create("joint_discriminator", in_ch=3, latent_dim=50, size=128, ndf=8)
    assert j(torch.zeros(2, 3, 128, 128), torch.zeros(2, 50)).shape == (2, 1)
    # DCGAN widths at 64x64, ngf=8: 4x4x64, 8x8x64, 16x16x32, 32x32x16, 64x64x8, to RGB (batch norm)
    single = LATENT_NETS.create("latent_generator", latent_dim=100, out_ch=3, size=64, ngf=8)
    expected = (
        (100 * 64 * 16 + 2 * 64)
        + (64 * 64 * 16 + 2 * 64)
        + (64 * 32 * 16 + 2 * 32)
        + (32 * 16 * 16 + 2 * 16)
        + (16 * 8 * 16 + 2 * 8)
        + (8 * 3 * 9 + 3)
    )
    assert count_parameters(single) == expected
    with pytest.raises(ValueError, match="power-of-two"):
        LATENT_NETS.create("cogan_generator", size=96)
    with pytest.raises(UserError, match="power of two"):
        create_method(build_config(["cogan"], [], ["data.crop_size=96"])).specs()


def test_cogan_tied_weights_are_one_tensor():
    """Shared layers are the very same Parameter objects in both domains' paths; private ones are not;
    the state dict and the optimizer hold each shared tensor once; a domain-A update moves domain B."""
    torch.manual_seed(0)
    g = LATENT_NETS.create("cogan_generator", latent_dim=8, size=32, ngf=4, private=2)
    d = LATENT_NETS.create("cogan_discriminator", size=32, ndf=4, private=1)
    for net, n_shared in ((g, len(g.shared)), (d, len(d.shared))):
        pa = [p for layer in net.path("A") for p in layer.parameters()]
        pb = [p for layer in net.path("B") for p in layer.parameters()]
        shared = list(net.shared.parameters())
        assert shared and all(any(p is q for q in pa) and any(p is q for q in pb) for p in shared)
        assert {p.data_ptr() for p in pa} & {p.data_ptr() for p in pb} == {p.data_ptr() for p in shared}
        private = set(p.data_ptr() for p in net.private.parameters())
        assert private and not private & {p.data_ptr() for p in shared}
        ptrs = [t.data_ptr() for t in net.state_dict().values() if t.numel()]
        assert len(ptrs) == len(set(ptrs))  # no tensor stored twice
        assert n_shared >= 1
    first_a, first_b = g.path("A")[0][0], g.path("B")[0][0]
    assert first_a.weight is first_b.weight and first_a.weight.data_ptr() == first_b.weight.data_ptr()
    assert g.path("A")[-1][0].weight is not g.path("B")[-1][0].weight

    state = create_state(build_config(["cogan"], [], ["data.crop_size=32", *SMALL]), torch.device("cpu"))
    n_params = len(list(state.nets["G"].parameters()))
    assert len(state.opt_g.param_groups[0]["params"]) == n_params  # each tied tensor optimised once
    G = state.nets["G"]
    z = torch.rand(2, 8) * 2 - 1
    with torch.no_grad():
        before_b = G.generate(z, "B").clone()
        private_b = [p.clone() for p in G.private["B"].parameters()]
    opt = torch.optim.SGD(G.parameters(), lr=0.1)
    G.generate(z, "A").square().mean().backward()  # a loss on domain A only
    opt.step()
    assert all(torch.equal(p, q) for p, q in zip(private_b, G.private["B"].parameters()))
    with torch.no_grad():
        assert not torch.allclose(G.generate(z, "B"), before_b)  # B moved through the shared layers


def test_cogan_latent_search_reduces_reconstruction_error():
    torch.manual_seed(0)
    g = LATENT_NETS.create("cogan_generator", latent_dim=16, size=16, ngf=8, norm="none").eval()
    target = g.generate(torch.rand(3, 16) * 2 - 1, "A").detach()  # reachable images
    z, errors = latent_search(lambda z: g.generate(z, "A"), target, 16, steps=25, lr=0.1)
    assert errors.shape == (26, 3)
    assert (errors[-1] < 0.25 * errors[0]).all()  # every image's error falls by 4x or more
    final = (g.generate(z, "A") - target).pow(2).flatten(1).mean(1)
    assert torch.allclose(final, errors.min(0).values)  # the best z seen is returned
    assert z.abs().max() <= 1  # stays in the prior's support
    assert all(p.grad is None for p in g.parameters())  # only z was optimised


def test_simgan_and_bigan_losses_on_hand_made_inputs():
    """The loss terms are the documented formulas, computed independently here."""
    torch.manual_seed(0)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    cfg = build_config(
        ["simgan"],
        [],
        [
            "data.crop_size=32",
            "model.ngf=4",
            "model.ndf=4",
            "model.generator=resnet_6blocks",
            "loss.lambda_self_reg=3",
            "loss.lambda_gan_b=0",
        ],
    )
    m = create_method(cfg)
    nets = m.build_networks()
    terms, fakes = m.generator_loss(nets, {"A": a, "B": b})
    assert set(terms) == {"G_A", "reg_A"} and set(fakes) == {"D_A"}  # lambda_gan_b=0: G_B untouched
    fake = nets["G_A"](a)
    assert torch.allclose(terms["reg_A"], 3 * (fake - a).abs().mean())
    assert torch.allclose(terms["G_A"], (nets["D_A"](fake) - 1).pow(2).mean())

    cfg = build_config(
        ["bigan"], [], ["data.crop_size=32", "model.ngf=4", "model.ndf=4", "model.generator=resnet_6blocks"]
    )
    m = create_method(cfg)
    nets = m.build_networks()
    assert nets["D"].model[0].in_channels == 6  # judges (a, b) pairs
    terms, fakes = m.generator_loss(nets, {"A": a, "B": b})
    gen_pair, enc_pair = torch.cat([a, nets["G_A"](a)], 1), torch.cat([nets["G_B"](b), b], 1)
    assert torch.allclose(terms["G_A"], (nets["D"](gen_pair) - 1).pow(2).mean())
    assert torch.allclose(terms["G_B"], nets["D"](enc_pair).pow(2).mean())
    d_terms = m.discriminator_loss(nets, {"A": a, "B": b}, fakes)
    expected = 0.5 * ((nets["D"](enc_pair) - 1).pow(2).mean() + nets["D"](gen_pair).pow(2).mean())
    assert torch.allclose(d_terms["D"], expected)


def test_vgg16_relu4_2_from_a_local_file(tmp_path):
    """torchvision-style keys (features.N.*) load; the features are relu4_2 of that VGG at 1/8 size."""
    torch.manual_seed(0)
    ref = feats.VGG16Features()
    state = {f"features.{k}": v for k, v in ref.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys of a full checkpoint are ignored
    torch.save(state, tmp_path / "vgg16.pth")
    net = feats.create_feature_net("vgg16", tmp_path / "vgg16.pth")
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training  # stays frozen in eval mode
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    normalised = ((x + 1) / 2 - torch.tensor(feats.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        feats.IMAGENET_STD
    ).view(1, 3, 1, 1)
    out = net(x)
    assert out.shape == (2, 512, 8, 8)
    assert torch.allclose(out, ref.features(normalised), atol=1e-6)
    save_file({k: v.contiguous() for k, v in ref.features.state_dict().items()}, str(tmp_path / "vgg.safetensors"))
    assert torch.allclose(feats.load_vgg16_relu4_2(tmp_path / "vgg.safetensors")(x), out, atol=1e-6)
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(UserError, match="not VGG-16"):
        feats.load_vgg16_relu4_2(tmp_path / "other.safetensors")
    with pytest.raises(UserError, match="needs a local weights file"):
        feats.create_feature_net("vgg16", None)


def test_inception_mixed_5d_is_the_fid_network_truncated(tmp_path):
    """The default feature net equals FIDInceptionV3's Mixed_5d output, loaded through the metrics' loader."""
    torch.manual_seed(1)
    full = FIDInceptionV3().eval()
    for m in full.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    save_file(
        {k: v.contiguous() for k, v in full.state_dict().items() if not k.endswith("num_batches_tracked")},
        str(tmp_path / "inception.safetensors"),
    )
    captured = {}
    full.Mixed_5d.register_forward_hook(lambda mod, inp, out: captured.setdefault("out", out))
    x = torch.rand(1, 3, 75, 75) * 2 - 1
    full(x)
    net = feats.load_inception_mixed_5d(tmp_path / "inception.safetensors")
    out = net(x)
    assert out.shape == (1, 288, 7, 7) and torch.allclose(out, captured["out"], atol=1e-5)
    assert count_parameters(net) == 991_200


def test_feature_loss_is_on_features_and_reaches_the_generator(random_inception):
    cfg = _config("feature_gan", 32, "loss.lambda_self_reg=2", "loss.lambda_gan_b=0")
    m = create_method(cfg)
    nets = m.build_networks()
    a = torch.rand(1, 3, 32, 32) * 2 - 1
    terms, _ = m.generator_loss(nets, {"A": a, "B": a})
    fake = nets["G_A"](a)
    expected = 2 * (random_inception(fake) - random_inception(a)).abs().mean()
    assert torch.allclose(terms["reg_A"], expected, atol=1e-6)
    terms["reg_A"].backward()
    assert all(p.grad is not None for p in nets["G_A"].parameters() if p.requires_grad)
    assert all(p.grad is None for p in random_inception.parameters())
    with pytest.raises(UserError, match="at least 27 pixels"):
        create_method(_config("feature_gan", 16)).specs()


@needs_horse2zebra
@pytest.mark.parametrize("method", BASELINES)
def test_training_step_on_real_horse2zebra(method):
    """One optimisation step on real horse and zebra photos (64x64 crops): finite losses, weights move."""
    cfg = build_config(
        [method],
        [],
        [
            f"data.root={HORSE2ZEBRA}",
            "data.max_images=2",
            "data.load_size=72",
            "data.crop_size=64",
            "data.workers=0",
            "model.generator=resnet_6blocks",
            *SMALL,
        ],
    )
    data = build_unaligned(cfg.data, cfg.train.seed)
    items = [data[(0, i)] for i in range(2)]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("A", "B")}
    state = create_state(cfg, torch.device("cpu"))
    before = {k: [p.clone() for p in state.nets[k].parameters()] for k in state.method.generators}
    terms = train_step(state, batch)
    assert all(torch.isfinite(v) for v in terms.values())
    assert any(k.startswith("D") for k in terms)  # the discriminator phase ran
    for k, params in before.items():
        assert any(not torch.equal(p, q) for p, q in zip(params, state.nets[k].parameters())), k


@pytest.mark.parametrize("method", BASELINES)
def test_translate_cli_on_a_tiny_run(method, image_root, tiny_overrides, tmp_path):
    """Train 2 steps, then `cyclegan translate` both ways: outputs keep each input's size (40x36 here)."""
    cfg = build_config([method], [], tiny_overrides + [f"data.root={image_root}", "train.max_steps=2", *SMALL])
    result = train(cfg, tmp_path / "run")
    tree, meta = load_model(tmp_path / "run" / "checkpoints" / "latest.model.safetensors")
    assert set(tree) == set(result.state.method.inference_nets()) == set(meta["specs"])
    for direction, folder in (("AtoB", "testA"), ("BtoA", "testB")):
        out = tmp_path / f"out_{direction}"
        rc = cli(
            [
                "translate",
                "--checkpoint",
                str(tmp_path / "run"),
                "--direction",
                direction,
                str(image_root / folder),
                "--out",
                str(out),
                "--no-gallery",
            ]
        )
        assert rc == 0
        files = sorted(out.glob("*.png"))
        assert len(files) == 3 and all(Image.open(f).size == (40, 36) for f in files)
