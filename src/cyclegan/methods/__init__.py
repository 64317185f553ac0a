"""Training methods: a registry of Method classes (networks + the two loss phases), and config validation.

Importing this package registers every method.
"""

from . import cyclegan  # noqa: F401  (registers "cyclegan")
from . import pix2pix  # noqa: F401  (registers "pix2pix": paired data, docs/ablations.md)
from . import bigan, cogan, feature_gan, simgan  # noqa: F401  (the paper's baselines: docs/baselines.md)
from . import cut  # noqa: F401  (registers "cut" and "fastcut": one-sided, contrastive; docs/cut.md)
from .base import METHODS, Method, NetSpec, create_method
from .validate import validate

__all__ = ["METHODS", "Method", "NetSpec", "create_method", "validate"]
