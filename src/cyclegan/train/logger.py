"""One logger for every sink of a training run: the terminal (progress bar), log.jsonl, TensorBoard and, when asked,
Weights & Biases.

Every line gets `wall_s`, the seconds of training so far, summed over resumed sessions (the model card reports it).
With `--set log.wandb=true` the same scalars, the in-training evaluation's values (read back from log.jsonl, which
that hook appends to) and the sample grids also go to W&B; `wandb` is imported only then (an optional dependency).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..errors import UserError
from ..progress import progress_bar


def previous_wall_time(log_file: Path) -> float:
    """The last `wall_s` a run's log.jsonl records (0 for a new run): where a resumed run's clock goes on from."""
    last = 0.0
    if log_file.is_file():
        for line in log_file.read_text().splitlines():
            if '"wall_s"' in line:
                try:
                    last = float(json.loads(line)["wall_s"])
                except (ValueError, KeyError, TypeError):  # a torn line of a killed run
                    continue
    return last


def open_wandb(log, cfg_dict: dict, run_dir: Path):
    """A W&B run for this training run (imports wandb: only called with log.wandb=true)."""
    try:
        import wandb
    except ImportError:
        raise UserError("log.wandb=true needs the wandb package: pip install wandb (or turn it off)") from None
    return wandb, wandb.init(
        project=log.wandb_project, name=log.wandb_run or run_dir.name, config=cfg_dict, dir=str(run_dir)
    )


class Logger:
    """Writes each record to log.jsonl, TensorBoard (and W&B) and shows its losses on the progress bar; on ranks
    other than 0 (`enabled=False`) it writes nothing and shows no bar."""

    def __init__(
        self, run_dir: Path, *, enabled: bool, total_steps: int, initial_step: int, show_progress: bool, cfg=None
    ):
        self.enabled, self.run_dir = enabled, Path(run_dir)
        self.log_file = self.run_dir / "log.jsonl"
        self.start, self.before = time.time(), previous_wall_time(self.log_file) if enabled else 0.0
        self.read_to = self.log_file.stat().st_size if enabled and self.log_file.is_file() else 0
        self.jsonl = open(self.log_file, "a") if enabled else None
        self.tb = self.wandb = self.wandb_run = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:  # tensorboard is a dependency, but keep training if it is broken
                self.tb = None
        self.bar = progress_bar(
            total=total_steps,
            initial=min(initial_step, total_steps),
            unit="it",
            dynamic_ncols=True,
            disable=not (enabled and show_progress),
        )
        if enabled and cfg is not None and cfg.log.wandb:
            try:
                self.wandb, self.wandb_run = open_wandb(cfg.log, cfg.to_dict(), self.run_dir)
            except BaseException:
                self.close()  # the files are open already
                raise

    def log(self, step: int, record: dict, *, show: dict[str, float] | None = None) -> None:
        """One record at `step` to every sink (numbers only, outside log.jsonl), with the wall time; `show` on the
        progress bar."""
        if show is not None:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in show.items()}, refresh=False)
        if not self.enabled:
            return
        record = {**record, "wall_s": round(self.before + time.time() - self.start, 3)}
        if self.wandb_run is not None:
            self._forward_evaluations()  # appended by the evaluation hook since the last line: earlier steps
        self.jsonl.write(json.dumps({"step": step, **record}) + "\n")
        self.jsonl.flush()
        scalars = _scalars(record)
        if self.tb is not None:
            for tag, v in scalars.items():
                self.tb.add_scalar(tag, v, step)
        if self.wandb_run is not None:
            self.read_to = self.log_file.stat().st_size  # our own line, forwarded here
            self.wandb_run.log(scalars, step=step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        """A (3, H, W) image in [0, 1] to TensorBoard's Images tab (and W&B's media panel)."""
        if self.tb is not None:
            self.tb.add_image(tag, image, step)
        if self.wandb_run is not None:
            array = (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
            self.wandb_run.log({tag: self.wandb.Image(array)}, step=step)

    def advance(self) -> None:
        """One step done: the progress bar moves."""
        self.bar.update(1)

    def describe(self, text: str) -> None:
        """The progress bar's label (the epoch)."""
        self.bar.set_description(text)

    def close(self) -> None:
        try:
            if self.wandb_run is not None:
                self._forward_evaluations()
                self.wandb_run.finish()
        finally:
            self.bar.close()
            if self.jsonl:
                self.jsonl.close()
            if self.tb is not None:
                self.tb.close()

    def _forward_evaluations(self) -> None:
        if not self.log_file.is_file():
            return
        with open(self.log_file) as f:
            f.seek(self.read_to)
            lines = f.readlines()
            self.read_to = f.tell()
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            scalars = {k: v for k, v in _scalars(record).items() if k.startswith("eval/")}
            if scalars:
                self.wandb_run.log(scalars, step=int(record["step"]))


def _scalars(record: dict) -> dict:
    """The numbers of a log line under TensorBoard's tags (loss/G_A, train/lr, eval/..., epoch/...)."""
    out = {}
    for k, v in record.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in ("epoch", "step"):
            out[k if "/" in k else f"train/{k}" if k in ("lr", "it_per_s", "wall_s") else f"loss/{k}"] = v
    return out
