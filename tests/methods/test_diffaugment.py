"""DiffAugment on the discriminators' inputs (loss.diffaugment; Zhao et al. 2020), off by default."""

import pytest
import torch

from conftest import assert_resume_bit_identical, cyclegan_method_setup
from cyclegan import augment
from cyclegan import losses as L
from cyclegan.config import build_config
from cyclegan.errors import UserError
from cyclegan.methods import validate


def _numbered(b=6, c=3, h=16, w=16):
    """Images whose every pixel value is distinct and non-zero, so a shift can be read off the values."""
    return (torch.arange(b * c * h * w, dtype=torch.float64).reshape(b, c, h, w) + 1) / (b * c * h * w)


def test_translation_is_a_whole_pixel_shift_with_zero_fill():
    x = _numbered()
    torch.manual_seed(1)
    y = augment.translation(x)
    seen = set()
    for b in range(x.shape[0]):
        found = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)  # 16 * 0.125 = 2 pixels at most
            if torch.equal(y[b], _shifted(x[b], dy, dx))
        ]
        assert len(found) == 1, f"sample {b} is not one shift of its input"
        seen.add(found[0])
    assert len(seen) > 1  # each sample draws its own shift


def _shifted(img, dy, dx):
    """out[:, i, j] = img[:, i + dy, j + dx], zero outside, written with slices (the reference for the test)."""
    out = torch.zeros_like(img)
    h, w = img.shape[1:]
    out[:, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = img[
        :, max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)
    ]
    return out


def test_cutout_zeroes_one_axis_aligned_part_of_a_half_size_square():
    x = _numbered(b=64)
    torch.manual_seed(2)
    y = augment.cutout(x)
    full = 0
    for b in range(x.shape[0]):
        hole = y[b] == 0
        assert torch.equal(hole[0], hole[1]) and torch.equal(hole[0], hole[2])  # every channel
        assert torch.equal(y[b][~hole], x[b][~hole])  # the rest untouched
        rows, cols = hole[0].any(1).nonzero().flatten(), hole[0].any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 8 and 1 <= len(cols) <= 8
        assert hole[0].sum() == len(rows) * len(cols)  # a rectangle: the square clipped by the border
        full += hole[0].sum().item() == 64
    assert full > 0  # some squares fall wholly inside


def test_color_draws_brightness_saturation_and_contrast_per_sample():
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    torch.manual_seed(3)
    y = augment.color(x)
    torch.manual_seed(3)  # the same draws, in the same order, by hand
    u = [torch.rand(4, 1, 1, 1) for _ in range(3)]
    want = x + (u[0] - 0.5)
    m = want.mean(1, keepdim=True)
    want = (want - m) * (2 * u[1]) + m
    m = want.mean((1, 2, 3), keepdim=True)
    want = (want - m) * (u[2] + 0.5) + m
    assert torch.allclose(y, want, atol=1e-6)


def test_gradients_pass_every_transform():
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    torch.manual_seed(4)
    augment.diff_augment(x, augment.parse_policy("color,translation,cutout")).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_policy_parsing():
    assert augment.parse_policy("") == ()
    assert augment.parse_policy(" translation, cutout ") == ("translation", "cutout")
    with pytest.raises(ValueError, match="'flip'"):
        augment.parse_policy("translation,flip")


def test_discriminators_see_augmented_images_and_the_cycle_plain_ones(image_root, tiny_overrides):
    method, nets, batch = cyclegan_method_setup(image_root, tiny_overrides, "loss.diffaugment=translation,cutout")
    torch.manual_seed(5)
    terms, fakes = method.generator_loss(nets, batch)
    policy = ("translation", "cutout")
    with torch.no_grad():
        fake_b, fake_a = nets["G_A"](batch["A"]), nets["G_B"](batch["B"])
        torch.manual_seed(5)  # the method's order: D_A's view of G(x), then D_B's of F(y)
        want_g_a = L.generator_gan_loss(nets["D_A"](augment.diff_augment(fake_b, policy)), "lsgan")
        want_g_b = L.generator_gan_loss(nets["D_B"](augment.diff_augment(fake_a, policy)), "lsgan")
        plain_g_a = L.generator_gan_loss(nets["D_A"](fake_b), "lsgan")
        want_cycle = 10 * L.cycle_loss(nets["G_B"](fake_b), batch["A"])
    assert terms["G_A"].item() == pytest.approx(want_g_a.item(), rel=1e-6)
    assert terms["G_B"].item() == pytest.approx(want_g_b.item(), rel=1e-6)
    assert abs(terms["G_A"].item() - plain_g_a.item()) > 1e-6  # the augmentation changed what D saw
    assert terms["cycle_A"].item() == pytest.approx(want_cycle.item(), rel=1e-6)
    assert torch.equal(fakes["D_A"], fake_b)  # the pools store plain translations

    torch.manual_seed(6)
    d_terms = method.discriminator_loss(nets, batch, fakes)
    with torch.no_grad():
        torch.manual_seed(6)  # real then fake, D_A then D_B
        real_t = augment.diff_augment(batch["B"], policy)
        fake_t = augment.diff_augment(fakes["D_A"], policy)
        want_d_a = L.discriminator_gan_loss(nets["D_A"](real_t), nets["D_A"](fake_t), "lsgan")
    assert d_terms["D_A"].item() == pytest.approx(want_d_a.item(), rel=1e-6)


def test_off_by_default_and_draws_nothing(image_root, tiny_overrides):
    method, nets, batch = cyclegan_method_setup(image_root, tiny_overrides)
    assert method.cfg.loss.diffaugment == ""
    torch.manual_seed(3)
    before = torch.get_rng_state()
    _, fakes = method.generator_loss(nets, batch)
    method.discriminator_loss(nets, batch, fakes)
    assert torch.equal(torch.get_rng_state(), before)  # runs without the option are unchanged


def test_resume_with_diffaugment_is_bit_identical(image_root, tiny_overrides, tmp_path):
    assert_resume_bit_identical(
        tiny_overrides + [f"data.root={image_root}", "loss.diffaugment=color,translation,cutout", "loss.pool_size=3"],
        tmp_path,
    )  # RNG state included


@pytest.mark.parametrize(
    "extra,message",
    [
        (["loss.diffaugment=translation,flip"], "'flip'.*choose from color, translation, cutout"),
        (["loss.diffaugment=cutout", "model.method=pix2pix"], "not of pix2pix"),
    ],
)
def test_bad_settings_are_named(image_root, tiny_overrides, extra, message):
    with pytest.raises(UserError, match=message):
        validate(build_config([], [], tiny_overrides + [f"data.root={image_root}", *extra]))
