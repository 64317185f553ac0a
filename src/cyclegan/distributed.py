"""Process-group context for `torchrun`: rank and world size from the environment, one code path.

A single process (no RANK/WORLD_SIZE in the environment) is world size 1: no process group, no
gradient reduction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: str = "auto") -> "DistContext":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = torch.cuda.is_available() and device in ("auto", "cuda")
        if use_cuda:
            torch.cuda.set_device(local)
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
        return cls(rank, world, local, True)

    @property
    def reduce_grads(self) -> Callable | None:
        """All-reduce (average) the gradients of one phase's parameters, or None for one process."""
        if self.world_size <= 1:
            return None
        world = self.world_size

        def reduce(params) -> None:
            grads = [p.grad for p in params if p.grad is not None]
            if not grads:
                return
            flat = torch.cat([g.reshape(-1) for g in grads])
            torch.distributed.all_reduce(flat)
            flat /= world
            offset = 0
            for g in grads:
                n = g.numel()
                g.copy_(flat[offset:offset + n].view_as(g))
                offset += n

        return reduce

    def __enter__(self) -> "DistContext":
        return self

    def __exit__(self, *exc) -> None:
        if self.initialized and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
