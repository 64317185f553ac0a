"""A ResNet generator read as its own encoder: the outputs of chosen layers (CUT, Park et al. 2020, Sec. 3.2).

CUT takes the features of L layers of G's own layer stack, "layers 0, 4, 8, 12, 16" of the reference's
`nn.Sequential` (the output after layer i, as the reference's `encode_only` loop appends them). Here they
are read from the generator as it is: nothing is subclassed, wrapped or renamed, so the generator keeps
its class and its checkpoint keys, and torch.compile / DDP-style wrappers are looked through.

With this project's `ResnetGenerator` (no anti-aliased resampling, the reference's `--no_antialias`),
layers 0, 4, 8, 12, 16 of resnet_9blocks are: the reflection-padded input (in_ch channels), the first
stride-2 conv (2 ngf), the second down-sampling's norm (4 ngf), residual blocks 3 and 7 (4 ngf). A kept
output that an in-place ReLU follows is read after that ReLU (it is the same tensor), as in the reference,
and that ReLU is run even where the pass could stop before it, so a layer's feature never depends on
how far the pass goes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .generators import ResnetGenerator


def layer_stack(net: nn.Module) -> nn.Sequential:
    """The `model` Sequential of a ResNet generator, under any torch.compile (`_orig_mod`) or DDP (`module`)
    wrapper. Raises TypeError for other networks (a U-Net's layers are nested, not a stack)."""
    net = getattr(net, "_orig_mod", net)
    net = getattr(net, "module", net)
    if not isinstance(net, ResnetGenerator):
        raise TypeError(f"layer features need a ResNet generator, not {type(net).__name__}")
    return net.model


def parse_layers(text: str) -> tuple[int, ...]:
    """ "0,4,8,12,16" -> (0, 4, 8, 12, 16): distinct, ascending, non-negative (ValueError otherwise)."""
    try:
        layers = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated layer indices, got {text!r}") from None
    if not layers or list(layers) != sorted(set(layers)) or layers[0] < 0:
        raise ValueError(f"expected distinct ascending layer indices from 0, got {text!r}")
    return layers


def layer_features(
    net: nn.Module, x: torch.Tensor, layers: Sequence[int], *, full: bool = False
) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
    """Run `net` on x (B, C, H, W) and keep the outputs of `layers` (ascending indices into its stack).

    With full=False (the reference's `encode_only`) the pass stops after the last of `layers` and returns
    (None, features); with full=True it runs to the end and returns (G(x), features), one pass for both."""
    stack = layer_stack(net)
    wanted, last = set(layers), max(layers)
    if last >= len(stack):
        raise ValueError(f"layer {last} asked for, but the generator has layers 0 to {len(stack) - 1}")
    feats = []
    for i, layer in enumerate(stack):
        x = layer(x)
        if i in wanted:
            feats.append(x)
        if i >= last and not full and not _in_place_relu(stack, i + 1):
            return None, feats
    return x, feats


def _in_place_relu(stack: nn.Sequential, i: int) -> bool:
    return i < len(stack) and isinstance(stack[i], nn.ReLU) and stack[i].inplace


def layer_channels(net: nn.Module, layers: Sequence[int], in_ch: int, size: int = 32) -> list[int]:
    """Channels of the outputs of `layers`, from one pass on a shape-only ("meta") input: no memory, no
    arithmetic, no random numbers. Build `net` on the meta device (`with torch.device("meta")`) to make it free."""
    x = torch.empty(1, in_ch, size, size, device="meta")
    with torch.no_grad():
        _, feats = layer_features(net.to("meta"), x, layers)
    return [f.shape[1] for f in feats]
