"""Checking a configuration before any data is read or network built: the sections every method shares
here, each method's own settings in its `Method.check` (methods/base.py and each method's file)."""

from __future__ import annotations

import math

from ..checkpoint import parse_init_from
from ..compiling import COMPILE, COMPILE_MODES
from ..config import Config
from ..data.transforms import PREPROCESS
from ..errors import UserError
from ..losses import GAN_MODES
from ..nets import DISCRIMINATORS, GENERATORS, INITS, NORMS
from ..runtime import ADAM_IMPLS, CHANNELS_LAST, PRECISIONS, WINOGRAD
from ..schedule import POLICIES
from .base import METHODS


def validate(cfg: Config) -> Config:
    """Every name-valued field against what exists, every number against its range, then the method's own
    check. Returns cfg; raises UserError naming the setting and what to give instead."""
    _check_names(cfg)
    _check_ranges(cfg)
    if cfg.loss.gan_mode == "wgangp" and cfg.train.precision == "fp16":
        raise UserError(
            "loss.gan_mode=wgangp with train.precision=fp16: the gradient penalty's input gradient "
            "would be computed without loss scaling and can underflow in float16; use bf16 or fp32"
        )
    if cfg.train.init_from:
        parse_init_from(cfg.train.init_from, exist=False)  # the files are read (and looked for) when a run starts
    if cfg.data.preprocess in ("resize_and_crop", "scale_width_and_crop") and cfg.data.load_size < cfg.data.crop_size:
        raise UserError(f"data.load_size ({cfg.data.load_size}) is smaller than data.crop_size ({cfg.data.crop_size})")
    if cfg.log.wandb and not cfg.log.wandb_project.strip():
        raise UserError("log.wandb=true needs a project: --set log.wandb_project=NAME")
    METHODS.get(cfg.model.method).check(cfg)
    return cfg


def _check_names(cfg: Config) -> None:
    m = cfg.model
    choices = {
        "model.method": (m.method, METHODS.names()),
        "model.generator": (m.generator, GENERATORS.names()),
        "model.discriminator": (m.discriminator, DISCRIMINATORS.names()),
        "model.norm": (m.norm, NORMS),
        "model.init": (m.init, INITS),
        "loss.gan_mode": (cfg.loss.gan_mode, GAN_MODES),
        "data.preprocess": (cfg.data.preprocess, PREPROCESS),
        "optim.lr_policy": (cfg.optim.lr_policy, POLICIES),
        "train.precision": (cfg.train.precision, PRECISIONS),
        "data.direction": (cfg.data.direction, ("AtoB", "BtoA")),
        "train.adam": (cfg.train.adam, ADAM_IMPLS),
        "train.channels_last": (cfg.train.channels_last, CHANNELS_LAST),
        "train.winograd": (cfg.train.winograd, WINOGRAD),
        "train.compile_mode": (cfg.train.compile_mode, COMPILE_MODES),
        "train.compile": (cfg.train.compile, COMPILE),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise UserError(f"{key}={value!r} is not one of: {', '.join(allowed)}")


def _check_ranges(cfg: Config) -> None:
    t, o, w = cfg.train, cfg.optim, cfg.loss
    for key, value in (
        ("train.batch_size", t.batch_size),
        ("data.crop_size", cfg.data.crop_size),
        ("model.ngf", cfg.model.ngf),
        ("model.ndf", cfg.model.ndf),
        ("train.log_every", t.log_every),
        ("optim.n_epochs + optim.n_epochs_decay", o.n_epochs + o.n_epochs_decay),
    ):
        if value < 1:
            raise UserError(f"{key} must be at least 1, got {value}")
    for key, value in (
        ("optim.n_epochs", o.n_epochs),
        ("optim.n_epochs_decay", o.n_epochs_decay),
        ("loss.pool_size", w.pool_size),
        ("data.max_images", cfg.data.max_images),
        ("train.max_steps", t.max_steps),
        ("train.sample_every", t.sample_every),
    ):
        if value < 0:
            raise UserError(f"{key} must be 0 or more, got {value}")
    if not o.lr > 0:
        raise UserError(f"optim.lr must be positive, got {o.lr}")
    if not (0.0 <= o.beta1 < 1.0 and 0.0 <= o.beta2 < 1.0):
        raise UserError(f"optim.beta1 and optim.beta2 must be in [0, 1), got {o.beta1} and {o.beta2}")
    if t.threads < 0:
        raise UserError(f"train.threads must be 0 (one per core) or a positive count, got {t.threads}")
    if not 0.0 <= o.ema_decay < 1.0:
        raise UserError(f"optim.ema_decay must be in [0, 1) (0 turns the average off), got {o.ema_decay}")
    if w.lambda_semantic < 0:
        raise UserError(f"loss.lambda_semantic must be 0 (off) or positive, got {w.lambda_semantic}")
    if w.cycle_noise < 0:
        raise UserError(f"loss.cycle_noise is a standard deviation: 0 (off) or positive, got {w.cycle_noise}")
    if t.max_bad_steps < 0:
        raise UserError(f"train.max_bad_steps must be 0 (guard off) or more, got {t.max_bad_steps}")
    if not (t.max_loss >= 0 and math.isfinite(t.max_loss)):
        raise UserError(f"train.max_loss must be 0 (no bound) or a positive number, got {t.max_loss}")
