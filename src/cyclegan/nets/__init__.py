"""Networks, created by name from registries: `create_generator("resnet_9blocks", in_ch=3, out_ch=3)`."""

from __future__ import annotations

from torch import nn

from . import latent  # noqa: F401,E402  (registers the latent-vector networks: cogan, latent, latent_encoder, joint)
from .discriminators import DISCRIMINATORS, NLayerDiscriminator, PixelDiscriminator
from .generators import GENERATORS, ResnetGenerator, UnetGenerator
from .layers import INITS, NORMS, init_weights, norm_layer


def create_generator(name: str, **kwargs) -> nn.Module:
    """Build a registered generator; kwargs: in_ch, out_ch, ngf, norm, dropout."""
    return GENERATORS.create(name, **kwargs)


def create_discriminator(name: str, **kwargs) -> nn.Module:
    """Build a registered discriminator; kwargs: in_ch, ndf, norm, n_layers."""
    return DISCRIMINATORS.create(name, **kwargs)


def size_multiple(net: nn.Module) -> int:
    """The multiple that input height and width must have for this network (4 for ResNet)."""
    return int(getattr(net, "size_multiple", 1))


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "INITS",
    "NORMS",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "ResnetGenerator",
    "UnetGenerator",
    "count_parameters",
    "create_discriminator",
    "create_generator",
    "init_weights",
    "norm_layer",
    "size_multiple",
]
