"""Progress grids: real | translated | reconstructed, both directions, from a fixed batch (`sample_batch`)."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.transforms.v2 import functional as TF
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


def to_device(x: torch.Tensor, device: torch.device, *, channels_last: bool) -> torch.Tensor:
    """A batch's images on the training device, in the memory format the networks train in."""
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def sample_batch(dataset, device, *, channels_last: bool, n: int = 4) -> dict:
    """A fixed batch for progress grids: the first n samples of a fixed epoch key."""
    items = [dataset[(-1, i)] for i in range(min(n, len(dataset)))]
    # images of several sizes (preprocess=none, scale_width): the centres, at the smallest size of all
    h = min(it[k].shape[-2] for it in items for k in ("A", "B"))
    w = min(it[k].shape[-1] for it in items for k in ("A", "B"))
    return {
        k: to_device(torch.stack([TF.center_crop(it[k], [h, w]) for it in items]), device, channels_last=channels_last)
        for k in ("A", "B")
    }
