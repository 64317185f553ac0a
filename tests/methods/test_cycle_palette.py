"""Snapping translations into a label domain to its palette before the cycle back (loss.cycle_palette_a/b)."""

import pytest
import torch

from conftest import cyclegan_method_setup
from cyclegan import losses as L
from cyclegan.config import build_config
from cyclegan.errors import UserError
from cyclegan.methods import validate
from cyclegan.methods.extras import snap_to_palette
from cyclegan.metrics import FACADES_PALETTE, colors_to_labels


def test_snap_picks_the_nearest_colour_and_passes_the_gradient_through():
    palette = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    x = torch.tensor([[-0.9, -0.8, -1.0], [0.6, 0.3, -0.2], [0.1, 0.5, 0.9], [0.4, 0.4, 0.4]])  # 4 pixels
    x = x.T.reshape(1, 3, 2, 2).requires_grad_(True)
    y = snap_to_palette(x, palette)
    # distances to the three colours: pixel 3 (0.4, 0.4, 0.4): 2.92, 0.68, 0.88 -> colour 1
    want = palette[[0, 1, 2, 1]].T.reshape(1, 3, 2, 2)
    assert torch.equal(y, want)
    (y * torch.arange(12.0).view(1, 3, 2, 2)).sum().backward()
    assert torch.equal(x.grad, torch.arange(12.0).view(1, 3, 2, 2))  # straight-through: d y / d x = 1


def test_snap_agrees_with_the_metric_on_random_colours():
    rgb = torch.randint(0, 256, (1, 3, 16, 16), generator=torch.Generator().manual_seed(0))
    pal = torch.from_numpy(FACADES_PALETTE.astype("float32")) / 127.5 - 1
    snapped = snap_to_palette(rgb.float() / 127.5 - 1, pal)
    ids = colors_to_labels(rgb[0].permute(1, 2, 0).numpy().astype("uint8"), FACADES_PALETTE)
    assert torch.allclose(snapped[0].permute(1, 2, 0), pal[torch.from_numpy(ids)])


def test_snapped_values_are_exactly_palette_colours_in_bfloat16():
    """No rounding residue of x survives the straight-through trick, even at bfloat16's 8-bit mantissa."""
    pal = torch.from_numpy(FACADES_PALETTE.astype("float32")) / 127.5 - 1
    x = (torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1).bfloat16().requires_grad_()
    y = snap_to_palette(x, pal)
    ids = (x.detach().float().unsqueeze(1) - pal[None, :, :, None, None]).square().sum(2).argmin(1)
    assert y.dtype == torch.bfloat16 and torch.equal(y, pal.bfloat16()[ids].permute(0, 3, 1, 2))


def test_forward_cycle_sees_the_snapped_translation_and_the_discriminator_the_raw_one(image_root, tiny_overrides):
    method, nets, batch = cyclegan_method_setup(
        image_root, tiny_overrides, "loss.cycle_palette_b=facades", "loss.lambda_a=4"
    )
    terms, fakes = method.generator_loss(nets, batch)
    pal = torch.from_numpy(FACADES_PALETTE.astype("float32")) / 127.5 - 1
    with torch.no_grad():
        fake_b, fake_a = nets["G_A"](batch["A"]), nets["G_B"](batch["B"])
        ids = (fake_b.unsqueeze(1) - pal[None, :, :, None, None]).square().sum(2).argmin(1)
        snapped = pal[ids].permute(0, 3, 1, 2)
        want_a = 4 * L.cycle_loss(nets["G_B"](snapped), batch["A"])
        raw_a = 4 * L.cycle_loss(nets["G_B"](fake_b), batch["A"])
        want_b = 10 * L.cycle_loss(nets["G_A"](fake_a), batch["B"])  # domain A has no palette: untouched
    assert terms["cycle_A"].item() == pytest.approx(want_a.item(), rel=1e-6)
    assert abs(terms["cycle_A"].item() - raw_a.item()) > 1e-4
    assert terms["cycle_B"].item() == pytest.approx(want_b.item(), rel=1e-6)
    assert torch.equal(fakes["D_A"], fake_b)


def test_a_hidden_low_amplitude_signal_does_not_reach_the_cycle(image_root, tiny_overrides):
    """The point of the option: what G adds below half a palette step never reaches F."""
    method, _, _ = cyclegan_method_setup(image_root, tiny_overrides, "loss.cycle_palette_b=facades")
    pal = torch.from_numpy(FACADES_PALETTE.astype("float32")) / 127.5 - 1
    ids = torch.randint(0, 12, (1, 8, 8), generator=torch.Generator().manual_seed(1))
    clean = pal[ids].permute(0, 3, 1, 2)
    hidden = 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
    assert torch.equal(method.extras.cycle_view(clean + hidden, "b"), clean)
    assert torch.equal(method.extras.cycle_view(clean + hidden, "a"), clean + hidden)  # off for domain A


def test_gradient_still_reaches_the_forward_generator(image_root, tiny_overrides):
    method, nets, batch = cyclegan_method_setup(
        image_root,
        tiny_overrides,
        "loss.cycle_palette_b=facades",
        "loss.lambda_gan_a=0",
        "loss.lambda_gan_b=0",
        "loss.lambda_b=0",
    )
    terms, _ = method.generator_loss(nets, batch)
    terms["cycle_A"].backward()
    assert sum(p.grad.abs().sum() for p in nets["G_A"].parameters()) > 0


@pytest.mark.parametrize(
    "extra,message",
    [
        (["loss.cycle_palette_b=cityscapes"], "not a known palette"),
        (["loss.cycle_palette_a=facades", "model.method=pix2pix"], "not of pix2pix"),
        (["loss.cycle_palette_b=facades", "data.channels_b=1"], "domain B has 1 channels"),
    ],
)
def test_bad_settings_are_named(image_root, tiny_overrides, extra, message):
    with pytest.raises(UserError, match=message):
        validate(build_config([], [], tiny_overrides + [f"data.root={image_root}", *extra]))
