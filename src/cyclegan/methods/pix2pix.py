"""pix2pix (Isola et al. 2017): a conditional GAN trained on paired images, CycleGAN's upper bound.

Objective (pix2pix Eq. 4): G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G), where
  L_cGAN(G, D) = E_{x,y}[log D(x, y)] + E_x[log(1 - D(x, G(x)))]   (Eq. 1; D sees input and output,
                 concatenated along channels, so it judges whether the output fits the input),
  L_L1(G)      = E_{x,y}[||y - G(x)||_1]                           (Eq. 3), lambda = 100.
The generator minimises -log D(x, G(x)) (vanilla GAN, BCE on logits); D's objective is halved as in
CycleGAN. The reference's defaults (preset "pix2pix"): U-Net 256 with dropout and batch norm, 70x70
PatchGAN on input_nc + output_nc channels, no image pool, Adam 2e-4 / 0.5, batch 1.

`data.direction` picks the input: AtoB maps A to B, BtoA maps B to A (facades: A = photo, B = labels,
so the pix2pix paper's labels -> photo is BtoA). A model translates only the direction it was trained for.

At test time the reference's test.py keeps the networks in train mode (dropout as noise, batch statistics)
unless `--eval` is given: `test_train_mode = True` makes that the default of `cyclegan translate`, and
`--eval-mode` switches to running statistics without dropout.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses as L
from ..errors import UserError
from .base import METHODS, Method, NetSpec

DIRECTIONS = ("AtoB", "BtoA")


@METHODS.register("pix2pix")
class Pix2Pix(Method):
    """G: input -> target, D: (input, output) pairs -> real/fake patches. Loss terms: G_GAN (weight
    loss.lambda_gan_a), G_L1 (weight loss.lambda_l1), D (halved). A zero-weight term is not computed;
    with loss.lambda_gan_a = 0 (the paper's "L1 only") D is neither run nor trained."""

    name = "pix2pix"
    generators = ("G",)
    discriminators = ("D",)
    test_train_mode = True  # the reference's test.py default: dropout on, batch statistics

    def __init__(self, cfg):
        super().__init__(cfg)
        direction = cfg.data.direction
        if direction not in DIRECTIONS:
            raise UserError(f"data.direction must be AtoB or BtoA, not {direction!r}")
        if cfg.loss.lambda_gan_a <= 0 and cfg.loss.lambda_l1 <= 0:
            raise UserError("pix2pix needs loss.lambda_l1 > 0 or loss.lambda_gan_a > 0 (both are 0: nothing to train)")
        self.source, self.target = ("A", "B") if direction == "AtoB" else ("B", "A")
        self.directions = {direction: "G"}

    @staticmethod
    def build_dataset(cfg):
        """Paired data (side-by-side files or two folders with matching names), see data/aligned.py."""
        from ..data.aligned import build_aligned

        return build_aligned(cfg.data, cfg.train.seed)

    def channels(self) -> tuple[int, int]:
        """(input, output) channels of G."""
        d = self.cfg.data
        return (d.channels_a, d.channels_b) if self.source == "A" else (d.channels_b, d.channels_a)

    def specs(self) -> dict[str, NetSpec]:
        m = self.cfg.model
        in_ch, out_ch = self.channels()
        return {
            "G": NetSpec(
                "generator", m.generator, dict(in_ch=in_ch, out_ch=out_ch, ngf=m.ngf, norm=m.norm, dropout=m.dropout)
            ),
            "D": NetSpec(
                "discriminator",
                m.discriminator,
                dict(in_ch=in_ch + out_ch, ndf=m.ndf, norm=m.norm, n_layers=m.n_layers_d),
            ),
        }

    def active_discriminators(self) -> tuple[str, ...]:
        return ("D",) if self.cfg.loss.lambda_gan_a > 0 else ()

    def generator_loss(self, nets: nn.ModuleDict, batch: dict):
        """G_GAN = lambda_gan * -log D(x, G(x)) (Eq. 1, generator side); G_L1 = lambda_L1 * ||y - G(x)||_1
        (Eq. 3). The fake pair (x, G(x)) goes to the discriminator phase."""
        w = self.cfg.loss
        real_in, real_out = batch[self.source], batch[self.target]  # (B, C, H, W) in [-1, 1]
        fake = nets["G"](real_in)
        terms: dict[str, torch.Tensor] = {}
        fakes: dict[str, torch.Tensor] = {}
        if w.lambda_gan_a > 0:
            fake_pair = torch.cat([real_in, fake], 1)
            terms["G_GAN"] = w.lambda_gan_a * L.generator_gan_loss(nets["D"](fake_pair), w.gan_mode)
            fakes["D"] = fake_pair.detach()
        if w.lambda_l1 > 0:
            terms["G_L1"] = w.lambda_l1 * F.l1_loss(fake.float(), real_out.float())
        return terms, fakes

    def discriminator_loss(self, nets: nn.ModuleDict, batch: dict, fakes: dict[str, torch.Tensor]):
        """Eq. 1, discriminator side, halved: D separates real pairs (x, y) from (pooled) fake pairs (x, G(x))."""
        w = self.cfg.loss
        if "D" not in fakes:
            return {}
        d = nets["D"]
        real_pair = torch.cat([batch[self.source], batch[self.target]], 1)
        terms = {"D": L.discriminator_gan_loss(d(real_pair), d(fakes["D"]), w.gan_mode)}
        if w.gan_mode == "wgangp":
            terms["D_gp"] = L.gradient_penalty(d, real_pair, fakes["D"], w.lambda_gp)
        return terms

    def samples(self, nets: nn.ModuleDict, batch: dict):
        real_in = batch[self.source]
        return [[real_in, nets["G"](real_in), batch[self.target]]]
