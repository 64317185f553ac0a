"""Data-parallel training under `torchrun`: one code path for one process and for N.

torchrun starts one process per GPU and sets RANK, WORLD_SIZE and LOCAL_RANK; `DistContext.from_env`
reads them and joins the process group (NCCL on CUDA, Gloo on CPU). Without those variables the world
size is 1: no process group, and every helper below is a no-op, so single-process training runs the
very same loop.

How the ranks stay one model (see docs/distributed.md):
- weights: built from the same seed on every rank, then broadcast from rank 0 (`prepare_nets`);
- gradients: each phase of a step (generators with the discriminators frozen, then discriminators)
  all-reduces its own gradients before its optimizer step (`DistContext.reduce_grads`), as NVlabs'
  StyleGAN code does, instead of DDP wrappers, which fail when a phase freezes part of the model;
- randomness: data randomness is a function of (seed, epoch, index) and needs no per-rank state; the
  global torch RNG (dropout, gradient penalty) and the image pools are seeded per rank (`rank_seed`),
  and a checkpoint holds every rank's RNG and pools (`gather_rank_parts`, `select_rank_state`), so a
  resume restores each rank's streams exactly;
- decisions: stopping (Ctrl-C) and time-based saving are agreed by all ranks (`any_rank`), so no rank
  waits alone in a collective;
- batch norm: converted to SyncBatchNorm on CUDA (`prepare_nets`); rank-0-only forward passes (sample
  grids, evaluation) run under `local_batchnorm`, which keeps them from waiting for the other ranks.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
from torch import nn

from .errors import UserError


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
        """Join the process group torchrun describes in the environment (world size 1 without it).

        `device` is train.device: "auto" or "cuda" put rank r on cuda:LOCAL_RANK (cuda:0 where each
        process sees one GPU) with NCCL; "cpu" (or no CUDA) uses Gloo.
        """
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        if device.startswith("cuda:"):
            raise UserError(
                f"--device {device} under torchrun would put all {world} processes on one GPU; "
                "use --device cuda (process r uses cuda:LOCAL_RANK) and CUDA_VISIBLE_DEVICES to pick GPUs"
            )
        use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
        if use_cuda:
            n_gpus = torch.cuda.device_count()
            if n_gpus == 1:  # a scheduler (SLURM, Kubernetes) shows each process its own GPU only
                local_gpu = 0
            elif local < n_gpus:
                local_gpu = local
            else:
                raise UserError(
                    f"LOCAL_RANK {local} but only {n_gpus} GPU(s) visible on this node; "
                    f"use --nproc_per_node={n_gpus} (one process per GPU)"
                )
            torch.cuda.set_device(local_gpu)
        if not torch.distributed.is_initialized():
            # 30 min (NCCL's default is 10): the other ranks wait while rank 0 alone writes a
            # checkpoint or evaluates at an epoch end.
            torch.distributed.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=30))
        return cls(rank, world, local, True)

    @property
    def reduce_grads(self) -> Callable | None:
        """All-reduce (average) the gradients of one phase's parameters, or None for one process.

        Called by train_step between backward and the optimizer step of each phase. Gradients are
        flattened into one buffer per dtype, so a phase costs one collective. Parameters without a
        gradient are skipped; every rank has the same such parameters, since the phases are the same
        on every rank. The mean over ranks of per-rank batch means equals the mean over the union batch
        when per-rank batches have equal sizes (the sampler guarantees it).
        """
        if self.world_size <= 1:
            return None
        world = self.world_size

        def reduce(params: Iterable[nn.Parameter]) -> None:
            groups: dict[tuple, list[torch.Tensor]] = {}
            for p in params:
                if p.grad is not None:
                    groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
            for grads in groups.values():
                flat = torch.cat([g.reshape(-1) for g in grads])
                torch.distributed.all_reduce(flat)
                flat /= world
                offset = 0
                for g in grads:
                    n = g.numel()
                    g.copy_(flat[offset : offset + n].view_as(g))
                    offset += n

        return reduce

    def __enter__(self) -> "DistContext":
        return self

    def __exit__(self, *exc) -> None:
        if self.initialized and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def _comm_device() -> torch.device:
    """Where small control tensors must live for the current backend (NCCL needs CUDA tensors)."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def rank_seed(seed: int, rank: int, stream: str) -> int:
    """The seed of one random stream on one rank. Rank 0 keeps `seed` itself, so a single process
    draws what it always drew; other ranks get a hash of (stream, seed, rank): distinct streams that
    do not overlap each other or rank 0's, whatever the seeds."""
    if rank == 0:
        return seed
    digest = hashlib.blake2b(f"{stream}/{seed}/{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % (2**63 - 1)


def prepare_nets(nets: nn.ModuleDict, device: torch.device) -> nn.ModuleDict:
    """Make the networks of every rank one model: SyncBatchNorm on CUDA, weights from rank 0.

    Batch norm becomes SyncBatchNorm (same parameters and buffers, so optimizers and checkpoints are
    unaffected). SyncBatchNorm runs only on GPUs; on CPU (Gloo) batch norm keeps per-rank statistics,
    with a warning. Then every parameter and buffer is broadcast from rank 0: all ranks built them
    from the same seed already, and the broadcast makes that a guarantee (mixed library versions or
    nondeterministic initialisation on some device cannot split the model).
    """
    if not is_distributed():
        return nets
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in nets.modules())
    if has_bn and device.type == "cuda":
        for name in list(nets.keys()):
            net = nets[name]
            inner = getattr(net, "_orig_mod", None)  # a torch.compile wrapper: convert what it wraps
            if inner is not None:
                net._orig_mod = nn.SyncBatchNorm.convert_sync_batchnorm(inner)
            else:
                nets[name] = nn.SyncBatchNorm.convert_sync_batchnorm(net)
        # For `local_batchnorm`: a group of rank 0 alone (a non-member placeholder on the other ranks),
        # where SyncBatchNorm sees a world size of 1 (-1) and falls back to plain batch norm. Creating
        # a group is collective, so it is made here, on every rank, once.
        local = torch.distributed.new_group([0])
        for m in nets.modules():
            if isinstance(m, nn.SyncBatchNorm):
                m.local_group = local
    elif has_bn and torch.distributed.get_rank() == 0:
        warnings.warn(
            "batch norm under several CPU processes keeps per-process batch statistics "
            "(SyncBatchNorm needs CUDA); results differ from one process on the union batch",
            stacklevel=2,
        )
    broadcast_module_states(nets)
    return nets


@torch.no_grad()
def broadcast_module_states(module: nn.Module, src: int = 0) -> None:
    """Copy every parameter and buffer of `module` from rank `src` to all ranks (one collective per dtype)."""
    if not is_distributed():
        return
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in list(module.parameters()) + list(module.buffers()):
        groups.setdefault((t.dtype, t.device), []).append(t)
    for tensors in groups.values():
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        torch.distributed.broadcast(flat, src)
        offset = 0
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset : offset + n].view_as(t))
            offset += n


@contextlib.contextmanager
def local_batchnorm(nets: nn.Module):
    """SyncBatchNorm layers use this rank's batch alone inside the block.

    For forward passes that only some ranks run (rank 0's sample grids, evaluation): a SyncBatchNorm
    in training mode would otherwise wait for the other ranks, which are busy with the next step.
    Statistics then come from the local batch, as with plain batch norm in one process.
    """
    layers = [m for m in nets.modules() if isinstance(m, nn.SyncBatchNorm) and hasattr(m, "local_group")]
    saved = [m.process_group for m in layers]
    try:
        for m in layers:
            m.process_group = m.local_group
        yield
    finally:
        for m, g in zip(layers, saved):
            m.process_group = g


def barrier() -> None:
    """Wait for all ranks (no-op for one process)."""
    if is_distributed():
        torch.distributed.barrier()


def any_rank(*flags: bool) -> tuple[bool, ...]:
    """Each flag, true if it is true on any rank (one small all-reduce); unchanged for one process.

    Every rank must call this at the same point: it is how the ranks agree to stop or to save."""
    if not is_distributed():
        return tuple(bool(f) for f in flags)
    t = torch.tensor([float(bool(f)) for f in flags], device=_comm_device())
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return tuple(bool(v) for v in t.tolist())


def from_rank0(*values: int) -> tuple[int, ...]:
    """Rank 0's values on every rank (one small broadcast); unchanged for one process. For choices a rank makes
    by measuring (runtime.cpu_bf16_speedup), which could come out differently on each."""
    if not is_distributed():
        return tuple(int(v) for v in values)
    t = torch.tensor([int(v) for v in values], dtype=torch.int64, device=_comm_device())
    torch.distributed.broadcast(t, src=0)
    return tuple(int(v) for v in t.tolist())


def mean_over_ranks(sums: dict[str, torch.Tensor], n: int) -> dict[str, float]:
    """{name: sum of n scalar loss tensors} -> {name: mean over the steps and over all ranks}.

    One all-reduce for all names (the keys are the same on every rank: the same method runs on each).
    For one process: float(sum) / n, with no collective."""
    if not is_distributed():
        return {k: float(v) / n for k, v in sums.items()}
    keys = list(sums)
    if not keys:
        return {}
    t = torch.stack([sums[k].detach().float() for k in keys]).to(_comm_device())
    torch.distributed.all_reduce(t)
    values = (t / (n * torch.distributed.get_world_size())).tolist()
    return dict(zip(keys, values))


# --- per-rank parts of a resume state -------------------------------------------------------------
# A TrainState.state_dict() is the same on every rank except for the global RNG, the image pools and
# the count of skipped images. Rank 0 saves the full tree with its own part at the top level, as a
# single process does, plus "world_size" and "ranks": {"1": part, ...} for the other ranks.


def rank_part(tree: dict) -> dict:
    """The rank-specific entries of a TrainState.state_dict(), on the CPU."""
    return _to_cpu({"rng": tree["rng"], "pools": tree["pools"], "skipped_images": tree["progress"]["skipped_images"]})


def gather_rank_parts(tree: dict) -> dict[str, dict] | None:
    """Collective: every rank passes its state_dict(); rank 0 gets {"1": part, ...} for ranks 1..N-1,
    the other ranks get None. The parts travel pickled (gather_object), but are stored as tensors and
    JSON like the rest of the checkpoint."""
    world, rank = torch.distributed.get_world_size(), torch.distributed.get_rank()
    part = rank_part(tree) if rank != 0 else None
    gathered = [None] * world if rank == 0 else None
    torch.distributed.gather_object(part, gathered, dst=0)
    if rank != 0:
        return None
    return {str(r): gathered[r] for r in range(1, world)}


def saved_world_size(tree: dict) -> int:
    """How many processes trained the run that saved `tree` (1 for a single-process save)."""
    return int(tree.get("world_size", 1))


def select_rank_state(tree: dict, rank: int, fresh: dict) -> dict:
    """The tree that `rank` loads from a saved state: its own RNG, pools and skip count.

    `fresh` (a `rank_part` of the newly created state) serves a rank the checkpoint holds no part for
    (the run was saved by fewer processes): that rank starts new streams, and the run is no longer an
    exact continuation (compare `saved_world_size(tree)` with the world size to warn).
    """
    parts = tree.get("ranks") or {}
    out = {k: v for k, v in tree.items() if k not in ("ranks", "world_size")}
    if rank == 0:
        return out
    part = parts.get(str(rank), fresh)
    out["rng"], out["pools"] = part["rng"], part["pools"]
    out["progress"] = {**tree["progress"], "skipped_images": part["skipped_images"]}
    return out


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_cpu(v) for v in obj]
    return obj
