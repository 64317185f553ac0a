"""Optional additions to the CycleGAN objective, off by default (none is part of the paper).

Each is a separate, named piece that `CycleExtras` composes in from `cfg.loss`; with none configured every
view below is the identity and no term is added, so `CycleGAN.generator_loss` computes Eq. 3 as published.

Views of an image (they change what a network sees, not the loss's form):
- `snap_to_palette`: a translation into a colour-coded label domain snapped to its palette's nearest colours
  before the cycle back (`loss.cycle_palette_a` / `_b`, e.g. "facades"). Label maps are flat colours, so
  whatever G(x) holds besides palette colours is a channel where G can hide x for F without D minding;
  snapped, F can only reconstruct x from the labels G drew. The gradient passes the snap unchanged.
- `add_noise`: Gaussian noise on the translation before the cycle back (`loss.cycle_noise`; Bashkirova,
  Usman and Saenko 2019, Sec. 3). With Eq. 2 alone, G can hide the input in a low-amplitude signal that F
  reads back (Chu et al. 2017); noise of that amplitude makes the hidden signal useless.
  Both touch only the cycle terms: the discriminators, the pools and the identity loss see clean images.
- DiffAugment (`loss.diffaugment`, e.g. "translation,cutout"; Zhao et al. 2020, `cyclegan.augment`) on
  everything the discriminators see, real and fake, in both phases, for datasets of a few hundred images.

Added terms (`AddedTerm`: a pure function of x, y, G(x), F(y) and a weight):
- `SemanticConsistency`: CyCADA's semantic consistency loss (Hoffman et al. 2018, Sec. 3): a fixed classifier f
  (`loss.semantic_classifier`) asked to see the same class in G(x) as in x and in F(y) as in y, weighted by
  `loss.lambda_semantic`. It fights the label flips that cycle consistency allows (docs/evaluation.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import losses as L
from ..augment import diff_augment, parse_policy
from ..config import Config
from ..content import Classifier, load_classifier
from ..errors import UserError
from ..metrics.segmentation import PALETTES

Tensor = torch.Tensor


def add_noise(x: Tensor, std: float) -> Tensor:
    """x + N(0, std^2) per element (the global RNG, which checkpoints save); x itself when std is 0."""
    return x + std * torch.randn_like(x) if std > 0 else x


def snap_to_palette(x: Tensor, palette: Tensor) -> Tensor:
    """Each pixel of x (B, C, H, W) replaced by its nearest colour of `palette` (K, C), both in x's units
    (Euclidean, as `metrics.colors_to_labels`); the gradient is passed through unchanged (straight-through,
    written snap(x) + (x - x.detach()) so that the value is the palette colour exactly, in any precision)."""
    pal = palette.to(device=x.device, dtype=torch.float32)
    dist = (x.detach().float().unsqueeze(1) - pal[None, :, :, None, None]).square().sum(2)  # (B, K, H, W)
    snapped = pal[dist.argmin(1)].permute(0, 3, 1, 2).to(x.dtype)  # (B, C, H, W)
    return snapped + (x - x.detach())


def palette_tensor(name: str) -> Tensor | None:
    """A named palette (uint8 RGB) in the networks' [-1, 1] units; None for "" (off)."""
    if not name:
        return None
    return torch.from_numpy(PALETTES[name].astype("float32")) / 127.5 - 1


class SemanticConsistency:
    """CyCADA's semantic consistency, both directions, unweighted: sem_A = CE(f(G(x)), argmax f(x)), sem_B likewise
    for F(y) and y. f is a fixed classifier (loaded once, on the training device, frozen, in eval mode); its
    reading of the sources carries no gradient."""

    def __init__(self, classifier_path: str):
        self.path = classifier_path
        self._classifier: Classifier | None = None

    def classifier(self, device: torch.device) -> Classifier:
        if self._classifier is None:
            self._classifier = load_classifier(self.path, device)
            self._classifier.net.requires_grad_(False)
        return self._classifier

    def __call__(self, x: Tensor, y: Tensor, fake_y: Tensor, fake_x: Tensor) -> dict[str, Tensor]:
        f = self.classifier(x.device)
        with torch.no_grad():
            source_a, source_b = f.logits(x), f.logits(y)
        return {
            "sem_A": L.semantic_loss(f.logits(fake_y), source_a),
            "sem_B": L.semantic_loss(f.logits(fake_x), source_b),
        }


@dataclass(frozen=True)
class AddedTerm:
    """A loss term added to Eq. 3's: `fn(x, y, fake_y, fake_x) -> {name: value}`, each value times `weight`."""

    weight: float
    fn: Callable[[Tensor, Tensor, Tensor, Tensor], dict[str, Tensor]]


class CycleExtras:
    """The extras configured in `cfg.loss`, composed: `d_view` and `cycle_view` are identities and `terms` is
    empty when none is set. `terms` is a plain list: code may append an `AddedTerm` of its own."""

    def __init__(self, cfg: Config):
        w = cfg.loss
        self.noise = w.cycle_noise
        self.palettes = {d: palette_tensor(getattr(w, f"cycle_palette_{d}")) for d in ("a", "b")}
        self.augment = parse_policy(w.diffaugment)
        self.terms: list[AddedTerm] = []
        if w.lambda_semantic > 0:
            self.terms.append(AddedTerm(w.lambda_semantic, SemanticConsistency(w.semantic_classifier)))

    @property
    def needs_translations(self) -> bool:
        """Whether an added term reads G(x) and F(y) (so they are computed even when Eq. 3 would skip them)."""
        return bool(self.terms)

    @property
    def cycle_sees_translation(self) -> bool:
        """Whether `cycle_view` hands back the translation itself (no palette, no noise): then F(G(x)) can run
        in the same call as F(y) and F(x) (methods/fused.py)."""
        return self.noise == 0 and all(p is None for p in self.palettes.values())

    def d_view(self, x: Tensor) -> Tensor:
        """An image as the discriminators see it: through DiffAugment's transforms when it is on."""
        return diff_augment(x, self.augment)

    def cycle_view(self, fake: Tensor, domain: str) -> Tensor:
        """What the cycle back sees of a translation into `domain` ("a" or "b"): snapped to its palette (when
        set), then noisy (when set)."""
        palette = self.palettes[domain]
        return add_noise(fake if palette is None else snap_to_palette(fake, palette), self.noise)

    def added_terms(self, x: Tensor, y: Tensor, fake_y: Tensor, fake_x: Tensor) -> dict[str, Tensor]:
        """Every added term, weighted, in order."""
        return {
            name: term.weight * value for term in self.terms for name, value in term.fn(x, y, fake_y, fake_x).items()
        }


def extras_in_use(cfg: Config) -> list[str]:
    """The extras that `cfg` turns on, as the settings that name them."""
    w = cfg.loss
    on = [
        ("loss.cycle_noise", w.cycle_noise > 0),
        ("loss.cycle_palette_a", bool(w.cycle_palette_a)),
        ("loss.cycle_palette_b", bool(w.cycle_palette_b)),
        ("loss.diffaugment", bool(w.diffaugment)),
        ("loss.lambda_semantic", w.lambda_semantic > 0),
    ]
    return [name for name, used in on if used]


def refuse_extras(cfg: Config) -> None:
    """For methods other than CycleGAN: each extra acts on CycleGAN's cycle or discriminators only."""
    for name in extras_in_use(cfg):
        acts_on = {"loss.diffaugment": "acts on the discriminators of", "loss.lambda_semantic": "is a term of"}
        raise UserError(
            f"{name} {acts_on.get(name, 'acts on the cycle of')} the cyclegan method, not of {cfg.model.method}"
        )


def check_extras(cfg: Config) -> None:
    """The extras' own settings: known palettes of the right channel count, a valid DiffAugment policy, a
    classifier file for the semantic loss."""
    w = cfg.loss
    for domain in ("a", "b"):
        name = getattr(w, f"cycle_palette_{domain}")
        if not name:
            continue
        if name not in PALETTES:
            raise UserError(
                f"loss.cycle_palette_{domain}={name!r} is not a known palette; choose from: {', '.join(PALETTES)}"
            )
        channels = getattr(cfg.data, f"channels_{domain}")
        if channels != PALETTES[name].shape[1]:
            raise UserError(
                f"loss.cycle_palette_{domain}={name} has {PALETTES[name].shape[1]}-channel colours but "
                f"domain {domain.upper()} has {channels} channels (data.channels_{domain}); set it "
                f"on the domain that holds the colour-coded label maps"
            )
    if w.diffaugment:
        try:
            parse_policy(w.diffaugment)
        except ValueError as e:
            raise UserError(f"loss.diffaugment={w.diffaugment!r}: {e}") from None
    if w.lambda_semantic > 0:
        if not w.semantic_classifier:
            raise UserError(
                "loss.lambda_semantic > 0 needs a classifier: --set loss.semantic_classifier=FILE "
                "(e.g. experiments/mnist_usps/train_classifier.py --domain A)"
            )
        if not Path(w.semantic_classifier).is_file():
            raise UserError(f"loss.semantic_classifier {w.semantic_classifier} not found")
