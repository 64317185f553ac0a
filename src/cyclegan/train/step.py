"""One optimisation step: generator phase (D frozen), then discriminator phase. No I/O, no devices."""

from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from ..runtime import autocast, resolve_precision
from .state import TrainState, update_ema

GradReducer = Callable[[Iterable[nn.Parameter]], None]


def set_requires_grad(nets: Iterable[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def _backward_step(
    loss: torch.Tensor,
    opt: torch.optim.Optimizer,
    params: list,
    scaler,
    reduce_grads: GradReducer | None,
    *,
    guard=None,
    phase: str = "G",
) -> bool:
    """Backward, reduce, then the optimizer step, unless `guard` (train/guard.py) finds a non-finite value
    (returns False then)."""
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if reduce_grads is not None:
        reduce_grads(params)
    if guard is not None and not guard.phase_ok(phase, loss, params, scaled=scaler is not None):
        opt.zero_grad(set_to_none=True)
        return False
    if scaler is not None:
        scaler.step(opt)
    else:
        opt.step()
    return True


def train_step(
    state: TrainState, batch: dict, reduce_grads: GradReducer | None = None, guard=None
) -> dict[str, torch.Tensor]:
    """Update the generators on Eq. 3 with the discriminators frozen, then the discriminators on
    their halved Eq. 1 with fakes from the history pools. Returns detached loss terms (no sync).

    `reduce_grads(params)` is called between backward and the optimizer step of each phase (the
    distributed loop passes an all-reduce; a single process passes nothing).

    Nothing here waits for the device: losses stay on it until the caller reads them (the loop does
    every `train.log_every` steps). With fp16 the grad scaler's inf check is the one exception, and `guard`
    (the divergence guard, train/guard.py) another: it skips a phase whose loss or gradients are not finite.
    """
    method, nets = state.method, state.nets
    device_type = batch["A"].device.type
    precision = resolve_precision(state.cfg.train.precision, device_type)
    if state.cfg.train.compile == "true" and device_type == "cuda":
        torch.compiler.cudagraph_mark_step_begin()  # CUDA-graph outputs of the last step may be reused
    gens = [nets[n] for n in method.generators]
    discs = [nets[n] for n in method.discriminators]

    set_requires_grad(discs, False)
    state.opt_g.zero_grad(set_to_none=True)
    with autocast(device_type, precision):
        terms, fakes = method.generator_loss(nets, batch)
    loss_g = torch.stack([t.float() for t in terms.values()]).sum()
    g_ok = _backward_step(
        loss_g,
        state.opt_g,
        [p for g in gens for p in g.parameters()],
        state.scaler,
        reduce_grads,
        guard=guard,
        phase="G",
    )
    set_requires_grad(discs, True)
    if state.ema is not None and g_ok:
        update_ema(state.ema, nets, state.cfg.optim.ema_decay, state.step)

    out = {k: v.detach() for k, v in terms.items()}
    if not g_ok:  # skipped by the guard: no non-finite fake enters a pool, nor the discriminators
        state.step += 1
        return out
    if state.opt_d is not None and fakes:
        state.opt_d.zero_grad(set_to_none=True)
        pooled = {name: state.pools[name].query(fake) for name, fake in fakes.items()}
        with autocast(device_type, precision):
            d_terms = method.discriminator_loss(nets, batch, pooled)
        loss_d = torch.stack([t.float() for t in d_terms.values()]).sum()
        active = [p for n in fakes for p in nets[n].parameters()]
        _backward_step(loss_d, state.opt_d, active, state.scaler, reduce_grads, guard=guard, phase="D")
        out.update({k: v.detach() for k, v in d_terms.items()})
    if state.scaler is not None:
        state.scaler.update()
    state.step += 1
    return out
