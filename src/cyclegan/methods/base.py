"""What a training method is: its networks, its two loss phases, and how it translates.

A method knows nothing of devices, optimizers, pools or I/O. The training step (train/step.py) runs
the generator phase with the discriminators frozen, passes the fakes a method hands back through the
history pools, then runs the discriminator phase.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .. import losses as L
from ..config import Config
from ..nets import create_discriminator, create_generator, init_weights
from ..registry import Registry
from .extras import refuse_extras
from .fused import real_and_fake

Tensor = torch.Tensor
Losses = dict[str, Tensor]


@dataclass
class NetSpec:
    """Enough to rebuild one network without any training config: its kind, registry name, kwargs."""

    kind: str  # "generator" | "discriminator" | "latent" | "projection"
    name: str
    kwargs: dict = field(default_factory=dict)

    def build(self) -> nn.Module:
        from ..nets.latent import LATENT_NETS
        from ..nets.projection import PROJECTIONS

        create = {
            "generator": create_generator,
            "discriminator": create_discriminator,
            "latent": LATENT_NETS.create,
            "projection": PROJECTIONS.create,
        }[self.kind]
        return create(self.name, **self.kwargs)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "kwargs": dict(self.kwargs)}

    @classmethod
    def from_dict(cls, d: dict) -> "NetSpec":
        return cls(d["kind"], d["name"], dict(d["kwargs"]))


class Method(abc.ABC):
    """Base class. Subclasses set `generators`, `discriminators`, `directions` and the two losses."""

    name = "base"
    generators: tuple[str, ...] = ()  # trained by the generator optimizer
    discriminators: tuple[str, ...] = ()  # trained by the discriminator optimizer
    directions: dict[str, str] = {}  # "AtoB" -> name of the network that translates that way

    def __init__(self, cfg: Config):
        self.cfg = cfg

    @classmethod
    def check(cls, cfg: Config) -> None:
        """Refuse settings this method cannot honour, with a UserError that names them (before any data is
        read). The default refuses CycleGAN's extras (methods/extras.py); a method that overrides this says
        what it checks."""
        refuse_extras(cfg)

    @abc.abstractmethod
    def specs(self) -> dict[str, NetSpec]:
        """Every network of the method by name, as a rebuildable spec."""

    def build_networks(self) -> nn.ModuleDict:
        """Create and initialise all networks (draws from torch's default generator: seed it first)."""
        m = self.cfg.model
        nets = nn.ModuleDict({k: s.build() for k, s in self.specs().items()})
        for net in nets.values():
            init_weights(net, m.init, m.init_gain)
        return nets

    def active_discriminators(self) -> tuple[str, ...]:
        """Discriminators that have a nonzero adversarial weight (the others are not trained)."""
        return self.discriminators

    @abc.abstractmethod
    def generator_loss(self, nets: nn.ModuleDict, batch: dict) -> tuple[Losses, dict[str, Tensor]]:
        """Weighted loss terms of the generator phase, and the fakes for each active discriminator."""

    @abc.abstractmethod
    def discriminator_loss(self, nets: nn.ModuleDict, batch: dict, fakes: dict[str, Tensor]) -> Losses:
        """Weighted loss terms of the discriminator phase, `fakes` already passed through the pools."""

    def inference_nets(self) -> tuple[str, ...]:
        """Networks a model snapshot holds: all that `translator` uses (default: the directions' values;
        a method whose translation needs more, e.g. an encoder and a generator, overrides this)."""
        return tuple(dict.fromkeys(self.directions.values()))

    def io_channels(self, direction: str) -> tuple[int, int]:
        """(input, output) image channels of a direction (default: in_ch/out_ch of its network)."""
        kwargs = self.specs()[self.directions[direction]].kwargs
        return kwargs["in_ch"], kwargs["out_ch"]

    def translator(self, nets: nn.ModuleDict, direction: str) -> Callable[[Tensor], Tensor]:
        """A function (B, C_in, H, W) in [-1, 1] -> (B, C_out, H, W) for a direction."""
        from ..errors import UserError

        if direction not in self.directions:
            raise UserError(f"method {self.name} translates {', '.join(self.directions)}, not {direction!r}")
        return nets[self.directions[direction]]

    @abc.abstractmethod
    def samples(self, nets: nn.ModuleDict, batch: dict) -> list[list[Tensor]]:
        """Rows of images for a progress grid (each row a list of (B, C, H, W) tensors)."""


METHODS: Registry[type[Method]] = Registry("method")


def create_method(cfg: Config) -> Method:
    return METHODS.get(cfg.model.method)(cfg)


def two_way_specs(cfg: Config) -> dict[str, NetSpec]:
    """The four networks of a two-way method (CycleGAN, and the baselines that share its set-up): G_A: A->B,
    G_B: B->A, D_A judging domain B, D_B judging domain A."""
    m, d = cfg.model, cfg.data
    g = dict(ngf=m.ngf, norm=m.norm, dropout=m.dropout)
    dk = dict(ndf=m.ndf, norm=m.norm, n_layers=m.n_layers_d)
    return {
        "G_A": NetSpec("generator", m.generator, dict(in_ch=d.channels_a, out_ch=d.channels_b, **g)),
        "G_B": NetSpec("generator", m.generator, dict(in_ch=d.channels_b, out_ch=d.channels_a, **g)),
        "D_A": NetSpec("discriminator", m.discriminator, dict(in_ch=d.channels_b, **dk)),
        "D_B": NetSpec("discriminator", m.discriminator, dict(in_ch=d.channels_a, **dk)),
    }


def gan_weighted(loss_cfg) -> tuple[str, ...]:
    """The discriminators of a two-way method that have a nonzero adversarial weight (lambda_gan_a: D_A)."""
    return tuple(n for n, lam in (("D_A", loss_cfg.lambda_gan_a), ("D_B", loss_cfg.lambda_gan_b)) if lam > 0)


def _same(x: Tensor) -> Tensor:
    return x


def halved_discriminator_loss(
    nets: nn.ModuleDict,
    batch: dict,
    fakes: dict[str, Tensor],
    loss_cfg,
    *,
    view: Callable[[Tensor], Tensor] = _same,
    fused: bool = False,
) -> Losses:
    """Eq. 1, discriminator side, halved (the reference's choice, Sec. 4): D_A separates real B from the
    (pooled) fakes of B, D_B real A from fakes of A, each only when `fakes` has its key; both see images
    through `view` (DiffAugment where on). With gan_mode wgangp, + the gradient penalty (D_A_gp, D_B_gp).
    `fused`: real and fake through D in one call (methods/fused.py; only where D's samples are independent)."""
    terms = {}
    for name, real in (("D_A", batch["B"]), ("D_B", batch["A"])):
        if name not in fakes:
            continue
        d, real, fake = nets[name], view(real), view(fakes[name])
        terms[name] = L.discriminator_gan_loss(*real_and_fake(d, real, fake, fused=fused), loss_cfg.gan_mode)
        if loss_cfg.gan_mode == "wgangp":
            terms[name + "_gp"] = L.gradient_penalty(d, real, fake, loss_cfg.lambda_gp)
    return terms
