"""Training: state (what is checkpointed), step (one optimisation step), loop (everything else)."""

from .loop import TrainResult, resolve_device, save_checkpoint, train
from .state import TrainState, create_state
from .step import train_step

__all__ = ["TrainResult", "TrainState", "create_state", "resolve_device", "save_checkpoint", "train", "train_step"]
