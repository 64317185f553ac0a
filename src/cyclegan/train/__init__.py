"""Training: state (what is checkpointed), step (one optimisation step), loop (everything else)."""

import sys
import types

from .checkpointing import save_checkpoint
from .loop import TrainResult, train
from .state import TrainState, create_state
from .step import train_step

__all__ = ["TrainResult", "TrainState", "create_state", "save_checkpoint", "train", "train_step"]


class _CallableModule(types.ModuleType):
    """`cyclegan.train(cfg, run_dir)` is `cyclegan.train.train(cfg, run_dir)`: the short form of the top-level API
    (the attribute `cyclegan.train` is this package once it is imported, so the package itself is made callable)."""

    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
