"""The CycleGAN objective (Zhu et al. 2017, Sec. 3), in the reference implementation's naming.

Paper -> code: G: X->Y is G_A (A->B), F: Y->X is G_B, D_Y is D_A (judges domain B), D_X is D_B.
Optional extras that are not part of the paper (DiffAugment, cycle noise, palette snapping, CyCADA's
semantic loss) live in methods/extras.py and are composed in from the config; none is on by default.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .. import losses as L
from ..errors import UserError
from .base import METHODS, Method, NetSpec, gan_weighted, halved_discriminator_loss, two_way_specs
from .extras import CycleExtras, check_extras
from .fused import SharedPass, samples_independent


def weighted(terms: dict[str, tuple[float, Callable[[], torch.Tensor]]]) -> dict[str, torch.Tensor]:
    """{name: weight * term()} in order, for the terms of nonzero weight only: a zero weight costs no pass."""
    return {name: weight * term() for name, (weight, term) in terms.items() if weight > 0}


@METHODS.register("cyclegan")
class CycleGAN(Method):
    """Full objective Eq. 3 plus the optional identity term; zero-weight terms cost no network pass."""

    name = "cyclegan"
    generators = ("G_A", "G_B")
    discriminators = ("D_A", "D_B")
    directions = {"AtoB": "G_A", "BtoA": "G_B"}

    def __init__(self, cfg):
        super().__init__(cfg)
        self.extras = CycleExtras(cfg)
        m = cfg.model
        # one call for G(x) and G(y), F(y) and F(x), D(real) and D(fake) (methods/fused.py); DiffAugment draws its
        # random transforms per call, so with it on D keeps its two calls
        self.fuse_g = cfg.train.fuse_passes and samples_independent(m.norm, m.dropout)
        self.fuse_d = self.fuse_g and not cfg.loss.diffaugment

    @classmethod
    def check(cls, cfg) -> None:
        check_extras(cfg)
        w, d = cfg.loss, cfg.data
        if w.lambda_identity > 0 and (w.lambda_a > 0 or w.lambda_b > 0) and d.channels_a != d.channels_b:
            raise UserError(
                f"loss.lambda_identity={w.lambda_identity} asks G_A to map a domain-B image to itself, "
                f"which needs as many channels in both domains (data.channels_a={d.channels_a}, "
                f"data.channels_b={d.channels_b}); set loss.lambda_identity=0"
            )

    def specs(self) -> dict[str, NetSpec]:
        return two_way_specs(self.cfg)

    def active_discriminators(self) -> tuple[str, ...]:
        return gan_weighted(self.cfg.loss)

    def generator_loss(self, nets: nn.ModuleDict, batch: dict):
        """Eq. 3 for G and F (D_X, D_Y frozen by the caller), each term weighted:

            G_A     = L_GAN(G, D_Y, X, Y)                       Eq. 1, generator side (LSGAN: (D_Y(G(x)) - 1)^2)
            G_B     = L_GAN(F, D_X, Y, X)
            cycle_A = lambda_A * ||F(G(x)) - x||_1              Eq. 2, forward cycle
            cycle_B = lambda_B * ||G(F(y)) - y||_1              Eq. 2, backward cycle
            idt_A   = lambda_idt * lambda_B * ||G(y) - y||_1    identity loss (Sec. 5.2, painting <-> photo)
            idt_B   = lambda_idt * lambda_A * ||F(x) - x||_1

        A zero weight skips its term and every pass only it needs (the ablations, Sec. 5.1.4). The extras
        (methods/extras.py) change what D and the cycle see and may add terms; with none set they are identities.
        Returns the terms and the fakes for D_Y (key D_A) and D_X (D_B)."""
        w, mode, ex = self.cfg.loss, self.cfg.loss.gan_mode, self.extras
        G, F, D_Y, D_X = nets["G_A"], nets["G_B"], nets["D_A"], nets["D_B"]
        x, y = batch["A"], batch["B"]  # (B, C, H, W) in [-1, 1]
        fuse = self.fuse_g and w.lambda_identity > 0 and w.lambda_a > 0 and w.lambda_b > 0 and x.shape == y.shape
        if fuse:
            G = SharedPass(G, x, y)  # G(x) and G(y) in one call
        fake_y = G(x) if w.lambda_gan_a > 0 or w.lambda_a > 0 or ex.needs_translations else None
        if fuse:  # F(y), F(x) and, when the cycle sees G(x) as it is, F(G(x)) in one call
            F = SharedPass(F, y, x, *([fake_y] if ex.cycle_sees_translation else []))
        fake_x = F(y) if w.lambda_gan_b > 0 or w.lambda_b > 0 or ex.needs_translations else None
        terms = weighted(
            {
                "G_A": (w.lambda_gan_a, lambda: L.generator_gan_loss(D_Y(ex.d_view(fake_y)), mode)),
                "G_B": (w.lambda_gan_b, lambda: L.generator_gan_loss(D_X(ex.d_view(fake_x)), mode)),
                "cycle_A": (w.lambda_a, lambda: L.cycle_loss(F(ex.cycle_view(fake_y, "b")), x)),
                "cycle_B": (w.lambda_b, lambda: L.cycle_loss(G(ex.cycle_view(fake_x, "a")), y)),
                "idt_A": (w.lambda_identity * w.lambda_b, lambda: L.identity_loss(G(y), y)),
                "idt_B": (w.lambda_identity * w.lambda_a, lambda: L.identity_loss(F(x), x)),
            }
        )
        terms.update(ex.added_terms(x, y, fake_y, fake_x))
        fakes = {
            d: fake.detach()
            for d, fake, lam in (("D_A", fake_y, w.lambda_gan_a), ("D_B", fake_x, w.lambda_gan_b))
            if lam > 0
        }
        return terms, fakes

    def discriminator_loss(self, nets: nn.ModuleDict, batch: dict, fakes: dict[str, torch.Tensor]):
        """Eq. 1, discriminator side, halved: D_A separates real B from (pooled) G_A(A); D_B likewise."""
        return halved_discriminator_loss(nets, batch, fakes, self.cfg.loss, view=self.extras.d_view, fused=self.fuse_d)

    def samples(self, nets: nn.ModuleDict, batch: dict):
        real_a, real_b = batch["A"], batch["B"]
        fake_b, fake_a = nets["G_A"](real_a), nets["G_B"](real_b)
        return [[real_a, fake_b, nets["G_B"](fake_b)], [real_b, fake_a, nets["G_A"](fake_a)]]
