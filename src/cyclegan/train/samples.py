"""Progress grids: real | translated | reconstructed, both directions."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid, save_image

from .state import TrainState


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [-1, 1] -> (B, 3, H, W) in [0, 1] for display (grey repeated, extra channels dropped)."""
    x = x.detach().float()
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    elif x.shape[1] != 3:
        x = x[:, :3]
    return (x + 1) / 2


@torch.no_grad()
def save_sample_grid(state: TrainState, batch: dict, path: Path) -> torch.Tensor:
    """Run the method's sample rows in the networks' current mode, without touching training RNG; save the
    grid as a PNG and return it, (3, H, W) in [0, 1]."""
    with torch.random.fork_rng(devices=[batch["A"].device] if batch["A"].is_cuda else []):
        rows = state.method.samples(state.nets, batch)
    cols = [torch.cat([to_rgb(t) for t in row], dim=3) for row in rows]  # each (B, 3, H, k*W)
    grid = torch.cat(cols, dim=2) if len({c.shape[3] for c in cols}) == 1 else cols[0]
    image = make_grid(grid, nrow=1, padding=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(image, path)
    return image
