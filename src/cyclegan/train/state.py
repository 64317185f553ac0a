"""Everything training needs to continue exactly: networks, optimizers, pools, RNG, position."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from ..compiling import compile_networks
from ..config import Config
from ..distributed import rank_seed
from ..errors import UserError
from ..methods import Method, create_method
from ..nets.weight_grad import use_gemm_weight_grads
from ..nets.winograd import use_winograd
from ..pool import ImagePool
from ..runtime import (
    adam_options,
    guard_channels_last,
    resolve_channels_last,
    resolve_precision,
    resolve_winograd,
    unwrap,
)
from .adam import Adam
from .init_from import load_initial_weights


@dataclass
class TrainState:
    cfg: Config
    method: Method
    nets: nn.ModuleDict
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    pools: dict[str, ImagePool]
    scaler: torch.amp.GradScaler | None = None
    step: int = 0  # optimisation steps done, in total
    epoch: int = 0  # current 0-based epoch
    batch_in_epoch: int = 0  # batches of `epoch` already trained (resume mid-epoch)
    skipped_images: int = 0  # corrupt images skipped so far
    plateau: dict = field(default_factory=dict)
    best: dict = field(default_factory=dict)  # {"metric", "value", "epoch", "step"} of the best evaluation
    eval_pending: bool = False  # saved before the evaluation at an epoch's end, cleared after: resume runs it first
    ema: nn.ModuleDict | None = None  # moving averages of the inference networks (optim.ema_decay > 0)
    initialised: dict = field(default_factory=dict)  # {network: file} of the weights train.init_from loaded
    channels_last: bool = False  # the networks and batches are NHWC (train.channels_last, resolved)

    @property
    def device(self) -> torch.device:
        return next(self.nets.parameters()).device

    @property
    def total_epochs(self) -> int:
        return self.cfg.optim.n_epochs + self.cfg.optim.n_epochs_decay

    def inference_nets(self) -> dict[str, nn.Module]:
        """The networks a snapshot holds and evaluation scores: the moving averages when kept, else
        the networks being trained."""
        source = self.ema if self.ema is not None else self.nets
        return {k: source[k] for k in self.method.inference_nets()}

    def state_dict(self) -> dict:
        return {
            "nets": {k: unwrap(v).state_dict() for k, v in self.nets.items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict() if self.opt_d is not None else None,
            "pools": {k: p.state_dict() for k, p in self.pools.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "ema": {k: v.state_dict() for k, v in self.ema.items()} if self.ema is not None else None,
            "rng": {
                "cpu": torch.get_rng_state(),  # and the training GPU's generator, if any (not all GPUs')
                "cuda": [torch.cuda.get_rng_state(self.device)] if self.device.type == "cuda" else [],
            },
            "progress": {
                "step": self.step,
                "epoch": self.epoch,
                "batch_in_epoch": self.batch_in_epoch,
                "skipped_images": self.skipped_images,
                "plateau": self.plateau,
                "best": self.best,
                "eval_pending": self.eval_pending,
            },
        }

    def load_state_dict(self, tree: dict, device: torch.device) -> None:
        for k, sd in tree["nets"].items():
            unwrap(self.nets[k]).load_state_dict(sd)
        _load_optimizer(self.opt_g, tree["opt_g"])
        if self.opt_d is not None and tree["opt_d"] is not None:
            _load_optimizer(self.opt_d, tree["opt_d"])
        for k, p in self.pools.items():
            p.load_state_dict(tree["pools"][k], device)
        if self.scaler is not None and tree.get("scaler"):
            self.scaler.load_state_dict(tree["scaler"])
        if self.ema is not None:  # a run that kept no average starts one from the weights it resumes with
            saved = tree.get("ema") or {}
            for k, net in self.ema.items():
                net.load_state_dict(saved[k] if k in saved else unwrap(self.nets[k]).state_dict())
        torch.set_rng_state(tree["rng"]["cpu"])
        if tree["rng"]["cuda"] and self.device.type == "cuda":  # a GPU run resumed on the CPU has no use for it
            torch.cuda.set_rng_state(tree["rng"]["cuda"][0], self.device)
        p = tree["progress"]
        self.step, self.epoch, self.batch_in_epoch = p["step"], p["epoch"], p["batch_in_epoch"]
        self.skipped_images, self.plateau, self.best = p["skipped_images"], p["plateau"] or {}, p["best"] or {}
        self.eval_pending = bool(p.get("eval_pending", False))  # states saved before it existed: none pending


def _load_optimizer(opt: torch.optim.Optimizer, saved: dict) -> None:
    """`opt.load_state_dict(saved)`, keeping what belongs to this run rather than to the saved one:
    the Adam kernel options of the param groups (load_state_dict replaces whole groups, so a run
    started on the CPU with foreach Adam would otherwise never get fused Adam on a GPU), and the
    memory layout of the moments, which come back contiguous from the checkpoint while channels_last
    parameters are not (CUDA's fused Adam refuses mismatched strides; the CPU one updates wrongly)."""
    kernel = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in opt.param_groups]
    opt.load_state_dict(saved)
    for group, options in zip(opt.param_groups, kernel):
        group.update(options)
        on_device = bool(group.get("fused") or group.get("capturable"))  # where Adam keeps its step count
        for p in group["params"]:
            state = opt.state.get(p, {})
            for k, v in state.items():
                if k == "step" and torch.is_tensor(v):
                    state[k] = v.to(device=p.device, dtype=torch.float32) if on_device else v.to("cpu")
                elif torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def make_ema(nets: nn.ModuleDict, names) -> nn.ModuleDict:
    """Frozen copies of `names` (the inference networks), to hold moving averages of their weights."""
    ema = nn.ModuleDict({k: copy.deepcopy(unwrap(nets[k])) for k in names})
    return ema.requires_grad_(False).eval()


@torch.no_grad()
def update_ema(ema: nn.ModuleDict, nets: nn.ModuleDict, decay: float, step: int) -> None:
    """avg <- d * avg + (1 - d) * w for every parameter (buffers copied), with the warm-up
    d = min(decay, (1 + step) / (10 + step)) so that early averages are not dominated by the random
    initialisation (as TensorFlow's ExponentialMovingAverage with num_updates). Averaging the
    generator's iterates (Yazici et al. 2019) smooths the oscillation of adversarial training."""
    d = min(decay, (1 + step) / (10 + step))
    avg, live, avg_buf, live_buf = [], [], [], []
    for k, e in ema.items():
        net = unwrap(nets[k])
        avg += list(e.parameters())
        live += list(net.parameters())
        avg_buf += list(e.buffers())
        live_buf += list(net.buffers())
    torch._foreach_lerp_(avg, live, 1.0 - d)
    for a, b in zip(avg_buf, live_buf):
        a.copy_(b)


def _params(nets: nn.ModuleDict, names) -> list[nn.Parameter]:
    return [p for n in names for p in nets[n].parameters()]


def check_crop_size(cfg: Config) -> None:
    """Training crops must be a size every network takes: a multiple of what the generators halve
    their input by (4 for the ResNets, 2^num_downs for a U-Net), and large enough that no
    normalisation layer sees a single pixel (a 70x70 PatchGAN needs 24 or more). Checked by running
    each image-to-image network once on shape-only "meta" tensors (no memory, no arithmetic, no
    random numbers); translation pads any size, training does not."""
    from ..data.transforms import CROPPING

    if cfg.data.preprocess not in CROPPING:
        return
    with torch.device("meta"):
        specs = {k: s for k, s in create_method(cfg).specs().items() if s.kind in ("generator", "discriminator")}
        nets = {k: s.build() for k, s in specs.items()}
    if not nets:
        return
    multiple = max([int(getattr(n, "size_multiple", 1)) for n in nets.values()])
    crop = cfg.data.crop_size
    problem = _shape_problem(cfg, specs, nets, multiple, crop)
    if problem is None:
        return
    sizes = range(max(multiple, crop // multiple * multiple), 4097, multiple)
    good = next((c for c in sizes if _shape_problem(cfg, specs, nets, multiple, c) is None), None)
    above = next((c for c in sizes if c > crop and _shape_problem(cfg, specs, nets, multiple, c) is None), None)
    hint = (
        "no crop size up to 4096 fits"
        if good is None
        else f"use {good} or {above}"
        if good < crop and above
        else f"use {good}"
    )
    raise UserError(
        f"data.crop_size={crop} does not fit model.generator={cfg.model.generator} / model.discriminator="
        f"{cfg.model.discriminator} ({problem}); {hint}"
    )


def _shape_problem(cfg: Config, specs: dict, nets: dict, multiple: int, crop: int) -> str | None:
    """Why a training batch of this crop does not pass through the (meta) networks, or None."""
    if crop % multiple:
        return f"not a multiple of {multiple}: the generator halves the image {multiple.bit_length() - 1} times"
    for name, net in nets.items():
        x = torch.empty(cfg.train.batch_size, specs[name].kwargs["in_ch"], crop, crop, device="meta")
        try:
            net.train()(x)
        except (RuntimeError, ValueError) as e:
            return f"{name}: {str(e).splitlines()[0]}"
    return None


def create_state(cfg: Config, device: torch.device, rank: int = 0, init_from: bool = True) -> TrainState:
    """Build networks (seeded by train.seed), one Adam for the generators and one for the
    discriminators (as the reference), and a history pool per trained discriminator. With `init_from`
    (a new run, not a resume), networks named by `train.init_from` load their saved weights.

    Fast paths (see docs/performance.md): `train.precision` ("auto" resolved here by device),
    `train.channels_last`, `train.winograd`, `train.adam` (kernel choice), `train.compile` / `train.compile_mode`.

    Weights are the same on every rank; the pools and the global RNG (dropout, gradient penalty) of
    rank r > 0 get their own streams (rank 0 draws what a single process draws)."""
    torch.manual_seed(cfg.train.seed)
    method = create_method(cfg)
    nets = method.build_networks()
    initialised = load_initial_weights(nets, cfg) if init_from and cfg.train.init_from else {}
    nets = nets.to(device)
    if rank:
        torch.manual_seed(rank_seed(cfg.train.seed, rank, "torch"))
    precision = resolve_precision(cfg.train.precision, device.type)
    channels_last = resolve_channels_last(cfg.train.channels_last, device.type, cfg.train.precision, cfg.train.winograd)
    if channels_last:
        nets = nets.to(memory_format=torch.channels_last)
        guard_channels_last(nets, device)
    if resolve_winograd(cfg.train.winograd, device.type, cfg.train.precision):  # the float32 CPU path
        use_winograd(nets)
        use_gemm_weight_grads(nets)
    o = cfg.optim
    adam = dict(lr=o.lr, betas=(o.beta1, o.beta2), **adam_options(cfg.train.adam, device, precision))
    opt_g = Adam(_params(nets, method.generators), **adam)
    active = method.active_discriminators()
    opt_d = Adam(_params(nets, active), **adam) if active else None
    graphs = (
        cfg.train.compile == "true" and device.type == "cuda"
    )  # CUDA graphs may overwrite last step's fakes: pool copies
    pools = {
        name: ImagePool(cfg.loss.pool_size, seed=rank_seed(cfg.train.seed * 1000 + i, rank, "pool"), copy=graphs)
        for i, name in enumerate(active)
    }
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    ema = make_ema(nets, method.inference_nets()) if o.ema_decay > 0 else None
    if cfg.train.compile == "true":  # "auto" is resolved by train(); a bare create_state does not compile
        nets = compile_networks(nets, device, cfg.train.compile_mode)
    return TrainState(
        cfg, method, nets, opt_g, opt_d, pools, scaler, ema=ema, initialised=initialised, channels_last=channels_last
    )
