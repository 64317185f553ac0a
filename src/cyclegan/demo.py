"""The built-in demo: a small synthetic unpaired dataset, generated on the fly (no downloads).

Domain A ("day"): warm-coloured discs and boxes on a pale sky. Domain B ("night"): the same kinds of
scenes in cold colours on a dark sky, with a moon instead of a sun. Nothing pairs the two folders;
a CycleGAN learns the day->night restyling and back in a few CPU minutes at 64x64.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

DAY = {
    "sky": [(180, 215, 245), (200, 230, 250), (160, 200, 240)],
    "sun": (255, 220, 80),
    "shapes": [(220, 80, 50), (240, 150, 40), (200, 60, 90), (90, 170, 60)],
    "ground": (120, 180, 90),
}
NIGHT = {
    "sky": [(15, 20, 50), (25, 25, 60), (10, 15, 35)],
    "sun": (235, 235, 250),
    "shapes": [(60, 80, 160), (40, 120, 150), (90, 70, 140), (30, 90, 80)],
    "ground": (25, 45, 45),
}


def draw_scene(rng: np.random.Generator, palette: dict, size: int) -> Image.Image:
    """One random scene: sky, ground line, a sun/moon, and 2-5 houses/trees."""
    sky = palette["sky"][rng.integers(len(palette["sky"]))]
    im = Image.new("RGB", (size, size), sky)
    d = ImageDraw.Draw(im)
    horizon = int(size * rng.uniform(0.6, 0.8))
    d.rectangle([0, horizon, size, size], fill=palette["ground"])
    r = size * rng.uniform(0.07, 0.12)
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, horizon * 0.5)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=palette["sun"])
    for _ in range(rng.integers(2, 6)):
        colour = palette["shapes"][rng.integers(len(palette["shapes"]))]
        w, h = size * rng.uniform(0.1, 0.25), size * rng.uniform(0.1, 0.3)
        x = rng.uniform(0, size - w)
        if rng.random() < 0.5:
            d.rectangle([x, horizon - h, x + w, horizon], fill=colour)
        else:
            d.ellipse([x, horizon - h, x + w, horizon], fill=colour)
    return im


def make_demo_dataset(root: str | Path, n_train: int = 200, n_test: int = 24, size: int = 72, seed: int = 0) -> Path:
    """Write trainA/trainB/testA/testB PNGs under root (idempotent for the same arguments)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        for domain, palette in (("A", DAY), ("B", NIGHT)):
            folder = root / f"{split}{domain}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                draw_scene(rng, palette, size).save(folder / f"{i:04d}.png")
    return root
