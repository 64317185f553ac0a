"""Training: state (what is checkpointed), step (one optimisation step), loop (everything else)."""

from .checkpointing import save_checkpoint
from .loop import TrainResult, train
from .state import TrainState, create_state
from .step import train_step

__all__ = ["TrainResult", "TrainState", "create_state", "save_checkpoint", "train", "train_step"]
