"""Discriminators: PatchGAN (pix2pix/CycleGAN's 70x70 `basic`), its n-layer form, and a 1x1 PixelGAN."""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry
from .layers import conv_bias, norm_layer

DISCRIMINATORS: Registry[nn.Module] = Registry("discriminator")


class NLayerDiscriminator(nn.Module):
    """C64-C128-C256-C512 PatchGAN (paper, Appendix 7.2), 4x4 convs, LeakyReLU 0.2.

    With n_layers=3 each output unit sees a 70x70 patch; a 256x256 input gives a (B, 1, 30, 30) map of
    real/fake scores (raw, no sigmoid: the GAN loss decides how to read them).
    """

    def __init__(self, in_ch: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        Norm, bias = norm_layer(norm), conv_bias(norm)
        layers = [nn.Conv2d(in_ch, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=bias),
                Norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN (PixelGAN): judges each pixel's colour on its own."""

    def __init__(self, in_ch: int = 3, ndf: int = 64, norm: str = "instance"):
        super().__init__()
        Norm, bias = norm_layer(norm), conv_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_ch, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            Norm(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),  # the reference drops this bias too under batch norm,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@DISCRIMINATORS.register("basic")
def basic(in_ch: int = 3, ndf: int = 64, norm: str = "instance", n_layers: int = 3) -> NLayerDiscriminator:
    """The 70x70 PatchGAN (n_layers=3; `n_layers` is accepted and must be 3)."""
    if n_layers != 3:
        raise ValueError("the 'basic' discriminator has 3 layers; use 'n_layers' for other depths")
    return NLayerDiscriminator(in_ch, ndf, 3, norm)


@DISCRIMINATORS.register("n_layers")
def n_layers(in_ch: int = 3, ndf: int = 64, norm: str = "instance", n_layers: int = 3) -> NLayerDiscriminator:
    """PatchGAN with a chosen depth (receptive field 16, 34, 70, 142, 286 for 1..5 layers)."""
    return NLayerDiscriminator(in_ch, ndf, n_layers, norm)


@DISCRIMINATORS.register("pixel")
def pixel(in_ch: int = 3, ndf: int = 64, norm: str = "instance", n_layers: int = 3) -> PixelDiscriminator:
    """1x1 PixelGAN; `n_layers` is ignored."""
    return PixelDiscriminator(in_ch, ndf, norm)
