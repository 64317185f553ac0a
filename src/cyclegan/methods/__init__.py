"""Training methods: a registry of Method classes (networks + the two loss phases), and config validation.

Importing this package registers every method.
"""

from . import (  # noqa: F401  (the paper's baselines: docs/baselines.md)
    bigan,
    cogan,
    cut,  # noqa: F401  (registers "cut" and "fastcut": one-sided, contrastive; docs/cut.md)
    cyclegan,  # noqa: F401  (registers "cyclegan")
    feature_gan,
    pix2pix,  # noqa: F401  (registers "pix2pix": paired data, docs/ablations.md)
    simgan,
)
from .base import METHODS, Method, NetSpec, create_method
from .validate import validate

__all__ = ["METHODS", "Method", "NetSpec", "create_method", "validate"]
