"""Name-to-layer factories (`norm="instance"`) and weight initialisation."""

from __future__ import annotations

import functools

import torch
from torch import nn

from ..errors import UserError
from .layout import InstanceNorm2d

NORMS = ("instance", "batch", "none")
INITS = ("normal", "xavier", "kaiming", "orthogonal")


def norm_layer(name: str):
    """Return a constructor `f(num_channels) -> nn.Module` for the named normalisation.

    `instance` is InstanceNorm2d(affine=False, track_running_stats=False) as in the reference, so it
    holds no parameters (our subclass, which keeps channels_last inputs in channels_last: nets/layout.py);
    `batch` is BatchNorm2d(affine=True, track_running_stats=True).
    """
    if name == "instance":
        return functools.partial(InstanceNorm2d, affine=False, track_running_stats=False)
    if name == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if name == "none":
        return lambda num_channels: nn.Identity()
    raise UserError(f"unknown norm {name!r}; choose one of: {', '.join(NORMS)}")


def conv_bias(norm: str) -> bool:
    """Whether convolutions followed by this norm carry a bias.

    As in the reference: batch norm has its own shift, so the conv before it has none; instance norm
    (affine=False) has none, so the conv keeps its bias. Without a norm the conv keeps its bias (the
    reference drops it there, which leaves such layers without any shift).
    """
    return norm != "batch"


@torch.no_grad()
def init_weights(
    net: nn.Module, kind: str = "normal", gain: float = 0.02, generator: torch.Generator | None = None
) -> nn.Module:
    """Initialise conv/linear weights (biases to 0) and batch-norm scales N(1, gain), as the reference.

    `normal` is the paper's N(0, 0.02). Draws come from `generator` when given, else torch's default.
    """
    if kind not in INITS:
        raise UserError(f"unknown init {kind!r}; choose one of: {', '.join(INITS)}")
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.weight
            if kind == "normal":
                w.normal_(0.0, gain, generator=generator)
            elif kind == "xavier":
                fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
                std = gain * (2.0 / (fan_in + fan_out)) ** 0.5
                w.normal_(0.0, std, generator=generator)
            elif kind == "kaiming":
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(w)
                w.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
            else:
                nn.init.orthogonal_(w, gain=gain, generator=generator)
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.normal_(1.0, gain, generator=generator)
            m.bias.zero_()
    return net
