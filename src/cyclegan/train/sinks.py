"""What the loop's logger feeds besides log.jsonl and TensorBoard: the run's wall time, and Weights & Biases.

`with_sinks` wraps the loop's logger. Every line the loop logs gets `wall_s`, the seconds of training so far,
summed over resumed sessions (the model card reports it). With `--set log.wandb=true` the same scalars, the
in-training evaluation's values (read back from log.jsonl, which that hook appends to) and the sample grids also
go to W&B; `wandb` is imported only then, so it is an optional dependency.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..errors import UserError


def check_log(log) -> None:
    """Validate the `log` config section (called by config.validate)."""
    if log.wandb and not log.wandb_project.strip():
        raise UserError("log.wandb=true needs a project: --set log.wandb_project=NAME")


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
    return wandb, wandb.init(project=log.wandb_project, name=log.wandb_run or run_dir.name, config=cfg_dict,
                             dir=str(run_dir))


class Sinks:
    """The loop's logger (JSONL + TensorBoard) plus wall time and, when asked, W&B; the same interface."""

    def __init__(self, logger, cfg, run_dir: Path, enabled: bool):
        self.inner, self.enabled, self.run_dir = logger, enabled, Path(run_dir)
        self.log_file = self.run_dir / "log.jsonl"
        self.start, self.before = time.time(), previous_wall_time(self.log_file) if enabled else 0.0
        self.wandb = self.wandb_run = None
        self.read_to = self.log_file.stat().st_size if enabled and self.log_file.is_file() else 0
        if enabled and cfg.log.wandb:
            try:
                self.wandb, self.wandb_run = open_wandb(cfg.log, cfg.to_dict(), self.run_dir)
            except BaseException:
                logger.close()  # the loop's files are open already
                raise

    def log(self, step: int, record: dict) -> None:
        if self.enabled:
            record = {**record, "wall_s": round(self.before + time.time() - self.start, 3)}
        if self.wandb_run is not None:
            self._forward_evaluations()  # appended by the evaluation hook since the last line: earlier steps
        self.inner.log(step, record)
        if self.wandb_run is not None:
            self.read_to = self.log_file.stat().st_size  # our own line, already forwarded below
            self.wandb_run.log(_scalars(record), step=step)

    def image(self, tag: str, image, step: int) -> None:
        """A (3, H, W) image in [0, 1]: TensorBoard's Images tab, and W&B's media panel."""
        self.inner.image(tag, image, step)
        if self.wandb_run is not None:
            array = (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
            self.wandb_run.log({tag: self.wandb.Image(array)}, step=step)

    def close(self) -> None:
        try:
            if self.wandb_run is not None:
                self._forward_evaluations()
                self.wandb_run.finish()
        finally:
            self.inner.close()

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


def with_sinks(logger, cfg, run_dir: Path, *, enabled: bool) -> Sinks:
    return Sinks(logger, cfg, run_dir, enabled)
