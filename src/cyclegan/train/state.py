"""Everything training needs to continue exactly: networks, optimizers, pools, RNG, position."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import Config
from ..distributed import rank_seed
from ..methods import Method, create_method
from ..pool import ImagePool


@dataclass
class TrainState:
    cfg: Config
    method: Method
    nets: nn.ModuleDict
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    pools: dict[str, ImagePool]
    scaler: torch.amp.GradScaler | None = None
    step: int = 0                 # optimisation steps done, in total
    epoch: int = 0                # current 0-based epoch
    batch_in_epoch: int = 0       # batches of `epoch` already trained (resume mid-epoch)
    skipped_images: int = 0       # corrupt images skipped so far
    plateau: dict = field(default_factory=dict)
    best: dict = field(default_factory=dict)  # {"metric", "value", "epoch", "step"} of the best evaluation

    @property
    def total_epochs(self) -> int:
        return self.cfg.optim.n_epochs + self.cfg.optim.n_epochs_decay

    def state_dict(self) -> dict:
        return {
            "nets": {k: _unwrap(v).state_dict() for k, v in self.nets.items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "pools": {k: p.state_dict() for k, p in self.pools.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": {"cpu": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            "progress": {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                         "skipped_images": self.skipped_images, "plateau": self.plateau, "best": self.best},
        }

    def load_state_dict(self, tree: dict, device: torch.device) -> None:
        for k, sd in tree["nets"].items():
            _unwrap(self.nets[k]).load_state_dict(sd)
        self.opt_g.load_state_dict(tree["opt_g"])
        if self.opt_d is not None and tree["opt_d"] is not None:
            self.opt_d.load_state_dict(tree["opt_d"])
        for k, p in self.pools.items():
            p.load_state_dict(tree["pools"][k], device)
        if self.scaler is not None and tree.get("scaler"):
            self.scaler.load_state_dict(tree["scaler"])
        torch.set_rng_state(tree["rng"]["cpu"])
        if tree["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(tree["rng"]["cuda"])
        p = tree["progress"]
        self.step, self.epoch, self.batch_in_epoch = p["step"], p["epoch"], p["batch_in_epoch"]
        self.skipped_images, self.plateau, self.best = p["skipped_images"], p["plateau"] or {}, p["best"] or {}


def _unwrap(net: nn.Module) -> nn.Module:
    return getattr(net, "_orig_mod", net)


def _params(nets: nn.ModuleDict, names) -> list[nn.Parameter]:
    return [p for n in names for p in nets[n].parameters()]


def create_state(cfg: Config, device: torch.device, rank: int = 0) -> TrainState:
    """Build networks (seeded by train.seed), one Adam for the generators and one for the
    discriminators (as the reference), and a history pool per trained discriminator.

    Weights are the same on every rank; the pools and the global RNG (dropout, gradient penalty) of
    rank r > 0 get their own streams (rank 0 draws what a single process draws)."""
    torch.manual_seed(cfg.train.seed)
    method = create_method(cfg)
    nets = method.build_networks().to(device)
    if rank:
        torch.manual_seed(rank_seed(cfg.train.seed, rank, "torch"))
    if cfg.train.channels_last:
        nets = nets.to(memory_format=torch.channels_last)
    o = cfg.optim
    adam = dict(lr=o.lr, betas=(o.beta1, o.beta2))
    if device.type == "cuda":
        adam["fused"] = True
    opt_g = torch.optim.Adam(_params(nets, method.generators), **adam)
    active = method.active_discriminators()
    opt_d = torch.optim.Adam(_params(nets, active), **adam) if active else None
    pools = {name: ImagePool(cfg.loss.pool_size, seed=rank_seed(cfg.train.seed * 1000 + i, rank, "pool")) for i, name in enumerate(active)}
    scaler = torch.amp.GradScaler(device.type) if cfg.train.precision == "fp16" else None
    return TrainState(cfg, method, nets, opt_g, opt_d, pools, scaler)
