"""The CycleGAN objective (Zhu et al. 2017, Sec. 3), in the reference implementation's naming.

Paper -> code: G: X->Y is G_A (A->B), F: Y->X is G_B, D_Y is D_A (judges domain B), D_X is D_B.

Optional, off by default: CyCADA's semantic consistency loss (Hoffman et al. 2018, Sec. 3), a fixed
classifier f (`loss.semantic_classifier`, trained on domain A's labels in CyCADA) asked to see the same
class in G(x) as in x, and in F(y) as in y. It is not part of CycleGAN; it fights the label flips that cycle
consistency allows (docs/evaluation.md, MNIST -> USPS).

Optional, off by default: Gaussian noise on the translation before the cycle back (`loss.cycle_noise`,
Bashkirova, Usman and Saenko 2019, "Adversarial Self-Defense for Cycle-Consistent GANs", Sec. 3). With
Eq. 2 alone, G can hide the input in a low-amplitude signal that F reads back (Chu et al. 2017,
"CycleGAN, a Master of Steganography"); noise of that amplitude makes the hidden signal useless, so the
cycle must go through the visible content. The noise touches only the cycle terms: the discriminators,
the pools and the identity loss see the clean translations.

Optional, off by default: snapping a translation into a colour-coded label domain to the nearest colour of
its palette before the cycle back (`loss.cycle_palette_a` / `_b`, e.g. "facades"). Label maps are flat
colours, so whatever G(x) holds besides palette colours is a channel where G can hide x for F without
the discriminator minding; snapped, F can only reconstruct x from the labels G drew. The gradient passes
the snap unchanged (straight-through), and like the noise it touches only the cycle terms. Not part of
CycleGAN; on facades at 64x64 it did not make G's label maps follow the photos (docs/evaluation.md).

Optional, off by default: differentiable augmentation of everything the discriminators see
(`loss.diffaugment`, e.g. "translation,cutout"; Zhao et al. 2020, see `cyclegan.augment`), for datasets of
a few hundred images where D otherwise memorises the real set. It changes D's inputs only, in both
phases; the cycle and identity terms see the plain translations.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import losses as L
from ..augment import diff_augment, parse_policy
from ..content import Classifier, load_classifier
from ..metrics.segmentation import PALETTES
from .base import METHODS, Method, NetSpec


def _noisy(x: torch.Tensor, std: float) -> torch.Tensor:
    """x + N(0, std^2) per element (the global RNG, which checkpoints save); x itself when std is 0."""
    return x + std * torch.randn_like(x) if std > 0 else x


def snap_to_palette(x: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Each pixel of x (B, C, H, W) replaced by its nearest colour of `palette` (K, C), both in x's units
    (Euclidean, as `metrics.colors_to_labels`); the gradient is passed through unchanged (straight-through,
    written snap(x) + (x - x.detach()) so that the value is the palette colour exactly, in any precision)."""
    pal = palette.to(device=x.device, dtype=torch.float32)
    dist = (x.detach().float().unsqueeze(1) - pal[None, :, :, None, None]).square().sum(2)  # (B, K, H, W)
    snapped = pal[dist.argmin(1)].permute(0, 3, 1, 2).to(x.dtype)  # (B, C, H, W)
    return snapped + (x - x.detach())


def _palette_tensor(name: str) -> torch.Tensor | None:
    """A named palette (uint8 RGB) in the networks' [-1, 1] units; None for "" (off)."""
    if not name:
        return None
    return torch.from_numpy(PALETTES[name].astype("float32")) / 127.5 - 1


@METHODS.register("cyclegan")
class CycleGAN(Method):
    """Full objective Eq. 3 plus the optional identity term; zero-weight terms cost no network pass."""

    name = "cyclegan"
    generators = ("G_A", "G_B")
    discriminators = ("D_A", "D_B")
    directions = {"AtoB": "G_A", "BtoA": "G_B"}

    def __init__(self, cfg):
        super().__init__(cfg)
        self._classifier: Classifier | None = None
        self._palettes = {d: _palette_tensor(getattr(cfg.loss, f"cycle_palette_{d}")) for d in ("a", "b")}
        self._augment = parse_policy(cfg.loss.diffaugment)

    def seen_by_d(self, x: torch.Tensor) -> torch.Tensor:
        """An image as the discriminators see it: through DiffAugment's transforms when `loss.diffaugment` is set."""
        return diff_augment(x, self._augment)

    def cycle_input(self, fake: torch.Tensor, domain: str) -> torch.Tensor:
        """What the cycle back sees of a translation into `domain`: snapped to its palette (when set), then noisy."""
        palette = self._palettes[domain]
        return _noisy(fake if palette is None else snap_to_palette(fake, palette), self.cfg.loss.cycle_noise)

    def semantic_classifier(self, device: torch.device) -> Classifier:
        """The fixed classifier of the semantic loss, loaded once (on the training device), frozen, in eval mode."""
        if self._classifier is None:
            self._classifier = load_classifier(self.cfg.loss.semantic_classifier, device)
            self._classifier.net.requires_grad_(False)
        return self._classifier

    def specs(self) -> dict[str, NetSpec]:
        m, d = self.cfg.model, self.cfg.data
        g = dict(ngf=m.ngf, norm=m.norm, dropout=m.dropout)
        dk = dict(ndf=m.ndf, norm=m.norm, n_layers=m.n_layers_d)
        return {
            "G_A": NetSpec("generator", m.generator, dict(in_ch=d.channels_a, out_ch=d.channels_b, **g)),
            "G_B": NetSpec("generator", m.generator, dict(in_ch=d.channels_b, out_ch=d.channels_a, **g)),
            "D_A": NetSpec("discriminator", m.discriminator, dict(in_ch=d.channels_b, **dk)),
            "D_B": NetSpec("discriminator", m.discriminator, dict(in_ch=d.channels_a, **dk)),
        }

    def active_discriminators(self) -> tuple[str, ...]:
        w = self.cfg.loss
        return tuple(n for n, lam in (("D_A", w.lambda_gan_a), ("D_B", w.lambda_gan_b)) if lam > 0)

    def generator_loss(self, nets: nn.ModuleDict, batch: dict):
        """Terms of Eq. 3 for G and F (D frozen by the caller), each already multiplied by its weight:
        G_A/G_B = L_GAN (Eq. 1, generator side), cycle_A/cycle_B = lambda * Eq. 2's two halves,
        idt_A/idt_B = lambda_identity * lambda * identity loss, sem_A/sem_B = lambda_semantic * semantic
        consistency of G(x) and F(y) (CyCADA; only when loss.lambda_semantic > 0)."""
        w, mode = self.cfg.loss, self.cfg.loss.gan_mode
        real_a, real_b = batch["A"], batch["B"]  # (B, C, H, W) in [-1, 1]
        terms: dict[str, torch.Tensor] = {}
        fakes: dict[str, torch.Tensor] = {}
        need_fake_b = w.lambda_gan_a > 0 or w.lambda_a > 0 or w.lambda_semantic > 0
        need_fake_a = w.lambda_gan_b > 0 or w.lambda_b > 0 or w.lambda_semantic > 0
        fake_b = nets["G_A"](real_a) if need_fake_b else None
        fake_a = nets["G_B"](real_b) if need_fake_a else None
        if w.lambda_gan_a > 0:
            terms["G_A"] = w.lambda_gan_a * L.generator_gan_loss(nets["D_A"](self.seen_by_d(fake_b)), mode)
            fakes["D_A"] = fake_b.detach()
        if w.lambda_gan_b > 0:
            terms["G_B"] = w.lambda_gan_b * L.generator_gan_loss(nets["D_B"](self.seen_by_d(fake_a)), mode)
            fakes["D_B"] = fake_a.detach()
        if w.lambda_a > 0:
            terms["cycle_A"] = w.lambda_a * L.cycle_loss(nets["G_B"](self.cycle_input(fake_b, "b")), real_a)
        if w.lambda_b > 0:
            terms["cycle_B"] = w.lambda_b * L.cycle_loss(nets["G_A"](self.cycle_input(fake_a, "a")), real_b)
        if w.lambda_identity > 0:
            if w.lambda_b > 0:  # G_A should map a real B to itself
                terms["idt_A"] = w.lambda_identity * w.lambda_b * L.identity_loss(nets["G_A"](real_b), real_b)
            if w.lambda_a > 0:
                terms["idt_B"] = w.lambda_identity * w.lambda_a * L.identity_loss(nets["G_B"](real_a), real_a)
        if w.lambda_semantic > 0:
            f = self.semantic_classifier(real_a.device)
            with torch.no_grad():
                source_a, source_b = f.logits(real_a), f.logits(real_b)
            terms["sem_A"] = w.lambda_semantic * L.semantic_loss(f.logits(fake_b), source_a)
            terms["sem_B"] = w.lambda_semantic * L.semantic_loss(f.logits(fake_a), source_b)
        return terms, fakes

    def discriminator_loss(self, nets: nn.ModuleDict, batch: dict, fakes: dict[str, torch.Tensor]):
        """Eq. 1, discriminator side, halved: D_A separates real B from (pooled) G_A(A); D_B likewise
        (both through DiffAugment when it is on, each image with its own random draw)."""
        w, mode = self.cfg.loss, self.cfg.loss.gan_mode
        terms = {}
        for name, real in (("D_A", batch["B"]), ("D_B", batch["A"])):
            if name not in fakes:
                continue
            d, real, fake = nets[name], self.seen_by_d(real), self.seen_by_d(fakes[name])
            terms[name] = L.discriminator_gan_loss(d(real), d(fake), mode)
            if mode == "wgangp":
                terms[name + "_gp"] = L.gradient_penalty(d, real, fake, w.lambda_gp)
        return terms

    def samples(self, nets: nn.ModuleDict, batch: dict):
        real_a, real_b = batch["A"], batch["B"]
        fake_b, fake_a = nets["G_A"](real_a), nets["G_B"](real_b)
        return [[real_a, fake_b, nets["G_B"](fake_b)], [real_b, fake_a, nets["G_A"](fake_a)]]
