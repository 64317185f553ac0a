"""Differentiable augmentation of the discriminators' inputs (DiffAugment; Zhao, Liu, Lin, Zhu and Han 2020,
"Differentiable Augmentation for Data-Efficient GAN Training", Sec. 3).

With a few hundred images per domain a discriminator memorises the real set, and its gradient stops
telling the generator anything about realism. DiffAugment applies the *same kinds* of random
transformation T to real and generated images whenever the discriminator looks at them, in both the
discriminator's update (D(T(y)) against D(T(G(x)))) and the generator's (D(T(G(x)))), so that D cannot
win by memorising and G is never asked to produce augmented-looking images. Every transform is
differentiable in its input, so G's gradient passes through T.

Transforms (images in [-1, 1], (B, C, H, W); each sample draws its own parameters from the global RNG,
which checkpoints save, so resume stays exact):
- color: brightness + U(-0.5, 0.5); saturation (deviation from the per-pixel channel mean) x U(0, 2);
  contrast (deviation from the image mean) x U(0.5, 1.5).
- translation: a shift by up to 1/8 of the height and width in whole pixels, filled with zeros.
- cutout: one zeroed square of half the height and width, at a random place (it may hang over the edge).

The paper's choice for small data is all three; for colour-coded label maps, whose meaning is the colour,
`translation,cutout` leaves the palette alone.
"""

from __future__ import annotations

import torch

POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    """ "color,translation" -> ("color", "translation"); "" -> () (off). Unknown names raise ValueError."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(map(repr, unknown))}; choose from {', '.join(POLICIES)}")
    return names


def _uniform(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """One U(low, high) draw per sample, shaped (B, 1, 1, 1) to broadcast over x."""
    return low + (high - low) * torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness, then saturation, then contrast, per sample (the ranges in the module docstring)."""
    x = x + _uniform(x, -0.5, 0.5)
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * _uniform(x, 0.0, 2.0) + mean
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x, 0.5, 1.5) + mean


def _offsets(n: int, limit: int, device: torch.device) -> torch.Tensor:
    """n integer offsets drawn uniformly from [-limit, limit]."""
    return torch.randint(-limit, limit + 1, (n,), device=device)


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """out[b, :, i, j] = x[b, :, i + dy_b, j + dx_b], zero where that falls outside the image."""
    b, _, h, w = x.shape
    dy, dx = _offsets(b, int(h * ratio + 0.5), x.device), _offsets(b, int(w * ratio + 0.5), x.device)
    rows = torch.arange(h, device=x.device)[None, :] + dy[:, None]  # (B, H)
    cols = torch.arange(w, device=x.device)[None, :] + dx[:, None]  # (B, W)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]  # (B, H, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    picked = x.permute(0, 2, 3, 1)[batch, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
    return picked.permute(0, 3, 1, 2) * inside[:, None].to(x.dtype)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """x with one square of (ratio H) x (ratio W) pixels set to zero per sample; its centre is uniform over
    the image, so near the edges only part of it falls inside."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (b,), device=x.device) - ch // 2  # (B,)
    left = torch.randint(0, w + (1 - cw % 2), (b,), device=x.device) - cw // 2
    rows = torch.arange(h, device=x.device)[None, :] - top[:, None]  # (B, H): row offset into the square
    cols = torch.arange(w, device=x.device)[None, :] - left[:, None]
    hole = ((rows >= 0) & (rows < ch))[:, :, None] & ((cols >= 0) & (cols < cw))[:, None, :]
    return x * (~hole)[:, None].to(x.dtype)


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: torch.Tensor, policy: tuple[str, ...]) -> torch.Tensor:
    """x through each transform of `policy` in turn (as from `parse_policy`); x itself for an empty policy."""
    for name in policy:
        x = TRANSFORMS[name](x)
    return x
