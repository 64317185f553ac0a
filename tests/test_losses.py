"""Loss functions on hand-made tensors with known values."""

import math

import pytest
import torch

from cyclegan import losses as L


def test_lsgan_values():
    pred = torch.tensor([[0.0, 0.5], [1.0, 2.0]])
    # real: mean((p - 1)^2) = (1 + .25 + 0 + 1) / 4
    assert L.gan_loss(pred, True, "lsgan").item() == pytest.approx(2.25 / 4)
    assert L.gan_loss(pred, False, "lsgan").item() == pytest.approx((0 + 0.25 + 1 + 4) / 4)


def test_discriminator_loss_is_halved():
    real, fake = torch.full((1, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), 0.5)
    # 0.5 * ((0.5 - 1)^2 + 0.5^2) = 0.25
    assert L.discriminator_gan_loss(real, fake, "lsgan").item() == pytest.approx(0.25)


def test_vanilla_is_bce_on_logits():
    pred = torch.tensor([0.0, math.log(3.0)])  # sigmoid = 0.5, 0.75
    expected = -(math.log(0.5) + math.log(0.75)) / 2
    assert L.gan_loss(pred, True, "vanilla").item() == pytest.approx(expected)
    assert L.gan_loss(pred, False, "vanilla").item() == pytest.approx(-(math.log(0.5) + math.log(0.25)) / 2)


def test_wgan_scores():
    pred = torch.tensor([1.0, 3.0])
    assert L.gan_loss(pred, True, "wgangp").item() == -2.0
    assert L.gan_loss(pred, False, "wgangp").item() == 2.0


def test_generator_loss_is_real_target():
    pred = torch.tensor([0.2])
    assert L.generator_gan_loss(pred, "lsgan").item() == pytest.approx(0.64)


def test_cycle_and_identity_are_mean_absolute_error():
    a, b = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2) * 0.5
    b[0, 0, 0, 0] = -1.0
    expected = (11 * 0.5 + 1.0) / 12
    assert L.cycle_loss(b, a).item() == pytest.approx(expected)
    assert L.identity_loss(b, a).item() == pytest.approx(expected)


def test_unknown_gan_mode():
    with pytest.raises(ValueError, match="unknown gan mode"):
        L.gan_loss(torch.zeros(1), True, "hinge")


def test_gradient_penalty_of_a_linear_critic():
    # D(x) = sum(w * x): the gradient is w everywhere, so the penalty is weight * (||w|| - 1)^2.
    w = torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)
    critic = lambda x: (x * w).sum(dim=(1, 2, 3))  # noqa: E731
    gp = L.gradient_penalty(critic, torch.randn(4, 2, 1, 1), torch.randn(4, 2, 1, 1), weight=10.0)
    assert gp.item() == pytest.approx(10 * (5 - 1) ** 2)


def test_gradient_penalty_reaches_discriminator_parameters():
    d = torch.nn.Conv2d(3, 1, 3)
    gp = L.gradient_penalty(d, torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8))
    gp.backward()
    assert d.weight.grad is not None and d.weight.grad.abs().sum() > 0
