"""The divergence guard: a non-finite loss or gradient never reaches the weights, and a diverging run stops.

Each phase of a step (generators, then discriminators) is checked after backward (and, distributed, after the
gradient all-reduce), before its optimizer step: if the phase's loss or any gradient is NaN or infinite, that
phase's update is skipped (a generator phase skipped skips the rest of the step too, so no NaN image enters a
history pool). `train.max_bad_steps` such steps in a row, or a phase loss above `train.max_loss` in absolute
value, stop the run with `TrainingDiverged` (exit status 4). While steps are being skipped the loop saves,
samples and evaluates nothing (`healthy`), so checkpoints/latest.state.safetensors stays the last good state.

Precision: under bf16 autocast the losses and the weights' gradients are float32 (autocast computes in bf16
but its range is float32's), so an overflow to inf means what it means in fp32: divergence. Under fp16 the
grad scaler already skips steps whose scaled gradients overflow (and lowers its scale): that is normal
there, so the guard checks only the (unscaled) loss and leaves gradients to the scaler.

Cost: one pass over the gradients and one host-device sync per phase (the loss and the largest gradient norm in
one transfer): about 1% of a CPU step at 128/resnet_6blocks (benchmarks/loop_overhead.py); on a GPU the pipeline
drains once per phase. `train.max_bad_steps=0` turns the guard off.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..distributed import any_rank
from ..errors import UserError

PHASES = {"G": "the generators' loss", "D": "the discriminators' loss"}


class TrainingDiverged(UserError):
    """The run diverged (non-finite or exploding losses): one line, exit status 4, nothing saved."""

    exit_code = 4


class DivergenceGuard:
    """Called by the step (`phase_ok`) before each optimizer step and by the loop (`after_step`) after each step."""

    def __init__(self, *, max_bad_steps: int, max_loss: float = 0.0):
        self.max_bad_steps = max_bad_steps
        self.max_loss = max_loss
        self.bad_in_row = 0  # steps in a row with a skipped phase (not checkpointed: a resume starts at 0)
        self.skipped_total = 0
        self._problem = ""  # what went wrong in the current step ("" = nothing)
        self._over_bound = False

    @classmethod
    def from_config(cls, cfg) -> DivergenceGuard | None:
        if cfg.train.max_bad_steps == 0:
            return None
        return cls(max_bad_steps=cfg.train.max_bad_steps, max_loss=cfg.train.max_loss)

    def phase_ok(self, phase: str, loss: torch.Tensor, params, *, scaled: bool) -> bool:
        """False (skip this phase's optimizer step) if `loss` or a gradient of `params` is non-finite, or the loss
        is above the bound. `scaled`: fp16 with a grad scaler, which handles overflowing gradients itself."""
        values = [loss.detach().float().reshape(())]
        grads = [p.grad for p in params if p.grad is not None] if not scaled else []
        if grads:  # the gradients' 2-norms: NaN or inf when some gradient is (or when they pass ~1e19, where
            # squares overflow: a run that has diverged anyway). The max-norm would say the same at 6x the cost
            # (a scalar loop in PyTorch's CPU kernel: 24 ms against 2.4 ms per phase at 128/resnet_6blocks).
            values.append(torch.stack(torch._foreach_norm(grads, 2)).float().max())
        loss_value, *grad_max = torch.stack([v.to(values[0].device) for v in values]).tolist()
        bad = not math.isfinite(loss_value) or (grad_max and not math.isfinite(grad_max[0]))
        over = not bad and self.max_loss > 0 and abs(loss_value) > self.max_loss
        bad, over = any_rank(bad, over)  # the ranks' losses differ: all skip if any must
        if bad and not self._problem:
            what = PHASES[phase]
            self._problem = (
                f"{what} is {loss_value:g}"
                if not math.isfinite(loss_value)
                else f"a gradient of {what} is {grad_max[0]:g}"
                if grad_max
                else f"{what} is not finite"
            )
        if over and not self._problem:
            self._problem = f"{PHASES[phase]} is {loss_value:.3g}, above train.max_loss={self.max_loss:g}"
            self._over_bound = True
        return not (bad or over)

    def after_step(self, state, run_dir: Path) -> None:
        """Count the step; raise TrainingDiverged when the run must stop."""
        problem, over = self._problem, self._over_bound
        self._problem, self._over_bound = "", False
        if not problem:
            self.bad_in_row = 0
            return
        self.bad_in_row += 1
        self.skipped_total += 1
        if over or self.bad_in_row >= self.max_bad_steps:
            raise TrainingDiverged(diverged_message(state, run_dir, problem, bad_in_row=0 if over else self.bad_in_row))


def healthy(guard: DivergenceGuard | None) -> bool:
    """Whether the run may save, sample and evaluate now: not in the middle of a run of skipped steps (whose cause,
    often the last applied step, may already have spoiled the weights)."""
    return guard is None or guard.bad_in_row == 0


def diverged_message(state, run_dir: Path, problem: str, *, bad_in_row: int) -> str:
    """One line: what happened, what was kept, the likely cause and what to change."""
    from .. import checkpoint as ckpt

    cfg = state.cfg
    latest = Path(run_dir) / "checkpoints" / "latest.state.safetensors"
    try:
        step = ckpt.read_meta(latest).get("step")
        kept = (
            f"nothing was saved over the last good checkpoint, {latest} (step {step})",
            f"continue from it with: cyclegan train --resume {run_dir} --set optim.lr=<smaller>",
        )
    except UserError:
        kept = "nothing was saved (no checkpoint had been saved yet)", "start again with a smaller optim.lr"
    streak = (
        f" ({bad_in_row} step(s) in a row with non-finite values, each skipped; train.max_bad_steps="
        f"{cfg.train.max_bad_steps})"
        if bad_in_row
        else ""
    )
    causes = [f"a learning rate too high (optim.lr={cfg.optim.lr:g}; the paper's is 2e-4)"]
    if cfg.train.precision in ("fp16", "auto", "bf16"):
        causes.append(f"the precision (train.precision={cfg.train.precision}; try fp32)")
    return (
        f"training diverged at step {state.step}: {problem}{streak}; {kept[0]}. Likely cause: "
        f"{' or '.join(causes)}; {kept[1]}"
    )
