"""One logger for every sink of a training run: the terminal (progress bar), log.jsonl and TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..progress import progress_bar


class Logger:
    """Writes each record to log.jsonl and TensorBoard and shows its losses on the progress bar; on ranks other
    than 0 (`enabled=False`) it writes nothing and shows no bar."""

    def __init__(self, run_dir: Path, *, enabled: bool, total_steps: int, initial_step: int, show_progress: bool):
        self.enabled = enabled
        self.jsonl = open(run_dir / "log.jsonl", "a") if enabled else None
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is a dependency, but keep training if it is broken
                self.tb = None
        self.bar = progress_bar(total=total_steps, initial=min(initial_step, total_steps), unit="it",
                                dynamic_ncols=True, disable=not (enabled and show_progress))

    def log(self, step: int, record: dict, *, show: dict[str, float] | None = None) -> None:
        """One record at `step` to log.jsonl and TensorBoard (numbers only); `show` on the progress bar."""
        if show is not None:
            self.bar.set_postfix({k: f"{v:.3f}" for k, v in show.items()}, refresh=False)
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, **record}) + "\n")
        self.jsonl.flush()
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "epoch":
                    tag = k if "/" in k else f"train/{k}" if k in ("lr", "it_per_s") else f"loss/{k}"
                    self.tb.add_scalar(tag, v, step)

    def image(self, tag: str, image: torch.Tensor, step: int) -> None:
        """A (3, H, W) image in [0, 1] to TensorBoard's Images tab."""
        if self.tb is not None:
            self.tb.add_image(tag, image, step)

    def advance(self) -> None:
        """One step done: the progress bar moves."""
        self.bar.update(1)

    def describe(self, text: str) -> None:
        """The progress bar's label (the epoch)."""
        self.bar.set_description(text)

    def close(self) -> None:
        self.bar.close()
        if self.jsonl:
            self.jsonl.close()
        if self.tb is not None:
            self.tb.close()
