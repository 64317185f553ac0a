"""Which dataset a method trains on."""

from __future__ import annotations

from ..config import Config
from ..data import build_unaligned


def build_dataset(cfg: Config):
    """Unpaired trainA/trainB folders for CycleGAN-style methods; methods that need other data
    (paired pix2pix) provide `build_dataset(cfg)` on their class."""
    from ..methods import METHODS

    method_cls = METHODS.get(cfg.model.method)
    builder = getattr(method_cls, "build_dataset", None)
    if builder is not None:
        return builder(cfg)
    return build_unaligned(cfg.data, cfg.train.seed, cfg.train.batch_size)
