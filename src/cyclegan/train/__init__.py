"""Training: state (what is checkpointed), step (one optimisation step), loop (everything else)."""

import sys
import types

from .loop import TrainResult, resolve_device, save_checkpoint, train
from .state import TrainState, create_state
from .step import train_step

__all__ = ["TrainResult", "TrainState", "create_state", "resolve_device", "save_checkpoint", "train", "train_step"]


class _CallableModule(types.ModuleType):
    """`cyclegan.train(cfg, run_dir)` is `cyclegan.train.train(cfg, run_dir)`: the short form of the top-level API."""

    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
