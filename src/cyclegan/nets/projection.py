"""CUT's projection heads H_l (Park et al. 2020, Sec. 3.2): sample patch positions of each layer's feature
map, project each sampled feature vector with a 2-layer MLP, and L2-normalise it.

The reference (`PatchSampleF`, option `netF mlp_sample`) creates the MLPs lazily, on the first batch, with
in-channels read off the features it is given. Here the heads are built with the networks, from the channel
counts those layers are known to output (`nets.encoder.layer_channels`, a shape-only pass): the modules, their
attribute names (`mlp_0.0.weight`, ...: the reference netF's keys; loading its files is not tested) and the
initialisation (the method's `model.init`, like the reference's `init_net` on them) are the same; only the
order in which the random initial weights are drawn differs, which no distribution of a run depends on.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..registry import Registry

PROJECTIONS: Registry[nn.Module] = Registry("projection head")


def l2_normalize(x: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """x / (||x||_2 + eps) along dim 1 (the reference's `Normalize(2)`, eps added to the norm)."""
    return x / (x.pow(2).sum(1, keepdim=True).sqrt() + eps)


def sample_positions(n_positions: int, n_patches: int, device: torch.device) -> torch.Tensor:
    """min(n_patches, n_positions) distinct positions in random order (torch's generator of `device`, which
    checkpoints save: a resumed run draws what it would have drawn)."""
    return torch.randperm(n_positions, device=device)[: min(n_patches, n_positions)]


class PatchSampleMLP(nn.Module):
    """One head per layer: Linear(C_l, nc), ReLU, Linear(nc, nc), then L2 normalisation.

    forward(feats, n_patches, ids=None): feats are (B, C_l, H_l, W_l) maps; from each, the same positions of
    every image are sampled (new ones when `ids` is None, else `ids[l]`, so that the output's patches match
    the input's), giving (B * P_l, nc) rows ordered image by image. Returns (rows per layer, ids per layer).
    """

    def __init__(self, in_channels: Sequence[int], nc: int = 256):
        super().__init__()
        self.in_channels, self.nc = list(in_channels), nc
        for i, c in enumerate(self.in_channels):
            setattr(self, f"mlp_{i}", nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)))

    def forward(
        self, feats: Sequence[torch.Tensor], n_patches: int, ids: Sequence[torch.Tensor] | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        assert len(feats) == len(self.in_channels), (len(feats), self.in_channels)
        rows, used = [], []
        for i, feat in enumerate(feats):
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)  # (B, H*W, C)
            pick = sample_positions(flat.shape[1], n_patches, feat.device) if ids is None else ids[i]
            x = flat[:, pick, :].flatten(0, 1)  # (B * P, C)
            rows.append(l2_normalize(getattr(self, f"mlp_{i}")(x)))
            used.append(pick)
        return rows, used


@PROJECTIONS.register("mlp_sample")
def mlp_sample(in_channels: Sequence[int], nc: int = 256) -> PatchSampleMLP:
    """The CUT paper's head: a 2-layer MLP of 256 units per layer on 256 sampled patches."""
    return PatchSampleMLP(in_channels, nc)
