"""Generators: the ResNet generator of Johnson et al. (the paper's choice) and the U-Net of pix2pix.

Module structure and attribute names follow the reference implementation exactly, so its
`torch.save(net.state_dict())` files load without renaming (see ../reference.py).
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry
from .layers import conv_bias, norm_layer
from .layout import ReflectionPad2d  # pads in the input's dtype under autocast

GENERATORS: Registry[nn.Module] = Registry("generator")


class ResnetBlock(nn.Module):
    """Two 3x3 convs with reflection padding and a skip connection (Johnson et al. 2016)."""

    def __init__(self, dim: int, norm: str = "instance", dropout: bool = False):
        super().__init__()
        Norm, bias = norm_layer(norm), conv_bias(norm)
        layers = [ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), Norm(dim), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), Norm(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2ngf), d(4ngf), N x R(4ngf), u(2ngf), u(ngf), c7s1-out, tanh (paper, Appendix 7.2).

    Input (B, in_ch, H, W) in [-1, 1] with H, W multiples of 4; output (B, out_ch, H, W) in [-1, 1].
    """

    size_multiple = 4

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
    ):
        super().__init__()
        Norm, bias = norm_layer(norm), conv_bias(norm)
        layers = [ReflectionPad2d(3), nn.Conv2d(in_ch, ngf, 7, bias=bias), Norm(ngf), nn.ReLU(True)]
        for i in range(2):  # two stride-2 downsamplings
            c = ngf * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=bias), Norm(2 * c), nn.ReLU(True)]
        layers += [ResnetBlock(4 * ngf, norm, dropout) for _ in range(n_blocks)]
        for i in range(2):  # two fractionally-strided upsamplings
            c = ngf * 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias),
                Norm(c // 2),
                nn.ReLU(True),
            ]
        layers += [ReflectionPad2d(3), nn.Conv2d(ngf, out_ch, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: down, the inner levels, up, and the skip concatenation."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        Norm, bias = norm_layer(norm), conv_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, uprelu, upconv, Norm(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [downrelu, downconv, Norm(inner_nc), submodule, uprelu, upconv, Norm(outer_nc)]
            if dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with `num_downs` stride-2 levels (pix2pix, Isola et al. 2017, Sec. 3.2.1).

    unet_256 has 8 levels, so H and W must be multiples of 256 (1x1 at the bottleneck).
    """

    def __init__(
        self,
        in_ch: int = 3,
        out_ch: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "batch",
        dropout: bool = False,
    ):
        super().__init__()
        self.size_multiple = 2**num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, dropout=dropout)
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(out_ch, ngf, input_nc=in_ch, submodule=block, outermost=True, norm=norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@GENERATORS.register("resnet_9blocks")
def resnet_9blocks(**kw) -> ResnetGenerator:
    """The paper's generator for 256x256 images."""
    return ResnetGenerator(n_blocks=9, **kw)


@GENERATORS.register("resnet_6blocks")
def resnet_6blocks(**kw) -> ResnetGenerator:
    """The paper's generator for 128x128 images."""
    return ResnetGenerator(n_blocks=6, **kw)


@GENERATORS.register("unet_256")
def unet_256(**kw) -> UnetGenerator:
    """pix2pix's U-Net for 256x256 images (8 levels)."""
    return UnetGenerator(num_downs=8, **kw)


@GENERATORS.register("unet_128")
def unet_128(**kw) -> UnetGenerator:
    """pix2pix's U-Net for 128x128 images (7 levels)."""
    return UnetGenerator(num_downs=7, **kw)
