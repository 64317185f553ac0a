"""BiGAN / ALI (Donahue et al. 2017; Dumoulin et al. 2017), the CycleGAN paper's last baseline.

BiGAN learns a generator G: Z -> X with an encoder E: X -> Z, and one discriminator that tells data
pairs (x, E(x)) from generated pairs (G(z), z):

    min_{G,E} max_D  E_x[log D(x, E(x))] + E_z[log(1 - D(G(z), z))]                     (BiGAN Eq. 3)

Two readings of it are registered:

- `bigan`, the CycleGAN paper's (Sec. 5.1.2: "we implemented the same objective for mapping a source image
  x to a target image y"): the latent space is the source domain. G = G_A: A -> B, E = G_B: B -> A (both
  CycleGAN's ResNet generators), and D (CycleGAN's PatchGAN on the channel concatenation of an A and a B
  image) tells encoder pairs (G_B(b), b) from generator pairs (a, G_A(a)). Translation is G_A (A->B) and
  G_B (B->A), networks and training details as CycleGAN's, as in the paper's comparison.
- `bigan_latent`, the original vector-latent model, one per domain (E_A, G_A, D_A and E_B, G_B, D_B, DCGAN
  networks from nets/latent.py, z ~ U(-1, 1)), translating by G_B(E_A(x)) and G_A(E_B(y)). Nothing ties
  the two latent spaces to each other, so this shows what an unpaired latent model without sharing or
  cycles gives; the paper's numbers are for `bigan`.

With the least-squares loss the log terms become (D - 1)^2 and D^2, as everywhere in this package.
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import nn

from .. import losses as L
from ..errors import UserError
from .base import METHODS, Method, NetSpec
from .cogan import check_latent_size, resize, sample_latent

Tensor = torch.Tensor


@METHODS.register("bigan")
class BiGAN(Method):
    """Image-to-image BiGAN: G_A is the generator (z := a), G_B the encoder, D judges (a, b) pairs."""

    name = "bigan"
    generators = ("G_A", "G_B")
    discriminators = ("D",)
    directions = {"AtoB": "G_A", "BtoA": "G_B"}

    def specs(self) -> dict[str, NetSpec]:
        m, d = self.cfg.model, self.cfg.data
        g = dict(ngf=m.ngf, norm=m.norm, dropout=m.dropout)
        return {
            "G_A": NetSpec("generator", m.generator, dict(in_ch=d.channels_a, out_ch=d.channels_b, **g)),
            "G_B": NetSpec("generator", m.generator, dict(in_ch=d.channels_b, out_ch=d.channels_a, **g)),
            "D": NetSpec(
                "discriminator",
                m.discriminator,
                dict(in_ch=d.channels_a + d.channels_b, ndf=m.ndf, norm=m.norm, n_layers=m.n_layers_d),
            ),
        }

    def generator_loss(self, nets: nn.ModuleDict, batch: dict):
        """G_A: make D take generator pairs (a, G_A(a)) for encoder pairs; G_B: the reverse. The D input
        pairs go to the pool together, as one (B, 2 (C_A + C_B), H, W) tensor."""
        mode = self.cfg.loss.gan_mode
        real_a, real_b = batch["A"], batch["B"]
        gen_pair = torch.cat([real_a, nets["G_A"](real_a)], 1)  # (z, G(z))
        enc_pair = torch.cat([nets["G_B"](real_b), real_b], 1)  # (E(x), x)
        terms = {
            "G_A": L.gan_loss(nets["D"](gen_pair), True, mode),
            "G_B": L.gan_loss(nets["D"](enc_pair), False, mode),
        }
        return terms, {"D": torch.cat([gen_pair, enc_pair], 1).detach()}

    def discriminator_loss(self, nets: nn.ModuleDict, batch: dict, fakes: dict[str, Tensor]):
        """D: encoder pairs are BiGAN's "data" side (target 1), generator pairs its "generated" side (0); halved."""
        w, mode = self.cfg.loss, self.cfg.loss.gan_mode
        gen_pair, enc_pair = fakes["D"].chunk(2, dim=1)
        d = nets["D"]
        terms = {"D": L.discriminator_gan_loss(d(enc_pair), d(gen_pair), mode)}
        if mode == "wgangp":
            terms["D_gp"] = L.gradient_penalty(d, enc_pair, gen_pair, w.lambda_gp)
        return terms

    def samples(self, nets: nn.ModuleDict, batch: dict):
        return [[batch["A"], nets["G_A"](batch["A"])], [batch["B"], nets["G_B"](batch["B"])]]


@torch.no_grad()
def _translate_latent(encoder: nn.Module, generator: nn.Module, x: Tensor) -> Tensor:
    size = (encoder.image_size, encoder.image_size)
    return resize(generator(encoder(resize(x, size))), tuple(x.shape[-2:]))


@METHODS.register("bigan_latent")
class LatentBiGAN(Method):
    """Two vector-latent BiGANs (one per domain); translation decodes one domain's code with the other's G."""

    name = "bigan_latent"
    generators = ("G_A", "E_A", "G_B", "E_B")
    discriminators = ("D_A", "D_B")
    directions = {"AtoB": "G_B", "BtoA": "G_A"}  # the network that renders the output

    def specs(self) -> dict[str, NetSpec]:
        m, d = self.cfg.model, self.cfg.data
        size = check_latent_size(self.name, d.crop_size)
        if self.cfg.loss.gan_mode == "wgangp":
            raise UserError(
                "bigan_latent supports loss.gan_mode lsgan or vanilla (no gradient penalty on (x, z) pairs)"
            )
        specs = {}
        for dom, ch in (("A", d.channels_a), ("B", d.channels_b)):
            common = dict(latent_dim=m.latent_dim, size=size, norm=m.norm)
            specs[f"G_{dom}"] = NetSpec("latent", "latent_generator", dict(out_ch=ch, ngf=m.ngf, **common))
            specs[f"E_{dom}"] = NetSpec("latent", "latent_encoder", dict(in_ch=ch, ndf=m.ndf, **common))
            specs[f"D_{dom}"] = NetSpec("latent", "joint_discriminator", dict(in_ch=ch, ndf=m.ndf, **common))
        return specs

    def inference_nets(self) -> tuple[str, ...]:
        return ("E_A", "G_A", "E_B", "G_B")

    def io_channels(self, direction: str) -> tuple[int, int]:
        d = self.cfg.data
        return (d.channels_a, d.channels_b) if direction == "AtoB" else (d.channels_b, d.channels_a)

    def _split(self, packed: Tensor, domain: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Inverse of the packing in generator_loss: (G(z), z, x, E(x))."""
        ch = self.cfg.data.channels_a if domain == "A" else self.cfg.data.channels_b
        size, k = self.cfg.data.crop_size, self.cfg.model.latent_dim
        n_img = ch * size * size
        b = packed.shape[0]
        fake, z, real, code = packed.split([n_img, k, n_img, k], dim=1)
        return fake.view(b, ch, size, size), z, real.view(b, ch, size, size), code

    def generator_loss(self, nets: nn.ModuleDict, batch: dict):
        """Per domain: G_* wants D to call (G(z), z) a data pair, E_* wants (x, E(x)) called generated."""
        mode = self.cfg.loss.gan_mode
        terms: dict[str, Tensor] = {}
        fakes: dict[str, Tensor] = {}
        for dom in ("A", "B"):
            x = batch[dom]
            z = sample_latent(x.shape[0], self.cfg.model.latent_dim, x.device)
            fake, code = nets[f"G_{dom}"](z), nets[f"E_{dom}"](x)
            d = nets[f"D_{dom}"]
            terms[f"G_{dom}"] = L.gan_loss(d(fake, z), True, mode)
            terms[f"E_{dom}"] = L.gan_loss(d(x, code), False, mode)
            # both pairs of this domain, flattened into one row per sample for the history pool
            fakes[f"D_{dom}"] = torch.cat([fake.flatten(1), z, x.flatten(1), code], 1).detach()
        return terms, fakes

    def discriminator_loss(self, nets: nn.ModuleDict, batch: dict, fakes: dict[str, Tensor]):
        """D_*: data pairs (x, E(x)) target 1, generated pairs (G(z), z) target 0; halved."""
        mode = self.cfg.loss.gan_mode
        terms = {}
        for dom in ("A", "B"):
            fake, z, real, code = self._split(fakes[f"D_{dom}"], dom)
            d = nets[f"D_{dom}"]
            terms[f"D_{dom}"] = L.discriminator_gan_loss(d(real, code), d(fake, z), mode)
        return terms

    def translator(self, nets: nn.ModuleDict, direction: str) -> Callable[[Tensor], Tensor]:
        if direction not in self.directions:
            raise UserError(f"method {self.name} translates {', '.join(self.directions)}, not {direction!r}")
        source, target = ("A", "B") if direction == "AtoB" else ("B", "A")
        return functools.partial(_translate_latent, nets[f"E_{source}"], nets[f"G_{target}"])

    def samples(self, nets: nn.ModuleDict, batch: dict):
        """Rows: a | G_A(E_A(a)) (reconstruction) | G_B(E_A(a)) (translation); likewise for b."""
        rows = []
        for src, dst in (("A", "B"), ("B", "A")):
            x = batch[src]
            code = nets[f"E_{src}"](x)
            rows.append([x, nets[f"G_{src}"](code), nets[f"G_{dst}"](code)])
        return rows
