"""The fused network calls of the default path (methods/fused.py) compute what the separate calls compute, on
real horse2zebra images, for both phases of a step: losses within 1e-5 relative in float32, and gradients as close
to a float64 computation of the separate calls as float32's separate calls are (a weight's gradient sums thousands
of products, so float32 itself is only good to ~1e-5 there; fusing adds no error beyond that rounding).

The losses' bound is float32 rounding, not zero: a batch of two runs through other kernel blockings than two
batches of one, so the sums inside the convolutions come in another order. Measured: under 1e-6 relative on the
Intel AVX-512/AMX machine (this test's bound until session 18), 1.6e-6 on an AVX2-only AMD EPYC (Zen 1; G_A's
loss). A fusing mistake (a wrong slice, statistics shared across the batch) changes the function computed, far
beyond rounding."""

import pytest
import torch

from conftest import HORSE2ZEBRA, TINY, needs_horse2zebra
from cyclegan.config import build_config
from cyclegan.methods.fused import SharedPass, real_and_fake, samples_independent
from cyclegan.train import create_state, train_step
from cyclegan.train.datasets import build_dataset

LOSS_RTOL = 1e-5  # float32 rounding of the losses, whatever the CPU's kernels (see above)


def _step(fuse: bool, extra=(), dtype=torch.float32):
    cfg = build_config(
        [],
        [],
        TINY
        + [
            f"data.root={HORSE2ZEBRA}",
            "data.max_images=2",
            "model.ngf=8",
            "model.ndf=8",
            "loss.lambda_identity=0.5",
            f"train.fuse_passes={fuse}",
            *extra,
        ],
    )
    batch = build_dataset(cfg)[(0, 0)]
    batch = {k: batch[k][None] for k in ("A", "B")}
    batch = {k: v.to(dtype) for k, v in batch.items()}
    state = create_state(cfg, torch.device("cpu"))
    method, nets = state.method, state.nets.to(dtype)
    terms, fakes = method.generator_loss(nets, batch)
    sum(terms.values()).backward()
    grads_g = {f"{n}.{k}": p.grad.clone() for n in ("G_A", "G_B") for k, p in nets[n].named_parameters()}
    d_terms = method.discriminator_loss(nets, batch, fakes)
    nets.zero_grad()
    sum(d_terms.values()).backward()
    grads_d = {f"{n}.{k}": p.grad.clone() for n in ("D_A", "D_B") for k, p in nets[n].named_parameters()}
    return method, {**terms, **d_terms}, grads_g, grads_d


@needs_horse2zebra
def test_fused_step_equals_separate_calls():
    fused_method, fused, g1, d1 = _step(True)
    plain_method, plain, g2, d2 = _step(False)
    _, exact, g64, d64 = _step(False, dtype=torch.float64)
    assert fused_method.fuse_g and fused_method.fuse_d and not plain_method.fuse_g
    assert list(fused) == list(plain) == ["G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"]
    for k in fused:
        assert torch.allclose(fused[k], plain[k], rtol=LOSS_RTOL, atol=1e-6), (k, fused[k], plain[k])

    def error(grads, truth):  # the largest deviation from float64, relative to the phase's largest gradient
        # (a bias before instance norm has a true gradient of 0: its float32 noise is measured against the rest)
        scale = max(t.abs().max().item() for t in truth.values())
        return max((grads[k].double() - truth[k]).abs().max().item() for k in truth) / scale

    for fused_grads, plain_grads, truth in ((g1, g2, g64), (d1, d2, d64)):
        assert error(plain_grads, truth) < 1e-4  # float32's own rounding
        assert error(fused_grads, truth) <= 2 * error(plain_grads, truth) + 1e-6


@needs_horse2zebra
@pytest.mark.parametrize("extra", ["loss.cycle_noise=0.1", "loss.diffaugment=color,translation"])
def test_fused_step_with_random_extras_equals_separate_calls(extra):
    """With noise on the cycle's input F(G(x)) runs on its own (the noise is drawn where the separate calls draw
    it); with DiffAugment the discriminators keep their two calls: same random draws, same losses."""
    fused_method, fused, *_ = _step(True, [extra])
    _, plain, *_ = _step(False, [extra])
    assert fused_method.fuse_g
    for k in plain:
        assert torch.allclose(fused[k], plain[k], rtol=LOSS_RTOL, atol=1e-6), (k, fused[k], plain[k])


@needs_horse2zebra
def test_a_fused_training_step_runs_and_updates(tmp_path):
    cfg = build_config([], [], TINY + [f"data.root={HORSE2ZEBRA}", "data.max_images=2", "loss.lambda_identity=0.5"])
    state = create_state(cfg, torch.device("cpu"))
    batch = {k: torch.rand(1, 3, 32, 32) * 2 - 1 for k in ("A", "B")}
    terms = train_step(state, batch)
    assert state.method.fuse_g and set(terms) >= {"idt_A", "D_A"} and all(torch.isfinite(v) for v in terms.values())


def test_shared_pass_returns_slices_for_its_inputs_only():
    calls = []
    net = torch.nn.Conv2d(3, 2, 3, padding=1)
    net.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    a, b, c = torch.randn(1, 3, 8, 8), torch.randn(2, 3, 8, 8), torch.randn(1, 3, 8, 8)
    f = SharedPass(net, a, b)
    assert calls == [3]
    assert torch.allclose(f(a), net(a), atol=1e-6) and torch.allclose(f(b), net(b), atol=1e-6)
    assert calls == [3, 1, 2]  # the two reference calls above; f(a), f(b) did not call net
    f(c)
    assert calls[-1] == 1  # an input it was not given runs net


def test_real_and_fake_in_one_call_or_two():
    d = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 3), torch.nn.InstanceNorm2d(1))
    real, fake = torch.randn(2, 3, 9, 9), torch.randn(2, 3, 9, 9)
    one, two = real_and_fake(d, real, fake, fused=True), real_and_fake(d, real, fake, fused=False)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(one, two))


@pytest.mark.parametrize(
    "norm,dropout,expected",
    [("instance", False, True), ("none", False, True), ("batch", False, False), ("instance", True, False)],
)
def test_which_networks_can_fuse(norm, dropout, expected):
    assert samples_independent(norm, dropout) is expected


def test_fused_calls_are_fewer(image_root):
    from cyclegan.methods import create_method

    cfg = build_config([], [], TINY + [f"data.root={image_root}", "loss.lambda_identity=0.5"])
    method = create_method(cfg)
    torch.manual_seed(0)
    nets = method.build_networks()
    calls = {k: 0 for k in nets}
    for k, net in nets.items():
        net.register_forward_hook(lambda *_, k=k: calls.__setitem__(k, calls[k] + 1))
    batch = {k: torch.rand(1, 3, 32, 32) * 2 - 1 for k in ("A", "B")}
    _, fakes = method.generator_loss(nets, batch)
    method.discriminator_loss(nets, batch, fakes)
    # G: [x, y] once, then G(F(y)); F: [y, x, G(x)] once; D: the generator phase, then [real, fake] once
    assert calls == {"G_A": 2, "G_B": 1, "D_A": 2, "D_B": 2}
