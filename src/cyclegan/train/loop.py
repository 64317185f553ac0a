"""The training loop: a function of the resolved config. Data, logging, samples and checkpoints live here; the
maths is in step.py and methods/, what is saved in state.py and checkpointing.py.

    train(cfg, run_dir)
      resume?        resume.read_resume: the saved state and config, and what changed
      set-up         validate, device, threads; dataset, networks, optimizers, pools (create_state); restore
      epochs         _run_epoch: lr for the epoch, then train_step per batch; log, sample, timed save, stop
      epoch end      plateau, evaluation hook (saved before it, see _end_epoch), sample grid, checkpoint (+ snapshot
                     every k epochs)
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .. import machine
from ..compiling import COMPILE_MIN_STEPS, persistent_compile_cache, resolve_compile
from ..config import Config
from ..data import EpochBatchSampler
from ..distributed import (
    any_rank,
    from_rank0,
    local_batchnorm,
    mean_over_ranks,
    prepare_nets,
)
from ..methods import validate
from ..runtime import (
    PRECISIONS,
    precision_note,
    process_settings,
    resolve_channels_last,
    resolve_device,
    resolve_precision,
    resolve_winograd,
)
from ..schedule import lr_factor, plateau_update
from .checkpointing import save_checkpoint
from .datasets import build_dataset
from .guard import DivergenceGuard, healthy
from .init_from import describe
from .lock import RunLock
from .logger import Logger
from .preempt import EvaluationAbandoned, StopSignals, worker_init
from .resume import read_resume, restore
from .samples import sample_batch, save_sample_grid, to_device
from .state import TrainState, check_crop_size, create_state
from .step import train_step


@dataclass
class TrainResult:
    state: TrainState
    run_dir: Path
    stopped_early: bool
    seconds: float
    interrupted: bool = False  # stopped by a signal (Ctrl-C, SIGTERM, SIGUSR1), rather than at train.max_steps
    preempted: bool = False  # that signal was SIGTERM or SIGUSR1 (train/preempt.py)


def train(
    cfg: Config,
    run_dir: str | Path,
    resume: bool = False,
    *,
    rank: int = 0,
    world_size: int = 1,
    reduce_grads=None,
    hooks=None,
) -> TrainResult:
    """Train `cfg` in `run_dir` (or continue the run there with resume=True).

    Stops after n_epochs + n_epochs_decay epochs, or at train.max_steps, or on Ctrl-C; each of these
    leaves a resume state in run_dir/checkpoints. `reduce_grads` (distributed: an all-reduce) runs between
    backward and each optimizer step; `hooks` (optional) gets `epoch_end(state, run_dir)` calls, used for
    in-training evaluation. Rank 0 holds the run's lock (train/lock.py) while it trains: a second process
    training the same run directory stops with RunInUse instead of saving over this one's checkpoints.
    """
    run_dir = Path(run_dir)
    with RunLock(run_dir, enabled=rank == 0) as lock:
        if run_dir.exists():  # before the resume state is read: another process may be writing it
            lock.acquire()
        t0 = time.time()
        tree, reshaped, changed = read_resume(cfg, run_dir) if resume else (None, False, [])
        device = resolve_device(cfg.train.device)
        if device.type == "cuda" and device.index is None:  # under torchrun, DistContext made cuda:LOCAL_RANK current
            device = torch.device("cuda", torch.cuda.current_device())
        validate(cfg)
        note = precision_note(cfg.train.precision, device)
        t = cfg.train
        asked = t.precision
        channels_last = resolve_channels_last(t.channels_last, device.type, t.precision, t.winograd)
        winograd = resolve_winograd(t.winograd, device.type, t.precision)
        t.precision = resolve_precision(t.precision, device.type)  # config.json records the choices
        # a measured choice (runtime.cpu_bf16_speedup) could come out differently on each rank: rank 0's holds
        chosen, channels_last, winograd = from_rank0(PRECISIONS.index(t.precision), channels_last, winograd)
        t.precision, channels_last, winograd = PRECISIONS[chosen], bool(channels_last), bool(winograd)
        t.channels_last, t.winograd = ("true" if channels_last else "false"), ("true" if winograd else "false")
        if rank == 0:
            lines = [note]
            if channels_last:
                lines.append("channels_last memory format")
            if winograd:
                hint = " (--precision fp32: strict, direct convolutions)" if asked == "auto" else ""
                lines.append("3x3 convolutions by Winograd F(4x4, 3x3)" + hint)
            print("; ".join(lines), flush=True)
        if device.type == "cpu" and cfg.train.precision == "fp16":
            warnings.warn(
                "train.precision=fp16 on a CPU: float16 is emulated there, several times slower than "
                "fp32; bf16 (or auto) is the fast precision on CPUs",
                stacklevel=2,
            )
        with process_settings(cfg.train.threads, device, cfg.train.precision):
            dataset = build_dataset(cfg)
            check_crop_size(cfg)
            _resolve_compile(cfg, device=device, steps=_planned_steps(cfg, len(dataset), world_size), verbose=rank == 0)
            state = create_state(cfg, device, rank, init_from=tree is None)
            if rank == 0 and state.initialised:
                print(describe(state.initialised, state.nets), flush=True)
            if tree is not None:
                restore(
                    state, tree, run_dir=run_dir, device=device, rank=rank, world_size=world_size, clear_pools=reshaped
                )
                del tree
            if rank == 0:  # after the resume state has loaded: a resume that fails leaves the run's config as it was
                if changed:
                    warnings.warn(
                        f"{run_dir}: resuming with changed settings ({'; '.join(changed)}): from here on the "
                        "run differs from the one it continues",
                        stacklevel=2,
                    )
                run_dir.mkdir(parents=True, exist_ok=True)
                lock.acquire()  # a new run: from when its folder exists
                (run_dir / "config.json").write_text(cfg.to_json() + "\n")
                machine.record(run_dir, device, step=state.step, world_size=world_size)  # what made those choices
            if world_size > 1:
                state.nets = prepare_nets(state.nets, device)
            loop = _Loop(
                cfg,
                run_dir,
                state,
                dataset,
                device=device,
                rank=rank,
                world_size=world_size,
                reduce_grads=reduce_grads,
                hooks=hooks,
            )
            stopped_early, stop = loop.run()
        return TrainResult(state, run_dir, stopped_early, time.time() - t0, stop.requested, stop.preempted)


def _planned_steps(cfg: Config, images: int, world_size: int) -> int:
    per_epoch = -(-images // (cfg.train.batch_size * world_size))
    steps = (cfg.optim.n_epochs + cfg.optim.n_epochs_decay) * per_epoch
    return min(steps, cfg.train.max_steps) if cfg.train.max_steps else steps


def _resolve_compile(cfg: Config, *, device: torch.device, steps: int, verbose: bool) -> None:
    """train.compile "auto" -> "true"/"false" for this run (config.json records it); say so when it compiles."""
    auto = cfg.train.compile == "auto"
    on = resolve_compile(cfg.train.compile, device=device, steps=steps)
    cfg.train.compile = "true" if on else "false"
    if on:
        cache = persistent_compile_cache(os.environ)
        if verbose:
            why = f"auto: {steps} steps, more than {COMPILE_MIN_STEPS}" if auto else "as asked"
            print(
                f"compile: torch.compile ({why}); the first step compiles for minutes; kernels cached in {cache}; "
                "--set train.compile=false to skip",
                flush=True,
            )


def _workers(n: int) -> int:
    if n >= 0:
        return n
    return max(0, min(4, (os.cpu_count() or 1) - 1))


class _Loop:
    """The epochs of one run; its parts are the loop's phases, its fields what they share."""

    def __init__(
        self,
        cfg: Config,
        run_dir: Path,
        state: TrainState,
        dataset,
        *,
        device: torch.device,
        rank: int,
        world_size: int,
        reduce_grads,
        hooks,
    ):
        self.cfg, self.run_dir, self.state, self.device = cfg, run_dir, state, device
        self.rank, self.world_size, self.reduce_grads, self.hooks = rank, world_size, reduce_grads, hooks
        self.is_main = rank == 0
        self.sampler = EpochBatchSampler(len(dataset), cfg.train.batch_size, cfg.train.seed, rank, world_size)
        workers = _workers(cfg.data.workers)
        # Its own generator: each new iterator draws a base seed, which must not come from the global RNG
        # (dropout, gradient penalty), or a resume mid-epoch would shift that stream.
        self.loader = DataLoader(
            dataset,
            batch_sampler=self.sampler,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
            prefetch_factor=4 if workers else None,
            worker_init_fn=worker_init,
            generator=torch.Generator().manual_seed(cfg.train.seed),
        )
        self.sample_batch = sample_batch(dataset, device, channels_last=state.channels_last)
        self.steps_per_epoch = len(self.sampler)
        self.last_save = time.time()

    def run(self) -> tuple[bool, StopSignals]:
        """All epochs (or up to a stop); returns (stopped early, the signals that stopped it if any)."""
        cfg, state = self.cfg, self.state
        total = state.total_epochs * self.steps_per_epoch
        total = min(total, cfg.train.max_steps) if cfg.train.max_steps else total
        self.stop = StopSignals()  # Ctrl-C, SIGTERM, SIGUSR1: finish the step, save, stop
        self.guard = DivergenceGuard.from_config(cfg)  # non-finite steps skipped; a diverging run stops, saving nothing
        self.logger = Logger(
            self.run_dir,
            enabled=self.is_main,
            total_steps=total,
            initial_step=state.step,
            show_progress=cfg.train.progress,
            cfg=cfg,
        )
        try:
            # the last process ended during the evaluation at this epoch boundary: it comes first
            stopped_early = state.eval_pending and not self._evaluate()
            stopped_early = stopped_early or bool(cfg.train.max_steps and state.step >= cfg.train.max_steps)
            while state.epoch < state.total_epochs and not stopped_early:
                stopped_early = self._run_epoch() or not self._end_epoch()
            if stopped_early and healthy(self.guard) and not state.eval_pending:  # pending: saved before it
                self._save()
        finally:
            self.stop.restore()
            self.logger.close()
        return stopped_early, self.stop

    def _save(self, tag: str | None = None) -> None:
        save_checkpoint(self.state, self.run_dir, tag, rank=self.rank, world_size=self.world_size)
        self.last_save = time.time()

    def _set_lr(self) -> float:
        o, state = self.cfg.optim, self.state
        lr = o.lr * lr_factor(
            o.lr_policy,
            state.epoch,
            o.n_epochs,
            o.n_epochs_decay,
            decay_epochs=o.lr_decay_epochs,
            gamma=o.lr_gamma,
            plateau_factor=state.plateau.get("factor", 1.0),
        )
        for opt in (state.opt_g, state.opt_d):
            for group in opt.param_groups if opt is not None else ():
                group["lr"] = lr
        return lr

    def _run_epoch(self) -> bool:
        """The rest of the current epoch; True when the run stops inside it (max_steps, Ctrl-C)."""
        cfg, state, logger = self.cfg, self.state, self.logger
        epoch, lr = state.epoch, self._set_lr()
        self.sampler.set_epoch(epoch, state.batch_in_epoch)
        logger.describe(f"epoch {epoch + 1}/{state.total_epochs}")
        sums: dict[str, torch.Tensor] = {}
        self.epoch_sums: dict[str, float] = {}
        n_sum, self.n_epoch, t_log = 0, 0, time.time()
        for batch in self.stop.batches(self.loader):
            state.skipped_images += int(batch["skipped"].sum())
            batch = {
                k: to_device(v, self.device, channels_last=state.channels_last)
                for k, v in batch.items()
                if k in ("A", "B")
            }
            terms = train_step(state, batch, self.reduce_grads, self.guard)
            if self.guard is not None:
                self.guard.after_step(state, self.run_dir)
            state.batch_in_epoch += 1
            for k, v in terms.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
            n_sum += 1
            logger.advance()
            at_max = bool(cfg.train.max_steps and state.step >= cfg.train.max_steps)
            if at_max or state.step % cfg.train.log_every == 0 or state.batch_in_epoch == self.steps_per_epoch:
                means = mean_over_ranks(sums, n_sum)  # the only host sync (and, distributed, an all-reduce)
                for k, v in means.items():
                    self.epoch_sums[k] = self.epoch_sums.get(k, 0.0) + v * n_sum
                self.n_epoch += n_sum
                rate = n_sum / max(time.time() - t_log, 1e-9)
                logger.log(
                    state.step,
                    {"epoch": epoch + state.batch_in_epoch / self.steps_per_epoch, "lr": lr, "it_per_s": rate, **means},
                    show=means,
                )
                sums, n_sum, t_log = {}, 0, time.time()
            if (
                self.is_main
                and cfg.train.sample_every
                and state.step % cfg.train.sample_every == 0
                and healthy(self.guard)
            ):
                self._sample(f"step_{state.step:07d}.png")
            if at_max:
                return True
            # Stopping and timed saves must happen on all ranks at the same step: distributed, the
            # ranks agree on them at log steps (one all-reduce); a single process checks every step.
            if self.world_size == 1 or state.step % cfg.train.log_every == 0:
                overdue = time.time() - self.last_save > cfg.train.checkpoint_minutes * 60
                stop_now, save_now = any_rank(self.stop.requested, overdue)
                if stop_now:
                    return True
                if save_now and healthy(self.guard):  # not in a run of skipped steps: the last good state stays
                    self._save()
        return self.stop.cut_short  # the loader was cut short by a signal

    def _end_epoch(self) -> bool:
        """The epoch's end; False when a stop signal abandoned its evaluation (the run stops, nothing more saved)."""
        cfg, state = self.cfg, self.state
        state.epoch += 1
        state.batch_in_epoch = 0
        if cfg.optim.lr_policy == "plateau" and self.n_epoch:
            metric = sum(v for k, v in self.epoch_sums.items() if not k.startswith("D_")) / self.n_epoch
            state.plateau = plateau_update(state.plateau, metric, cfg.optim.plateau_patience, cfg.optim.lr_gamma)
        if self.is_main and not cfg.train.sample_every and healthy(self.guard):
            self._sample(f"epoch_{state.epoch:04d}.png")
        if self.is_main:
            self.logger.log(
                state.step,
                {
                    "epoch_end": state.epoch,
                    "skipped_images": state.skipped_images,
                    **{f"epoch/{k}": v / max(self.n_epoch, 1) for k, v in self.epoch_sums.items()},
                },
            )
        k, every = cfg.train.save_every_epochs, cfg.train.eval_every_epochs
        tag = f"epoch_{state.epoch:04d}" if k and state.epoch % k == 0 else None
        if every and state.epoch % every == 0 and healthy(self.guard):
            # An evaluation can take minutes on a CPU, longer than a cluster's grace period between SIGTERM and
            # SIGKILL: the epoch's end (grid, log line, snapshot) is done and saved first, marked pending, so that a
            # process ended during the evaluation loses only it, which the resumed run does first (run). Decided
            # from the config, so every rank joins the save (the hook runs on rank 0 only).
            state.eval_pending = True
            self._save(tag)
        if not self._evaluate():
            return False
        if healthy(self.guard):
            self._save(tag)
        self.last_save = time.time()
        return True

    def _evaluate(self) -> bool:
        """The hook's end-of-epoch call (the in-training evaluation, rank 0 only); then nothing is pending.

        With the state before it saved (eval_pending), a stop signal does not wait for it: the evaluation is
        abandoned where it is (or not started, after a signal during the epoch's end) and False returned, so the
        run stops at once and resumes from that save, evaluating first; every rank learns it (one all-reduce)."""
        pending = self.state.eval_pending
        abandoned = finished = False
        if self.hooks is not None and healthy(self.guard):
            try:
                with local_batchnorm(self.state.nets), self.stop.abandoning(pending):
                    if pending and self.stop.requested:
                        raise EvaluationAbandoned
                    self.hooks.epoch_end(self.state, self.run_dir)
                    finished = True
            except EvaluationAbandoned:
                abandoned = not finished  # a signal just after the hook returned: its work is done and kept
        if self.world_size > 1:
            (abandoned,) = any_rank(abandoned)
        if abandoned:
            return False
        self.state.eval_pending = False
        return True

    def _sample(self, name: str) -> None:
        with local_batchnorm(self.state.nets):
            grid = save_sample_grid(self.state, self.sample_batch, self.run_dir / "samples" / name)
        self.logger.image("samples", grid, self.state.step)
