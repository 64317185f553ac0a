"""CycleGAN's objective (Eq. 3 + identity) equals a direct computation, and the extra terms compose as stated."""

import pytest
import torch

from conftest import cyclegan_method_setup
from cyclegan.methods.cyclegan import weighted
from cyclegan.methods.extras import AddedTerm, add_noise


def test_generator_loss_is_eq3_plus_identity(image_root, tiny_overrides):
    method, nets, batch = cyclegan_method_setup(
        image_root, tiny_overrides, "loss.lambda_identity=0.5", "loss.lambda_a=7", "loss.lambda_b=3"
    )
    x, y = batch["A"], batch["B"]
    G, F, D_Y, D_X = nets["G_A"], nets["G_B"], nets["D_A"], nets["D_B"]
    terms, fakes = method.generator_loss(nets, batch)
    with torch.no_grad():
        want = {
            "G_A": ((D_Y(G(x)) - 1) ** 2).mean(),  # LSGAN generator side of Eq. 1
            "G_B": ((D_X(F(y)) - 1) ** 2).mean(),
            "cycle_A": 7 * (F(G(x)) - x).abs().mean(),  # Eq. 2, forward
            "cycle_B": 3 * (G(F(y)) - y).abs().mean(),  # Eq. 2, backward
            "idt_A": 0.5 * 3 * (G(y) - y).abs().mean(),
            "idt_B": 0.5 * 7 * (F(x) - x).abs().mean(),
        }
    assert list(terms) == list(want)
    for k, v in want.items():
        assert torch.allclose(terms[k], v, rtol=1e-5, atol=1e-7), k
    assert set(fakes) == {"D_A", "D_B"} and torch.allclose(fakes["D_A"], G(x))
    assert not fakes["D_A"].requires_grad


def test_zero_weights_skip_terms_and_passes(image_root, tiny_overrides):
    method, nets, batch = cyclegan_method_setup(image_root, tiny_overrides, "loss.lambda_gan_b=0", "loss.lambda_b=0")
    calls = {k: 0 for k in nets}
    for k, net in nets.items():
        net.register_forward_hook(lambda *_, k=k: calls.__setitem__(k, calls[k] + 1))
    terms, fakes = method.generator_loss(nets, batch)
    assert list(terms) == ["G_A", "cycle_A"] and list(fakes) == ["D_A"]
    assert calls == {"G_A": 1, "G_B": 1, "D_A": 1, "D_B": 0}  # G(x), F(G(x)), D_Y(G(x)); no F(y)


def test_weighted_keeps_order_and_calls_only_nonzero_terms():
    called = []
    out = weighted(
        {
            "a": (2.0, lambda: called.append("a") or torch.tensor(3.0)),
            "b": (0.0, lambda: called.append("b") or torch.tensor(1.0)),
            "c": (0.5, lambda: called.append("c") or torch.tensor(4.0)),
        }
    )
    assert list(out) == ["a", "c"] and called == ["a", "c"]
    assert out["a"].item() == 6.0 and out["c"].item() == 2.0


def test_added_terms_are_weighted_and_named(image_root, tiny_overrides):
    method, nets, batch = cyclegan_method_setup(image_root, tiny_overrides)
    method.extras.terms.append(AddedTerm(0.25, lambda x, y, fy, fx: {"mean_A": fy.mean(), "mean_B": fx.mean()}))
    terms, _ = method.generator_loss(nets, batch)
    with torch.no_grad():
        assert torch.allclose(terms["mean_A"], 0.25 * nets["G_A"](batch["A"]).mean())
    assert list(terms)[-2:] == ["mean_A", "mean_B"]


@pytest.mark.parametrize("std", [0.0, 0.3])
def test_add_noise(std):
    x = torch.zeros(2, 3, 64, 64)
    torch.manual_seed(0)
    y = add_noise(x, std)
    assert (y is x) if std == 0 else abs(y.std().item() - std) < 0.01
