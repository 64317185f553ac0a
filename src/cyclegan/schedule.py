"""Learning-rate policies, as pure functions of the epoch (plus a small state for `plateau`).

`linear` is the paper's: "keep the same learning rate for the first 100 epochs and linearly decay the
rate to zero over the next 100 epochs" (Sec. 4), with the reference's exact factors
1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1) for 0-based epoch e.
"""

from __future__ import annotations

import math

from .errors import UserError

POLICIES = ("linear", "step", "cosine", "plateau")


def lr_factor(
    policy: str,
    epoch: int,
    n_epochs: int = 100,
    n_epochs_decay: int = 100,
    *,
    decay_epochs: int = 50,
    gamma: float = 0.1,
    plateau_factor: float = 1.0,
) -> float:
    """Multiplier of the base lr during 0-based `epoch`."""
    if policy == "linear":
        return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)
    if policy == "step":
        return gamma ** (epoch // decay_epochs)
    if policy == "cosine":
        total = max(1, n_epochs + n_epochs_decay)
        return 0.5 * (1.0 + math.cos(math.pi * min(epoch, total) / total))
    if policy == "plateau":
        return plateau_factor
    raise UserError(f"unknown lr policy {policy!r}; choose one of: {', '.join(POLICIES)}")


def plateau_update(state: dict, metric: float, patience: int, gamma: float, threshold: float = 1e-4) -> dict:
    """ReduceLROnPlateau (mode min, relative threshold): returns the new {best, bad_epochs, factor}."""
    best, bad, factor = state.get("best", math.inf), state.get("bad_epochs", 0), state.get("factor", 1.0)
    if metric < best * (1 - threshold):
        best, bad = metric, 0
    else:
        bad += 1
        if bad > patience:
            factor, bad = factor * gamma, 0
    return {"best": best, "bad_epochs": bad, "factor": factor}
