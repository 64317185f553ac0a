"""Saving and reading a run's checkpoints: the resume state (everything) and the inference snapshot (models)."""

from __future__ import annotations

from pathlib import Path

from .. import checkpoint as ckpt
from ..config import Config
from ..distributed import barrier, gather_rank_parts
from ..errors import UserError
from .state import TrainState


def model_meta(state: TrainState) -> dict:
    """What inference needs: method, network specs, directions, the config, and the position."""
    m = state.method
    return {
        "method": m.name,
        "specs": {k: s.to_dict() for k, s in m.specs().items() if k in m.inference_nets()},
        "directions": dict(m.directions),
        "config": state.cfg.to_dict(),
        "step": state.step,
        "epoch": state.epoch,
    }


def save_checkpoint(
    state: TrainState, run_dir: Path, snapshot_tag: str | None = None, *, rank: int = 0, world_size: int = 1
) -> None:
    """Write latest.state + latest.model (atomically); also `<tag>.model` when given.

    With world_size > 1 every rank must call this (a collective): the ranks' RNG and pools are
    gathered into rank 0's state file (under "ranks"), rank 0 alone writes, and every rank returns
    once the files are written.
    """
    tree = state.state_dict()
    if world_size > 1:
        tree["world_size"], tree["ranks"] = world_size, gather_rank_parts(tree)
    if rank == 0:
        d = run_dir / "checkpoints"
        meta = model_meta(state)
        # rotated: the state before stays as previous.state.safetensors
        ckpt.save_state(d / "latest.state.safetensors", tree, {"format": ckpt.FORMAT_STATE, **meta})
        inference = state.inference_nets()
        ckpt.save_model(d / "latest.model.safetensors", inference, meta)
        if snapshot_tag:
            ckpt.save_model(d / f"{snapshot_tag}.model.safetensors", inference, meta)
    barrier()


def load_resume(run_dir: Path) -> tuple[dict, Config]:
    """The resume state of a run directory and the config it was saved with."""
    path = ckpt.resume_state(run_dir)  # latest, or previous (with a warning) where latest is damaged
    tree, meta = ckpt.load_tree(path)
    if meta.get("format") != ckpt.FORMAT_STATE:
        raise UserError(f"{path}: not a resume state (format {meta.get('format')!r})")
    return tree, Config.from_dict(meta["config"])
