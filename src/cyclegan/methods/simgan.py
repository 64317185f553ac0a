"""SimGAN (Shrivastava et al. 2017), the CycleGAN paper's first baseline (Sec. 5.1.2, Tables 1-3).

One generator per direction, trained on its own: an adversarial loss plus a self-regularisation term
that keeps the output close to the input,

    L(G) = L_GAN(G, D_Y, X, Y) + lambda_self_reg * ||G(x) - x||_1        (SimGAN Eq. 4, L1 per pixel)

with no inverse mapping and no cycle. D is trained on a history of refined images (the image pool,
SimGAN Sec. 2.3, which CycleGAN adopted). As in the CycleGAN paper's comparison, the networks, the
LSGAN loss, the optimiser and the schedule are CycleGAN's; both directions are trained in one run as two
independent models (G_A with D_A, G_B with D_B; `loss.lambda_gan_b=0` trains only A->B). The paper does
not state its self-regularisation weight; the default, 10, is the weight CycleGAN gives its own L1 terms
(docs/baselines.md).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import losses as L
from ..errors import UserError
from .base import METHODS, Method, NetSpec, gan_weighted, halved_discriminator_loss, two_way_specs


@METHODS.register("simgan")
class SimGAN(Method):
    """CycleGAN's networks and discriminator phase; generator phase = adversarial + lambda ||G(x) - x||_1."""

    name = "simgan"
    generators = ("G_A", "G_B")
    discriminators = ("D_A", "D_B")
    directions = {"AtoB": "G_A", "BtoA": "G_B"}

    def specs(self) -> dict[str, NetSpec]:
        d = self.cfg.data
        if d.channels_a != d.channels_b:
            raise UserError(
                f"{self.name} compares G(x) with x, so both domains need the same number of channels "
                f"(data.channels_a={d.channels_a}, data.channels_b={d.channels_b})"
            )
        return two_way_specs(self.cfg)

    def active_discriminators(self) -> tuple[str, ...]:
        return gan_weighted(self.cfg.loss)

    def self_regularization(self, mapped: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """||G(x) - x||_1, mean over pixels (SimGAN's psi is the identity)."""
        return L.identity_loss(mapped, source)

    def generator_loss(self, nets: nn.ModuleDict, batch: dict):
        """Per direction with a nonzero adversarial weight: G_A/G_B = lambda_gan * L_GAN, reg_A/reg_B =
        lambda_self_reg * self-regularisation; fakes for D_A/D_B."""
        w, mode = self.cfg.loss, self.cfg.loss.gan_mode
        terms: dict[str, torch.Tensor] = {}
        fakes: dict[str, torch.Tensor] = {}
        for g, d, suffix, source, lam in (
            ("G_A", "D_A", "A", batch["A"], w.lambda_gan_a),
            ("G_B", "D_B", "B", batch["B"], w.lambda_gan_b),
        ):
            if lam <= 0:
                continue
            fake = nets[g](source)  # (B, C, H, W) in [-1, 1]
            terms[g] = lam * L.generator_gan_loss(nets[d](fake), mode)
            if w.lambda_self_reg > 0:
                terms[f"reg_{suffix}"] = w.lambda_self_reg * self.self_regularization(fake, source)
            fakes[d] = fake.detach()
        return terms, fakes

    def discriminator_loss(self, nets: nn.ModuleDict, batch: dict, fakes: dict[str, torch.Tensor]):
        """SimGAN's D on refined (pooled) against real images: CycleGAN's halved Eq. 1, per direction."""
        return halved_discriminator_loss(nets, batch, fakes, self.cfg.loss)

    def samples(self, nets: nn.ModuleDict, batch: dict):
        return [[batch["A"], nets["G_A"](batch["A"])], [batch["B"], nets["G_B"](batch["B"])]]
