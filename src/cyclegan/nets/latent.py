"""Networks between images and latent vectors, for the latent-variable baselines of the CycleGAN paper.

DCGAN-style stacks (Radford et al. 2016): a generator projects z (B, latent_dim) to a 4x4 map and doubles
it with stride-2 transposed convolutions up to the image size; a discriminator or encoder halves the
image with stride-2 convolutions down to 4x4, then a 4x4 convolution gives one score (or z).

- `cogan` generator / discriminator: CoGAN's coupled pairs (Liu and Tuzel 2016, Sec. 3). The two
  generators share their first layers (high-level semantics) and keep the last ones per domain; the
  two discriminators keep their first layers per domain and share the last ones. Shared layers are
  one module, so the two paths use the very same tensors and the state dict holds each once.
- `latent` generator, `latent_encoder`, `joint` discriminator: one BiGAN / ALI model (Donahue et al.
  2017, Dumoulin et al. 2017) over vector latents: G: z -> x, E: x -> z, D(x, z).

Image sizes are powers of two from 8 up (128 and 256 as in the paper; 32 or 64 on a CPU); the networks
are built for one size and carry it as `image_size`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..registry import Registry
from .layers import conv_bias, norm_layer

# Networks on latent vectors (not image-to-image), for the CoGAN and BiGAN baselines: kept out of the
# image-to-image registries so `model.generator` / `model.discriminator` only offer what fits there.
LATENT_NETS: Registry[nn.Module] = Registry("latent network")

DOMAINS = ("A", "B")


def levels(size: int) -> int:
    """Number of stride-2 steps between 4x4 and size x size (size a power of two, at least 8)."""
    n = int(round(math.log2(size))) - 2 if size > 0 else -1
    if n < 1 or 4 * 2**n != size:
        raise ValueError(f"latent networks need a power-of-two image size of at least 8, got {size}")
    return n


def generator_layers(latent_dim: int, out_ch: int, size: int, ngf: int, norm: str) -> list[nn.Module]:
    """[project z to 4x4, up x2, ..., up x2, to image]: levels(size) + 2 layers (each an nn.Sequential).

    Widths: 4x4 -> ngf*8, then halving towards ngf at full size (capped at ngf*8), as DCGAN.
    """
    n = levels(size)
    Norm, bias = norm_layer(norm), conv_bias(norm)
    width = [ngf * min(8, 2 ** (n - i)) for i in range(n + 1)]  # channels at 4 * 2**i pixels
    layers = [
        nn.Sequential(nn.ConvTranspose2d(latent_dim, width[0], 4, 1, 0, bias=bias), Norm(width[0]), nn.ReLU(True))
    ]
    for i in range(1, n + 1):
        layers.append(
            nn.Sequential(nn.ConvTranspose2d(width[i - 1], width[i], 4, 2, 1, bias=bias), Norm(width[i]), nn.ReLU(True))
        )
    layers.append(nn.Sequential(nn.Conv2d(width[n], out_ch, 3, 1, 1), nn.Tanh()))
    return layers


def encoder_layers(in_ch: int, out_dim: int, size: int, ndf: int, norm: str) -> list[nn.Module]:
    """[down x2, ..., down x2, 4x4 conv to out_dim]: levels(size) + 1 layers; the first has no norm (DCGAN)."""
    n = levels(size)
    Norm, bias = norm_layer(norm), conv_bias(norm)
    width = [ndf * min(8, 2**i) for i in range(n)]  # channels after each halving
    layers = [nn.Sequential(nn.Conv2d(in_ch, width[0], 4, 2, 1), nn.LeakyReLU(0.2, True))]
    for i in range(1, n):
        layers.append(
            nn.Sequential(
                nn.Conv2d(width[i - 1], width[i], 4, 2, 1, bias=bias), Norm(width[i]), nn.LeakyReLU(0.2, True)
            )
        )
    layers.append(nn.Sequential(nn.Conv2d(width[n - 1], out_dim, 4, 1, 0), nn.Flatten()))
    return layers


class CoupledGenerator(nn.Module):
    """CoGAN's generator pair: z (B, latent_dim) -> (x_A, x_B), each (B, C, size, size) in [-1, 1].

    The first `levels(size) + 2 - private` layers are one module (`shared`), used by both domains; the
    last `private` layers exist once per domain (`private["A"]`, `private["B"]`).
    """

    def __init__(
        self,
        latent_dim: int = 100,
        out_ch_a: int = 3,
        out_ch_b: int = 3,
        size: int = 128,
        ngf: int = 64,
        norm: str = "batch",
        private: int = 2,
    ):
        super().__init__()
        self.latent_dim, self.image_size = latent_dim, size
        a = generator_layers(latent_dim, out_ch_a, size, ngf, norm)
        b = generator_layers(latent_dim, out_ch_b, size, ngf, norm)
        if not 1 <= private < len(a):
            raise ValueError(f"private must be in [1, {len(a) - 1}] for size {size}, got {private}")
        self.shared = nn.Sequential(*a[:-private])  # built once: domain B's copies of these are dropped
        self.private = nn.ModuleDict({"A": nn.Sequential(*a[-private:]), "B": nn.Sequential(*b[-private:])})

    def path(self, domain: str) -> list[nn.Module]:
        """The layers that generate `domain`, in order (shared ones are the same objects for A and B)."""
        return [*self.shared, *self.private[domain]]

    def generate(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        """(B, latent_dim) -> (B, C_domain, size, size)."""
        return self.private[domain](self.shared(z[:, :, None, None]))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.shared(z[:, :, None, None])  # one pass through the shared layers for both images
        return self.private["A"](h), self.private["B"](h)


class CoupledDiscriminator(nn.Module):
    """CoGAN's discriminator pair: (x, domain) -> (B, 1) raw scores; the first `private` layers are per
    domain, the rest (including the final 4x4 conv) one shared module."""

    def __init__(
        self, in_ch_a: int = 3, in_ch_b: int = 3, size: int = 128, ndf: int = 64, norm: str = "batch", private: int = 1
    ):
        super().__init__()
        self.image_size = size
        a = encoder_layers(in_ch_a, 1, size, ndf, norm)
        b = encoder_layers(in_ch_b, 1, size, ndf, norm)
        if not 1 <= private < len(a):
            raise ValueError(f"private must be in [1, {len(a) - 1}] for size {size}, got {private}")
        self.private = nn.ModuleDict({"A": nn.Sequential(*a[:private]), "B": nn.Sequential(*b[:private])})
        self.shared = nn.Sequential(*a[private:])

    def path(self, domain: str) -> list[nn.Module]:
        return [*self.private[domain], *self.shared]

    def forward(self, x: torch.Tensor, domain: str) -> torch.Tensor:
        return self.shared(self.private[domain](x))


class LatentGenerator(nn.Module):
    """G: z (B, latent_dim) -> (B, out_ch, size, size) in [-1, 1] (one domain's BiGAN generator)."""

    def __init__(self, latent_dim: int = 100, out_ch: int = 3, size: int = 128, ngf: int = 64, norm: str = "batch"):
        super().__init__()
        self.latent_dim, self.image_size = latent_dim, size
        self.model = nn.Sequential(*generator_layers(latent_dim, out_ch, size, ngf, norm))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z[:, :, None, None])


class LatentEncoder(nn.Module):
    """E: (B, in_ch, size, size) -> z (B, latent_dim) (BiGAN's encoder; linear last layer, no squashing)."""

    def __init__(self, in_ch: int = 3, latent_dim: int = 100, size: int = 128, ndf: int = 64, norm: str = "batch"):
        super().__init__()
        self.latent_dim, self.image_size = latent_dim, size
        self.model = nn.Sequential(*encoder_layers(in_ch, latent_dim, size, ndf, norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class JointDiscriminator(nn.Module):
    """BiGAN's D(x, z) -> (B, 1): a conv stack embeds x, a linear layer embeds z, and two linear layers
    score the concatenation (dropout 0.2 on the joint layer, as BiGAN's discriminator)."""

    def __init__(
        self,
        in_ch: int = 3,
        latent_dim: int = 100,
        size: int = 128,
        ndf: int = 64,
        norm: str = "batch",
        hidden: int = 512,
    ):
        super().__init__()
        self.image_size = size
        self.image = nn.Sequential(*encoder_layers(in_ch, hidden, size, ndf, norm), nn.LeakyReLU(0.2, True))
        self.latent = nn.Sequential(nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2, True))
        self.joint = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.LeakyReLU(0.2, True), nn.Dropout(0.2), nn.Linear(hidden, 1)
        )

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.joint(torch.cat([self.image(x), self.latent(z)], 1))


@LATENT_NETS.register("cogan_generator")
def cogan_generator(
    latent_dim: int = 100,
    out_ch_a: int = 3,
    out_ch_b: int = 3,
    size: int = 128,
    ngf: int = 64,
    *,
    norm: str = "batch",
    private: int = 2,
) -> CoupledGenerator:
    """CoGAN's tied generator pair (z -> x_A, x_B); the last `private` layers are per domain."""
    return CoupledGenerator(latent_dim, out_ch_a, out_ch_b, size, ngf, norm, private)


@LATENT_NETS.register("cogan_discriminator")
def cogan_discriminator(
    in_ch_a: int = 3, in_ch_b: int = 3, size: int = 128, ndf: int = 64, *, norm: str = "batch", private: int = 1
) -> CoupledDiscriminator:
    """CoGAN's tied discriminator pair; the first `private` layers are per domain."""
    return CoupledDiscriminator(in_ch_a, in_ch_b, size, ndf, norm, private)


@LATENT_NETS.register("latent_generator")
def latent_generator(
    latent_dim: int = 100, out_ch: int = 3, size: int = 128, ngf: int = 64, norm: str = "batch"
) -> LatentGenerator:
    """DCGAN generator z -> image."""
    return LatentGenerator(latent_dim, out_ch, size, ngf, norm)


@LATENT_NETS.register("latent_encoder")
def latent_encoder(
    in_ch: int = 3, latent_dim: int = 100, size: int = 128, ndf: int = 64, norm: str = "batch"
) -> LatentEncoder:
    """DCGAN-discriminator-shaped encoder image -> z."""
    return LatentEncoder(in_ch, latent_dim, size, ndf, norm)


@LATENT_NETS.register("joint_discriminator")
def joint_discriminator(
    in_ch: int = 3, latent_dim: int = 100, size: int = 128, ndf: int = 64, norm: str = "batch"
) -> JointDiscriminator:
    """BiGAN's discriminator on (image, latent) pairs."""
    return JointDiscriminator(in_ch, latent_dim, size, ndf, norm)
