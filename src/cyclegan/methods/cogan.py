"""CoGAN (Liu and Tuzel 2016), the CycleGAN paper's latent-variable baseline (Sec. 5.1.2, Tables 1-3).

Two GANs learn the joint distribution of the two domains from unpaired images by sharing weights: the
generators G_X(z), G_Y(z) share their first layers and the discriminators D_X, D_Y their last ones
(nets/latent.py, `cogan`). Objective (CoGAN Eq. 4), here with the configured GAN loss:

    min_G max_D  L_GAN(G_X(z), D_X, X) + L_GAN(G_Y(z), D_Y, Y),   z ~ U(-1, 1)^latent_dim

CoGAN cannot translate a given image directly. As in the CycleGAN paper, translation X -> Y searches the
latent z whose G_X(z) reproduces x (Adam on z for model.latent_steps steps, mean squared error, z kept
in the prior's support [-1, 1], the best z seen per image kept), then renders G_Y(z). The networks work at
one size (data.crop_size); inputs are resized to it and outputs back to the input's size.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import losses as L
from ..errors import UserError
from ..nets.latent import levels
from .base import METHODS, Method, NetSpec

Tensor = torch.Tensor


def check_latent_size(method: str, size: int) -> int:
    """The crop size, if latent networks can be built for it; a UserError naming the fix otherwise."""
    try:
        levels(size)
    except ValueError:
        raise UserError(
            f"{method} generates images of data.crop_size pixels, which must be a power of two "
            f"(8 or more, e.g. 64, 128 or 256), got {size}"
        ) from None
    return size


def sample_latent(n: int, dim: int, device, generator: torch.Generator | None = None) -> Tensor:
    """z ~ U(-1, 1)^dim, (n, dim) (CoGAN's and BiGAN's prior)."""
    return torch.rand(n, dim, generator=generator, device="cpu" if generator is not None else device).to(device) * 2 - 1


def resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of (B, C, h, w) to size (antialiased when shrinking); a no-op at the same size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def latent_search(
    generate: Callable[[Tensor], Tensor], target: Tensor, latent_dim: int, steps: int, lr: float = 0.05
) -> tuple[Tensor, Tensor]:
    """Find z with generate(z) ~ target: Adam on z from z = 0 (the prior's mean) for `steps` steps,
    minimising the per-image mean squared error, with z clamped to [-1, 1] after each step.

    Returns (z (B, latent_dim) with the lowest error seen per image, errors (steps + 1, B): the error of
    each image before each step and after the last). Only z gets gradients; the networks' parameters and
    their .grad are untouched, and it runs even under an outer torch.no_grad().
    """
    b = target.shape[0]
    target = target.detach()
    with torch.enable_grad():
        z = torch.zeros(b, latent_dim, device=target.device, requires_grad=True)
        opt = torch.optim.Adam([z], lr=lr)
        best_z, best_err = z.detach().clone(), torch.full((b,), float("inf"), device=target.device)
        history = []
        for step in range(steps + 1):
            err = (generate(z).float() - target.float()).pow(2).flatten(1).mean(1)  # (B,)
            history.append(err.detach())
            better = err.detach() < best_err
            best_err = torch.where(better, err.detach(), best_err)
            best_z[better] = z.detach()[better]
            if step == steps:
                break
            (grad,) = torch.autograd.grad(err.sum(), z)
            z.grad = grad
            opt.step()
            with torch.no_grad():
                z.clamp_(-1.0, 1.0)
    return best_z, torch.stack(history)


@torch.no_grad()
def _translate(G: nn.Module, source: str, target: str, steps: int, lr: float, x: Tensor) -> Tensor:
    """(B, C_source, H, W) -> (B, C_target, H, W): latent search on G's `source` branch, render `target`."""
    size = (G.image_size, G.image_size)
    z, _ = latent_search(lambda z: G.generate(z, source), resize(x, size), G.latent_dim, steps, lr)
    return resize(G.generate(z, target), tuple(x.shape[-2:]))


@METHODS.register("cogan")
class CoGAN(Method):
    """Coupled generators "G" (z -> x_A, x_B) and discriminators "D", trained as two tied GANs."""

    name = "cogan"
    generators = ("G",)
    discriminators = ("D",)
    directions = {"AtoB": "G", "BtoA": "G"}

    def specs(self) -> dict[str, NetSpec]:
        m, d = self.cfg.model, self.cfg.data
        size = check_latent_size(self.name, d.crop_size)
        return {
            "G": NetSpec(
                "latent",
                "cogan_generator",
                dict(
                    latent_dim=m.latent_dim,
                    out_ch_a=d.channels_a,
                    out_ch_b=d.channels_b,
                    size=size,
                    ngf=m.ngf,
                    norm=m.norm,
                ),
            ),
            "D": NetSpec(
                "latent",
                "cogan_discriminator",
                dict(in_ch_a=d.channels_a, in_ch_b=d.channels_b, size=size, ndf=m.ndf, norm=m.norm),
            ),
        }

    def io_channels(self, direction: str) -> tuple[int, int]:
        d = self.cfg.data
        return (d.channels_a, d.channels_b) if direction == "AtoB" else (d.channels_b, d.channels_a)

    def generator_loss(self, nets: nn.ModuleDict, batch: dict):
        """G_A / G_B: each generator's side of L_GAN on a shared z; fakes for D as one (B, C_A + C_B, H, W)
        tensor, so the pair made from one z goes through the history pool together."""
        mode = self.cfg.loss.gan_mode
        real_a = batch["A"]
        z = sample_latent(real_a.shape[0], self.cfg.model.latent_dim, real_a.device)
        fake_a, fake_b = nets["G"](z)
        terms = {
            "G_A": L.generator_gan_loss(nets["D"](fake_a, "A"), mode),
            "G_B": L.generator_gan_loss(nets["D"](fake_b, "B"), mode),
        }
        return terms, {"D": torch.cat([fake_a, fake_b], 1).detach()}

    def discriminator_loss(self, nets: nn.ModuleDict, batch: dict, fakes: dict[str, Tensor]):
        """D_A / D_B: halved L_GAN of each domain's discriminator (their last layers are one module)."""
        w, mode = self.cfg.loss, self.cfg.loss.gan_mode
        c_a = self.cfg.data.channels_a
        pair = fakes["D"]
        terms = {}
        for domain, real, fake in (("A", batch["A"], pair[:, :c_a]), ("B", batch["B"], pair[:, c_a:])):
            d = functools.partial(nets["D"], domain=domain)
            terms[f"D_{domain}"] = L.discriminator_gan_loss(d(real), d(fake), mode)
            if mode == "wgangp":
                terms[f"D_{domain}_gp"] = L.gradient_penalty(d, real, fake, w.lambda_gp)
        return terms

    def translator(self, nets: nn.ModuleDict, direction: str) -> Callable[[Tensor], Tensor]:
        if direction not in self.directions:
            raise UserError(f"method {self.name} translates {', '.join(self.directions)}, not {direction!r}")
        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        m = self.cfg.model
        return functools.partial(_translate, nets["G"], source, target, m.latent_steps, m.latent_lr)

    def samples(self, nets: nn.ModuleDict, batch: dict):
        """A fixed set of z (same in every grid): row 1 G_A(z), row 2 G_B(z)."""
        n = batch["A"].shape[0]
        z = sample_latent(n, self.cfg.model.latent_dim, batch["A"].device, torch.Generator().manual_seed(0))
        fake_a, fake_b = nets["G"](z)
        return [[fake_a], [fake_b]]
