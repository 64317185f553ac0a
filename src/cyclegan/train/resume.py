"""Continuing a run: its saved state and config, what a resume may change, and loading the state back."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..config import Config
from ..distributed import rank_part, saved_world_size, select_rank_state
from ..errors import UserError
from .checkpointing import load_resume
from .state import TrainState

# Settings that do not change what a run computes: where it stops, what it logs, saves, shows and evaluates
# (in-training evaluation leaves training untouched, tests/train/test_train_evaluation.py), where the data lies
# and how many processes load it (items are keyed by (epoch, index)).
NEUTRAL_ON_RESUME = (
    {
        f"train.{k}"
        for k in (
            "max_steps",
            "log_every",
            "sample_every",
            "save_every_epochs",
            "checkpoint_minutes",
            "progress",
            "eval_every_epochs",
            "eval_metric",
            "eval_images",
            "eval_classifier",
            "eval_root",
            "max_bad_steps",
            "max_loss",
        )
    }
    | {f"data.{k}" for k in ("root", "dir_a", "dir_b", "workers")}
    | {f"log.{k}" for k in ("wandb", "wandb_project", "wandb_run")}
)


def changed_settings(before: Config, after: Config) -> list[str]:
    """ "section.field old -> new" for each setting that differs and changes what the run computes (not those of
    NEUTRAL_ON_RESUME, nor the model, which is kept as saved on resume)."""
    a, b = before.to_dict(), after.to_dict()
    return [
        f"{section}.{key} {a[section][key]!r} -> {b[section][key]!r}"
        for section in a
        if section != "model"
        for key in a[section]
        if a[section][key] != b[section][key] and f"{section}.{key}" not in NEUTRAL_ON_RESUME
    ]


def read_resume(cfg: Config, run_dir: Path) -> tuple[dict, bool, list[str]]:
    """The saved state; whether the images change shape (the pools then restart empty); the settings changed.
    The networks stay what was saved; everything else (epochs, steps, data location, device, loss weights)
    may be changed on resume by the caller's cfg, which this adjusts in place."""
    tree, saved = load_resume(run_dir)
    if cfg.model != saved.model:
        warnings.warn(
            f"{run_dir}: resuming with the saved model config; the model changes asked for are ignored", stacklevel=2
        )
        cfg.model = saved.model
    if cfg.train.init_from != saved.train.init_from:
        raise UserError(
            f"{run_dir}: train.init_from starts a new run from saved weights; a resumed run continues "
            f"from its own state, so leave it as it was ({saved.train.init_from!r})"
        )
    for key in ("precision", "channels_last", "winograd", "compile"):  # "auto" keeps what the run chose when it started
        if getattr(cfg.train, key) == "auto":
            setattr(cfg.train, key, getattr(saved.train, key))
    changed = changed_settings(saved, cfg)  # said once the resume is sure to go ahead
    shape = ("crop_size", "load_size", "preprocess", "channels_a", "channels_b", "direction")
    reshaped = any(getattr(cfg.data, k) != getattr(saved.data, k) for k in shape)
    if reshaped:
        warnings.warn(
            f"{run_dir}: the images change shape on resume, so the history pools start empty again "
            "(not an exact continuation)",
            stacklevel=2,
        )
    return tree, reshaped, changed


def restore(
    state: TrainState, tree: dict, *, run_dir: Path, device: torch.device, rank: int, world_size: int, clear_pools: bool
) -> None:
    """Load a resume state into a freshly built one (this rank's part of it)."""
    if rank == 0 and saved_world_size(tree) != world_size:
        warnings.warn(
            f"{run_dir} was saved by {saved_world_size(tree)} process(es) and resumes under {world_size}: "
            "data shards, pools and RNG streams differ, so this is not an exact continuation",
            stacklevel=2,
        )
    state.load_state_dict(select_rank_state(tree, rank, rank_part(state.state_dict())), device)
    at = state.epoch + (1 if state.batch_in_epoch else 0)  # epochs begun
    if at > state.total_epochs:
        raise UserError(
            f"{run_dir} has reached epoch {at}, beyond the {state.total_epochs} epoch(s) of the schedule "
            f"given now (optim.n_epochs + optim.n_epochs_decay); give at least {at} in all "
            "(--epochs / --epochs-decay)"
        )
    for pool in state.pools.values() if clear_pools else ():
        pool.clear()
