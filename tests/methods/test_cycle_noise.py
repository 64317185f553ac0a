"""Noise on the translation before the cycle back (loss.cycle_noise; Bashkirova et al. 2019), off by default."""

import pytest
import torch

from conftest import assert_resume_bit_identical, cyclegan_method_setup
from cyclegan import losses as L
from cyclegan.config import build_config
from cyclegan.errors import UserError
from cyclegan.methods import validate


def test_cycle_terms_see_noisy_translations_and_the_discriminators_clean_ones(image_root, tiny_overrides):
    method, nets, batch = cyclegan_method_setup(image_root, tiny_overrides, "loss.cycle_noise=0.3", "loss.lambda_a=4")
    torch.manual_seed(7)
    terms, fakes = method.generator_loss(nets, batch)
    with torch.no_grad():
        fake_b, fake_a = nets["G_A"](batch["A"]), nets["G_B"](batch["B"])
        torch.manual_seed(7)  # the same draws, in the method's order: forward cycle first
        noise_b, noise_a = torch.randn_like(fake_b), torch.randn_like(fake_a)
        want_a = 4 * L.cycle_loss(nets["G_B"](fake_b + 0.3 * noise_b), batch["A"])
        want_b = 10 * L.cycle_loss(nets["G_A"](fake_a + 0.3 * noise_a), batch["B"])
        clean_a = 4 * L.cycle_loss(nets["G_B"](fake_b), batch["A"])
    assert terms["cycle_A"].item() == pytest.approx(want_a.item(), rel=1e-6)
    assert terms["cycle_B"].item() == pytest.approx(want_b.item(), rel=1e-6)
    assert abs(terms["cycle_A"].item() - clean_a.item()) > 1e-4  # the noise changed the term
    assert torch.equal(fakes["D_A"], fake_b) and torch.equal(fakes["D_B"], fake_a)  # D and the pools: no noise


def test_zero_noise_is_the_paper_objective_and_draws_nothing(image_root, tiny_overrides):
    method, nets, batch = cyclegan_method_setup(image_root, tiny_overrides)
    assert method.cfg.loss.cycle_noise == 0.0
    torch.manual_seed(3)
    before = torch.get_rng_state()
    terms, _ = method.generator_loss(nets, batch)
    assert torch.equal(torch.get_rng_state(), before)  # no random draw: runs without the option are unchanged
    with torch.no_grad():
        want = 10 * L.cycle_loss(nets["G_B"](nets["G_A"](batch["A"])), batch["A"])
    assert terms["cycle_A"].item() == pytest.approx(want.item(), rel=1e-6)


def test_noise_gradient_still_reaches_the_forward_generator(image_root, tiny_overrides):
    method, nets, batch = cyclegan_method_setup(
        image_root,
        tiny_overrides,
        "loss.cycle_noise=0.5",
        "loss.lambda_gan_a=0",
        "loss.lambda_gan_b=0",
        "loss.lambda_b=0",
    )
    terms, _ = method.generator_loss(nets, batch)
    terms["cycle_A"].backward()  # additive noise: d cycle / d G(x) is unchanged in form, G still learns from it
    assert sum(p.grad.abs().sum() for p in nets["G_A"].parameters()) > 0


def test_resume_with_cycle_noise_is_bit_identical(image_root, tiny_overrides, tmp_path):
    assert_resume_bit_identical(
        tiny_overrides + [f"data.root={image_root}", "loss.cycle_noise=0.2", "loss.pool_size=3"], tmp_path
    )  # RNG state included


@pytest.mark.parametrize(
    "extra,message",
    [
        (["loss.cycle_noise=-0.1"], "standard deviation"),
        (["loss.cycle_noise=0.1", "model.method=pix2pix"], "not of pix2pix"),
    ],
)
def test_bad_settings_are_named(image_root, tiny_overrides, extra, message):
    with pytest.raises(UserError, match=message):
        validate(build_config([], [], tiny_overrides + [f"data.root={image_root}", *extra]))
