"""CUT and FastCUT (Park, Efros, Zhang and Zhu 2020, "Contrastive Learning for Unpaired Image-to-Image
Translation"): one generator G: X -> Y, no inverse, no cycle. Content is kept by PatchNCE (cyclegan.patchnce)
between patches of x and of G(x), read from G's own layers (cyclegan.nets.encoder) through projection heads
H_l (cyclegan.nets.projection). Paper -> code: G is "G", D (judges domain Y) is "D", H is "H" (the
reference's netF).

  Eq. 1  L_GAN(G, D, X, Y), here LSGAN as in the paper's experiments (loss.gan_mode; weight lambda_gan_a).
  Eq. 5  L = L_GAN(G, D, X, Y) + lambda_X L_PatchNCE(G, H, X) + lambda_Y L_PatchNCE(G, H, Y)    (Eq. 3 each)
         CUT:     lambda_X = lambda_Y = 1 (the second term is the identity-like PatchNCE between y and G(y));
         FastCUT: lambda_X = 10, lambda_Y = 0, and flip-equivariance augmentation (Sec. 4): G's input is
                  flipped at random and its output's features, flipped back, must match the input's.
As the reference, with the Y term on the two NCE terms are averaged: NCE = NCE_Y = lambda_nce / 2 * Eq. 3;
without it, NCE = lambda_nce * Eq. 3. Eq. 3 is averaged over the layers (as the reference) and over the
patches (patchnce).

Differences from the reference implementation (github.com/taesungp/contrastive-unpaired-translation), none
of which changes the objective:
- the projection heads are built with the other networks from the known channel counts of the chosen layers,
  not on the first batch (cyclegan.nets.projection says why both give the same heads);
- the keys z_l are read off G's generation pass of [x, y] (the reference encodes x and y again, in passes
  that give the same values: the same input through the same layers; with dropout or batch norm they would
  draw new masks / see a smaller batch). Where flip-equivariance flipped that pass, x is encoded again;
- the step runs the generator phase before the discriminator phase, as every method here (the reference
  updates D first); D is trained on the same G(x), so only which D the G update sees moves by half a step;
- the ResNet generator and PatchGAN have no anti-aliased resampling (the reference's `--no_antialias`),
  so layers 0, 4, 8, 12, 16 read what the reference reads with that option (cyclegan.nets.encoder).
"""

from __future__ import annotations

import torch
from torch import nn

from .. import losses as L
from ..config import Config
from ..errors import UserError
from ..nets import create_generator
from ..nets.encoder import layer_channels, layer_features, layer_stack, parse_layers
from ..patchnce import patch_nce_loss
from .base import METHODS, Method, NetSpec


def check_config(cfg: Config) -> None:
    """The CUT/FastCUT settings, checked before any data is read (by `CUT.check`, from methods.validate)."""
    m, w, d = cfg.model, cfg.loss, cfg.data
    name = m.method
    try:
        layers = parse_layers(m.nce_layers)
    except ValueError as e:
        raise UserError(f"model.nce_layers={m.nce_layers!r}: {e}") from None
    if d.channels_a != d.channels_b:
        raise UserError(
            f"{name} reads G(x) with G's own layers, so both domains need the same number of channels "
            f"(data.channels_a={d.channels_a}, data.channels_b={d.channels_b})"
        )
    with torch.device("meta"):
        gen = create_generator(m.generator, in_ch=d.channels_a, out_ch=d.channels_b, ngf=m.ngf, norm=m.norm)
    try:
        depth = len(layer_stack(gen))
    except TypeError:
        raise UserError(
            f"{name} reads features from a ResNet generator's layers; model.generator={m.generator} is not "
            "one (use resnet_9blocks or resnet_6blocks)"
        ) from None
    if layers[-1] >= depth:
        raise UserError(f"model.nce_layers={m.nce_layers!r}: {m.generator} has layers 0 to {depth - 1}")
    for key, value in (("loss.nce_patches", w.nce_patches), ("model.nce_mlp_nc", m.nce_mlp_nc)):
        if value < 1:
            raise UserError(f"{key} must be at least 1, got {value}")
    if not w.nce_temperature > 0:
        raise UserError(f"loss.nce_temperature must be positive, got {w.nce_temperature}")
    if w.lambda_nce < 0 or w.lambda_gan_a < 0:
        raise UserError(
            f"loss.lambda_nce and loss.lambda_gan_a must be 0 or more, got {w.lambda_nce}, {w.lambda_gan_a}"
        )
    if w.lambda_nce == 0 and w.lambda_gan_a == 0:
        raise UserError(f"{name} needs loss.lambda_nce > 0 or loss.lambda_gan_a > 0 (both are 0: nothing to train)")
    if name == "fastcut" and (w.nce_idt or not w.flip_equivariance):
        raise UserError(
            "method fastcut is CUT without the PatchNCE term on Y and with flip equivariance "
            f"(loss.nce_idt=false, loss.flip_equivariance=true; here {w.nce_idt}, {w.flip_equivariance}): "
            "add the preset (--preset fastcut,...), or use method cut for other mixes"
        )


@METHODS.register("cut")
class CUT(Method):
    """Generator phase: G_GAN (lambda_gan_a * Eq. 1, G side), NCE and NCE_Y (Eq. 5's PatchNCE terms); the
    heads H are trained with G (by the generator optimizer, D frozen). Discriminator phase: D (Eq. 1,
    halved). A zero-weight term costs no pass; with loss.lambda_gan_a = 0, D is neither run nor trained.
    `data.direction` picks the source domain (AtoB: X = A, Y = B)."""

    name = "cut"
    generators = ("G", "H")
    discriminators = ("D",)

    @classmethod
    def check(cls, cfg: Config) -> None:
        super().check(cfg)  # CycleGAN's extras do not apply
        check_config(cfg)

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        direction = cfg.data.direction
        self.source, self.target = ("A", "B") if direction == "AtoB" else ("B", "A")
        self.directions = {direction: "G"}
        self.layers = parse_layers(cfg.model.nce_layers)
        self._head_channels: list[int] | None = None

    def _generator_spec(self) -> NetSpec:
        m, d = self.cfg.model, self.cfg.data
        ch_in, ch_out = (d.channels_a, d.channels_b) if self.source == "A" else (d.channels_b, d.channels_a)
        kwargs = dict(in_ch=ch_in, out_ch=ch_out, ngf=m.ngf, norm=m.norm, dropout=m.dropout)
        return NetSpec("generator", m.generator, kwargs)

    def head_channels(self) -> list[int]:
        """Channels of G's chosen layers, from a shape-only pass of G (what the reference's lazily built
        heads read off the first batch's features)."""
        if self._head_channels is None:
            spec = self._generator_spec()
            with torch.device("meta"):
                net = spec.build()
            self._head_channels = layer_channels(net, self.layers, spec.kwargs["in_ch"])
        return list(self._head_channels)

    def specs(self) -> dict[str, NetSpec]:
        m = self.cfg.model
        g = self._generator_spec()
        return {
            "G": g,
            "D": NetSpec(
                "discriminator",
                m.discriminator,
                dict(in_ch=g.kwargs["out_ch"], ndf=m.ndf, norm=m.norm, n_layers=m.n_layers_d),
            ),
            "H": NetSpec("projection", "mlp_sample", dict(in_channels=self.head_channels(), nc=m.nce_mlp_nc)),
        }

    def active_discriminators(self) -> tuple[str, ...]:
        return self.discriminators if self.cfg.loss.lambda_gan_a > 0 else ()

    def _flip(self) -> bool:
        """FastCUT's coin: flip this step's input (torch's CPU generator, which checkpoints save)."""
        return self.cfg.loss.flip_equivariance and bool(torch.rand(()) < 0.5)

    def patch_nce(self, head: nn.Module, queries: list[torch.Tensor], keys: list[torch.Tensor]) -> torch.Tensor:
        """Eq. 3 averaged over the layers: keys' positions sampled anew, the queries' taken at the same places."""
        w = self.cfg.loss
        images = keys[0].shape[0]
        with torch.no_grad():  # the keys get no gradient (patch_nce_loss detaches them): no graph for them
            z, ids = head(keys, w.nce_patches)
        z_hat, _ = head(queries, w.nce_patches, ids)
        losses = [patch_nce_loss(q, k, images=images, temperature=w.nce_temperature) for q, k in zip(z_hat, z)]
        return torch.stack(losses).mean()

    def generator_loss(self, nets: nn.ModuleDict, batch: dict):
        """Eq. 5's terms, each already weighted (see the class); the fake for D."""
        w = self.cfg.loss
        x, y = batch[self.source], batch[self.target]  # (B, C, H, W) in [-1, 1]
        n = x.shape[0]
        nce, idt = w.lambda_nce > 0, w.lambda_nce > 0 and w.nce_idt
        real = torch.cat([x, y]) if idt else x
        flipped = self._flip()
        if flipped:
            real = real.flip(3)
        keys = None
        if nce and not flipped:  # one pass gives G(real) and the keys' features
            fake, keys = layer_features(nets["G"], real, self.layers, full=True)
        else:
            fake = nets["G"](real)
        terms: dict[str, torch.Tensor] = {}
        fakes: dict[str, torch.Tensor] = {}
        if w.lambda_gan_a > 0:
            terms["G_GAN"] = w.lambda_gan_a * L.generator_gan_loss(nets["D"](fake[:n]), w.gan_mode)
            fakes["D"] = fake[:n].detach()
        if nce:
            if keys is None:  # flipped: the keys are the features of the unflipped input
                with torch.no_grad():
                    _, keys = layer_features(nets["G"], real.flip(3), self.layers)
            keys = [k.detach() for k in keys]  # PatchNCE detaches the keys: no gradient to G or H through them
            _, queries = layer_features(nets["G"], fake, self.layers)
            if flipped:
                queries = [q.flip(3) for q in queries]
            halves = {"NCE": slice(0, n), "NCE_Y": slice(n, None)} if idt else {"NCE": slice(0, n)}
            weight = w.lambda_nce * (0.5 if idt else 1.0)
            for term, part in halves.items():
                terms[term] = weight * self.patch_nce(nets["H"], [q[part] for q in queries], [k[part] for k in keys])
        return terms, fakes

    def discriminator_loss(self, nets: nn.ModuleDict, batch: dict, fakes: dict[str, torch.Tensor]):
        """Eq. 1, discriminator side, halved: D separates real y from G(x)."""
        w = self.cfg.loss
        d, real = nets["D"], batch[self.target]
        terms = {"D": L.discriminator_gan_loss(d(real), d(fakes["D"]), w.gan_mode)}
        if w.gan_mode == "wgangp":
            terms["D_gp"] = L.gradient_penalty(d, real, fakes["D"], w.lambda_gp)
        return terms

    def samples(self, nets: nn.ModuleDict, batch: dict):
        x, y = batch[self.source], batch[self.target]
        return [[x, nets["G"](x)], [y, nets["G"](y)]]


@METHODS.register("fastcut")
class FastCUT(CUT):
    """CUT without the PatchNCE term on Y, with lambda_X = 10 and flip-equivariance augmentation (CUT Sec. 4;
    preset `fastcut`; check_config refuses a fastcut run with the Y term or without the flips)."""

    name = "fastcut"
