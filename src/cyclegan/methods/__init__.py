"""Training methods, by name: `create_method(cfg)`; importing this package registers them all."""

from . import cyclegan  # noqa: F401  (registers "cyclegan")
from . import pix2pix  # noqa: F401  (registers "pix2pix": paired data, docs/ablations.md)
from . import bigan, cogan, feature_gan, simgan  # noqa: F401  (the paper's baselines: docs/baselines.md)
from . import cut  # noqa: F401  (registers "cut" and "fastcut": one-sided, contrastive; docs/cut.md)
from .base import METHODS, Method, NetSpec, create_method

__all__ = ["METHODS", "Method", "NetSpec", "create_method"]
