"""The training loop: data, logging, samples, checkpoints. The maths is in step.py and methods/."""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.transforms.v2 import functional as TF
from torch.utils.data import DataLoader

from .. import checkpoint as ckpt
from ..config import Config, validate
from ..data import EpochBatchSampler
from ..distributed import (any_rank, barrier, gather_rank_parts, local_batchnorm, mean_over_ranks, prepare_nets, rank_part,
                           saved_world_size, select_rank_state)
from ..errors import UserError
from ..schedule import lr_factor, plateau_update
from .datasets import build_dataset
from .guard import DivergenceGuard, healthy
from .init_from import describe
from .preempt import StopSignals, worker_init
from .samples import save_sample_grid
from .state import TrainState, check_crop_size, create_state, resolve_precision
from .step import train_step


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"device {name!r}: cyclegan runs on cpu or cuda (auto picks a GPU if there is one)")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserError(f"device {name!r}: only {torch.cuda.device_count()} GPU(s) visible (cuda:0 to "
                        f"cuda:{torch.cuda.device_count() - 1}); CUDA_VISIBLE_DEVICES renumbers them from 0")
    return dev


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


def save_checkpoint(state: TrainState, run_dir: Path, snapshot_tag: str | None = None, rank: int = 0,
                    world_size: int = 1) -> None:
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
    path = ckpt.resume_state(run_dir)  # latest, or previous (with a warning) where latest is damaged
    tree, meta = ckpt.load_tree(path)
    if meta.get("format") != ckpt.FORMAT_STATE:
        raise UserError(f"{path}: not a resume state (format {meta.get('format')!r})")
    return tree, Config.from_dict(meta["config"])


@dataclass
class TrainResult:
    state: TrainState
    run_dir: Path
    stopped_early: bool
    seconds: float
    interrupted: bool = False  # stopped by a signal (Ctrl-C, SIGTERM, SIGUSR1), rather than at train.max_steps
    preempted: bool = False  # that signal was SIGTERM or SIGUSR1 (train/preempt.py)


class _Logger:
    """JSONL + TensorBoard, rank 0 only."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.enabled = enabled
        self.jsonl = open(run_dir / "log.jsonl", "a") if enabled else None
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is a dependency, but keep training if it is broken
                self.tb = None

    def log(self, step: int, record: dict) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, **record}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("epoch",):
                    self.tb.add_scalar(k if "/" in k else f"loss/{k}" if k not in ("lr", "it_per_s") else f"train/{k}", v, step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        """A (3, H, W) image in [0, 1] to TensorBoard's Images tab."""
        if self.tb is not None:
            self.tb.add_image(tag, image, step)

    def close(self) -> None:
        if self.jsonl:
            self.jsonl.close()
        if self.tb is not None:
            self.tb.close()


def _workers(n: int) -> int:
    if n >= 0:
        return n
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def train(cfg: Config, run_dir: str | Path, resume: bool = False, rank: int = 0, world_size: int = 1,
          reduce_grads=None, hooks=None) -> TrainResult:
    """Train `cfg` in `run_dir` (or continue the run there with resume=True).

    Stops after n_epochs + n_epochs_decay epochs, or at train.max_steps, or on Ctrl-C; each of these
    leaves a resume state in run_dir/checkpoints. `hooks` (optional) gets `epoch_end(state, run_dir)`
    calls, used for in-training evaluation.
    """
    run_dir = Path(run_dir)
    t0 = time.time()
    tree, reshaped, changed = None, False, []
    if resume:
        tree, saved = load_resume(run_dir)
        # The networks must stay what was saved; everything else (epochs, steps, data location, device,
        # loss weights) may be changed on resume by the caller's cfg.
        if cfg.model != saved.model:
            warnings.warn(f"{run_dir}: resuming with the saved model config; the model changes asked for are ignored")
            cfg.model = saved.model
        if cfg.train.init_from != saved.train.init_from:
            raise UserError(f"{run_dir}: train.init_from starts a new run from saved weights; a resumed run continues "
                            f"from its own state, so leave it as it was ({saved.train.init_from!r})")
        changed = changed_settings(saved, cfg)  # said once the resume is sure to go ahead
        shape = ("crop_size", "load_size", "preprocess", "channels_a", "channels_b", "direction")
        reshaped = any(getattr(cfg.data, k) != getattr(saved.data, k) for k in shape)
        if reshaped:
            warnings.warn(f"{run_dir}: the images change shape on resume, so the history pools start empty again "
                          "(not an exact continuation)")
    device = resolve_device(cfg.train.device)
    if device.type == "cuda" and device.index is None:  # under torchrun, DistContext made cuda:LOCAL_RANK current
        device = torch.device("cuda", torch.cuda.current_device())
    validate(cfg)
    if device.type == "cpu" and resolve_precision(cfg.train.precision, "cpu") == "fp16":
        warnings.warn("train.precision=fp16 on a CPU: float16 is emulated there, several times slower than "
                      "fp32; bf16 (or auto) is the fast precision on CPUs")
    with _process_settings(cfg.train.threads, device):
        return _train(cfg, run_dir, tree, reshaped, device, rank, world_size, reduce_grads, hooks, t0, changed)


# Settings that do not change what a run computes: where it stops, what it logs, saves, shows and evaluates
# (in-training evaluation leaves training untouched, tests/test_train_evaluation.py), where the data lies
# and how many processes load it (items are keyed by (epoch, index)).
NEUTRAL_ON_RESUME = {f"train.{k}" for k in ("max_steps", "log_every", "sample_every", "save_every_epochs",
                                            "checkpoint_minutes", "progress", "eval_every_epochs", "eval_metric",
                                            "eval_images", "eval_classifier", "eval_root", "max_bad_steps",
                                            "max_loss")} | \
                    {f"data.{k}" for k in ("root", "dir_a", "dir_b", "workers")}


def changed_settings(before: Config, after: Config) -> list[str]:
    """"section.field old -> new" for each setting that differs and changes what the run computes (not those of
    NEUTRAL_ON_RESUME, nor the model, which is kept as saved on resume)."""
    a, b = before.to_dict(), after.to_dict()
    return [f"{section}.{key} {a[section][key]!r} -> {b[section][key]!r}" for section in a if section != "model"
            for key in a[section] if a[section][key] != b[section][key] and f"{section}.{key}" not in NEUTRAL_ON_RESUME]


@contextlib.contextmanager
def _process_settings(threads: int, device: torch.device):
    """The process-wide switches a run needs, restored afterwards (train() is a library call too):
    cuDNN's autotuner and the current device on a GPU, the CPU thread count."""
    benchmark, n_threads = torch.backends.cudnn.benchmark, torch.get_num_threads()
    current = torch.cuda.current_device() if device.type == "cuda" else None
    try:
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.cuda.set_device(device)  # pinned-memory thread and new tensors default to the training GPU
        if threads:
            torch.set_num_threads(threads)
        yield
    finally:
        torch.backends.cudnn.benchmark = benchmark
        torch.set_num_threads(n_threads)
        if current is not None:
            torch.cuda.set_device(current)


def _train(cfg: Config, run_dir: Path, tree: dict | None, clear_pools: bool, device: torch.device, rank: int,
           world_size: int, reduce_grads, hooks, t0: float, changed: list[str]) -> TrainResult:
    is_main = rank == 0
    dataset = build_dataset(cfg)
    check_crop_size(cfg)
    state = create_state(cfg, device, rank, init_from=tree is None)
    if is_main and state.initialised:
        print(describe(state.initialised, state.nets), flush=True)
    if tree is not None:
        if is_main and saved_world_size(tree) != world_size:
            warnings.warn(f"{run_dir} was saved by {saved_world_size(tree)} process(es) and resumes under {world_size}: "
                          "data shards, pools and RNG streams differ, so this is not an exact continuation")
        state.load_state_dict(select_rank_state(tree, rank, rank_part(state.state_dict())), device)
        at = state.epoch + (1 if state.batch_in_epoch else 0)  # epochs begun
        if at > state.total_epochs:
            raise UserError(f"{run_dir} has reached epoch {at}, beyond the {state.total_epochs} epoch(s) of the schedule "
                            f"given now (optim.n_epochs + optim.n_epochs_decay); give at least {at} in all "
                            "(--epochs / --epochs-decay)")
        for pool in state.pools.values() if clear_pools else ():
            pool.clear()
        del tree
    if is_main:  # after the resume state has loaded: a resume that fails leaves the run's config as it was
        if changed:
            warnings.warn(f"{run_dir}: resuming with changed settings ({'; '.join(changed)}): from here on the run "
                          "differs from the one it continues")
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(cfg.to_json() + "\n")
    if world_size > 1:
        state.nets = prepare_nets(state.nets, device)

    sampler = EpochBatchSampler(len(dataset), cfg.train.batch_size, cfg.train.seed, rank, world_size)
    workers = _workers(cfg.data.workers)
    # Its own generator: each new iterator draws a base seed, which must not come from the global RNG
    # (dropout, gradient penalty), or a resume mid-epoch would shift that stream.
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, pin_memory=device.type == "cuda",
                        persistent_workers=workers > 0, prefetch_factor=4 if workers else None,
                        worker_init_fn=worker_init,
                        generator=torch.Generator().manual_seed(cfg.train.seed))
    sample_batch = _sample_batch(dataset, device, cfg.train.channels_last)
    logger = _Logger(run_dir, is_main)
    stop = StopSignals()  # Ctrl-C, SIGTERM, SIGUSR1: finish the step, save, stop
    guard = DivergenceGuard.from_config(cfg)  # non-finite steps skipped; a diverging run stops, saving nothing
    stopped_early = False
    last_save = time.time()
    steps_per_epoch = len(sampler)
    try:
        from ..progress import progress_bar

        total_steps = state.total_epochs * steps_per_epoch
        if cfg.train.max_steps:
            total_steps = min(total_steps, cfg.train.max_steps)
        bar = progress_bar(total=total_steps, initial=min(state.step, total_steps), unit="it", dynamic_ncols=True,
                           disable=not (is_main and cfg.train.progress))
        if cfg.train.max_steps and state.step >= cfg.train.max_steps:  # resumed at the step limit: nothing to do
            stopped_early = True
        while state.epoch < state.total_epochs and not stopped_early:
            epoch = state.epoch
            lr = cfg.optim.lr * lr_factor(cfg.optim.lr_policy, epoch, cfg.optim.n_epochs, cfg.optim.n_epochs_decay,
                                          cfg.optim.lr_decay_epochs, cfg.optim.lr_gamma, state.plateau.get("factor", 1.0))
            for opt in (state.opt_g, state.opt_d):
                if opt is not None:
                    for group in opt.param_groups:
                        group["lr"] = lr
            sampler.set_epoch(epoch, state.batch_in_epoch)
            bar.set_description(f"epoch {epoch + 1}/{state.total_epochs}")
            sums: dict[str, torch.Tensor] = {}
            epoch_sums: dict[str, float] = {}
            n_sum = n_epoch = 0
            t_log = time.time()
            for batch in stop.batches(loader):
                state.skipped_images += int(batch["skipped"].sum())
                batch = {k: _to_device(v, device, cfg.train.channels_last) for k, v in batch.items() if k in ("A", "B")}
                terms = train_step(state, batch, reduce_grads, guard)
                if guard is not None:
                    guard.after_step(state, run_dir)
                state.batch_in_epoch += 1
                for k, v in terms.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                n_sum += 1
                bar.update(1)
                at_max = bool(cfg.train.max_steps and state.step >= cfg.train.max_steps)
                if at_max or state.step % cfg.train.log_every == 0 or state.batch_in_epoch == steps_per_epoch:
                    means = mean_over_ranks(sums, n_sum)  # the only host sync (and, distributed, an all-reduce)
                    for k, v in means.items():
                        epoch_sums[k] = epoch_sums.get(k, 0.0) + v * n_sum
                    n_epoch += n_sum
                    rate = n_sum / max(time.time() - t_log, 1e-9)
                    logger.log(state.step, {"epoch": epoch + state.batch_in_epoch / steps_per_epoch, "lr": lr,
                                            "it_per_s": rate, **means})
                    bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()}, refresh=False)
                    sums, n_sum, t_log = {}, 0, time.time()
                if is_main and cfg.train.sample_every and state.step % cfg.train.sample_every == 0 and healthy(guard):
                    with local_batchnorm(state.nets):
                        grid = save_sample_grid(state, sample_batch, run_dir / "samples" / f"step_{state.step:07d}.png")
                    logger.image("samples", grid, state.step)
                if at_max:
                    stopped_early = True
                    break
                # Stopping and timed saves must happen on all ranks at the same step: distributed, the
                # ranks agree on them at log steps (one all-reduce); a single process checks every step.
                if world_size == 1 or state.step % cfg.train.log_every == 0:
                    stop_now, save_now = any_rank(stop.requested, time.time() - last_save > cfg.train.checkpoint_minutes * 60)
                    if stop_now:
                        stopped_early = True
                        break
                    if save_now and healthy(guard):  # not in a run of skipped steps: the last good state stays
                        save_checkpoint(state, run_dir, rank=rank, world_size=world_size)
                        last_save = time.time()
            if stopped_early or stop.cut_short:
                stopped_early = True
                break
            # end of epoch
            state.epoch += 1
            state.batch_in_epoch = 0
            if cfg.optim.lr_policy == "plateau" and n_epoch:
                metric = sum(v for k, v in epoch_sums.items() if not k.startswith("D_")) / n_epoch
                state.plateau = plateau_update(state.plateau, metric, cfg.optim.plateau_patience, cfg.optim.lr_gamma)
            if hooks is not None and healthy(guard):
                with local_batchnorm(state.nets):
                    hooks.epoch_end(state, run_dir)
            if is_main and not cfg.train.sample_every and healthy(guard):
                with local_batchnorm(state.nets):
                    grid = save_sample_grid(state, sample_batch, run_dir / "samples" / f"epoch_{state.epoch:04d}.png")
                logger.image("samples", grid, state.step)
            k = cfg.train.save_every_epochs
            tag = f"epoch_{state.epoch:04d}" if k and state.epoch % k == 0 else None
            if healthy(guard):
                save_checkpoint(state, run_dir, tag, rank, world_size)
            last_save = time.time()
            if is_main:
                logger.log(state.step, {"epoch_end": state.epoch, "skipped_images": state.skipped_images,
                                        **{f"epoch/{k}": v / max(n_epoch, 1) for k, v in epoch_sums.items()}})
        bar.close()
        if stopped_early and healthy(guard):
            save_checkpoint(state, run_dir, rank=rank, world_size=world_size)
    finally:
        stop.restore()
        logger.close()
    return TrainResult(state, run_dir, stopped_early, time.time() - t0, stop.requested, stop.preempted)


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x


def _sample_batch(dataset, device, channels_last, n: int = 4) -> dict:
    """A fixed batch for progress grids: the first n samples of a fixed epoch key."""
    items = [dataset[(-1, i)] for i in range(min(n, len(dataset)))]
    # images of several sizes (preprocess=none, scale_width): the centres, at the smallest size of all
    h = min(it[k].shape[-2] for it in items for k in ("A", "B"))
    w = min(it[k].shape[-1] for it in items for k in ("A", "B"))
    return {k: _to_device(torch.stack([TF.center_crop(it[k], [h, w]) for it in items]), device, channels_last) for k in ("A", "B")}
