"""`cyclegan train`: train a model from two image folders (or resume a run)."""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

from ..config import PRESETS, Config, build_config
from ..errors import UserError

NAME = "train"
HELP = "train on two image folders (trainA/, trainB/)"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train CycleGAN (or another method) on unpaired image folders.\n\n"
        "examples:\n"
        "  cyclegan train data/horse2zebra --preset paper --name h2z\n"
        "  cyclegan train --data-a photos/ --data-b paintings/ --preset quick --set loss.lambda_identity=0.5\n"
        "  cyclegan train --resume runs/h2z            # continue exactly where it stopped\n"
        "  cyclegan train mydata --init-from runs/h2z --epochs 20 --epochs-decay 20   # fine-tune\n"
        "  torchrun --nproc_per_node=4 -m cyclegan train data/h2z --preset paper   # 4 GPUs (docs/distributed.md)",
    )
    p.add_argument("data", nargs="?", help="folder holding trainA/ and trainB/")
    p.add_argument("--data-a", metavar="DIR", help="domain A training images (instead of DATA/trainA)")
    p.add_argument("--data-b", metavar="DIR", help="domain B training images (instead of DATA/trainB)")
    p.add_argument(
        "--preset",
        help=f"comma-separated presets, applied in order: {', '.join(PRESETS)} "
        "(default: the preset named like --method if there is one, else paper)",
    )
    p.add_argument("--config", action="append", default=[], metavar="FILE", help="YAML/JSON config file (repeatable)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. model.ngf=32 (repeatable)",
    )
    p.add_argument("--name", help="run name: the run directory is runs/NAME")
    p.add_argument("--run-dir", help="run directory (default runs/NAME or runs/<timestamp>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR exactly where it stopped")
    p.add_argument(
        "--init-from",
        action="append",
        default=[],
        metavar="SOURCE",
        help="start from saved weights (fine-tuning): a run directory or checkpoint, a folder of the reference's "
        "latest_net_*.pth, or NET=FILE for one network, e.g. G_A=horse2zebra.pth (repeatable; later "
        "sources replace earlier ones; networks no source holds start fresh; train.init_from)",
    )
    p.add_argument("--method", help="training method (model.method), e.g. cyclegan, pix2pix")
    p.add_argument(
        "--direction",
        choices=["AtoB", "BtoA"],
        help="paired methods (pix2pix): which side is the input (data.direction)",
    )
    p.add_argument("--epochs", type=int, help="epochs at constant lr (optim.n_epochs)")
    p.add_argument("--epochs-decay", type=int, help="epochs of linear decay (optim.n_epochs_decay)")
    p.add_argument(
        "--batch-size",
        type=int,
        help="images per step per process (train.batch_size); the global batch is this x the number of processes",
    )
    p.add_argument("--max-steps", type=int, help="stop after this many steps, with a checkpoint (train.max_steps)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (train.device)")
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads (train.threads; default: one per core). On a shared or busy machine 1 is often faster",
    )
    p.add_argument("--seed", type=int, help="random seed (train.seed)")
    p.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="autocast precision (train.precision; default auto: bf16 where the hardware has it natively and it "
        "measures faster, else fp32; fp32 for strict float32)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to log.jsonl)")
    return p


def config_from_args(args):
    """New run: defaults + presets + files + flags. Resume: the run's saved config + what is given explicitly."""
    from .. import checkpoint as ckpt

    base = None
    if args.resume and args.init_from:
        raise UserError(
            "--init-from starts a new run from saved weights; --resume continues a run from its own state: give one"
        )
    if args.resume:
        base = saved_config(Path(args.resume))
        default = ""
    else:
        default = args.method if args.method in PRESETS else "paper"  # `--method pix2pix` gets pix2pix's defaults
    presets = [s for s in (args.preset or default).split(",") if s]
    overrides = list(args.set)
    flags = {
        "data.dir_a": args.data_a,
        "data.dir_b": args.data_b,
        "model.method": args.method,
        "data.direction": args.direction,
        "optim.n_epochs": args.epochs,
        "optim.n_epochs_decay": args.epochs_decay,
        "train.batch_size": args.batch_size,
        "train.max_steps": args.max_steps,
        "train.device": args.device,
        "train.seed": args.seed,
        "train.threads": args.threads,
        "train.precision": args.precision,
    }
    if args.data:
        flags["data.root"] = str(args.data)
    if args.init_from:
        flags["train.init_from"] = ",".join(args.init_from)
    limit = args.max_steps if args.max_steps is not None else base.train.max_steps if args.resume else 0
    if args.resume and limit:
        step = ckpt.read_meta(ckpt.resume_state(args.resume)).get("step", 0)
        if step >= limit and args.max_steps is not None:
            raise UserError(
                f"--max-steps {args.max_steps}: {args.resume} already stands at step {step}; give a larger "
                "limit, or none to train to the end of its schedule"
            )
        if step >= limit:  # it stopped at its saved limit: --resume alone goes on to the end of the schedule
            print(f"the run stopped at its step limit ({limit}); continuing without a limit")
            flags["train.max_steps"] = 0
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None] + overrides
    if args.no_progress:
        overrides.append("train.progress=false")
    cfg = build_config(presets, args.config, overrides, base)
    for key in ("root", "dir_a", "dir_b"):  # absolute, so that a resume from another folder finds the data
        path = getattr(cfg.data, key)
        if path and (not args.resume or Path(path).exists()):
            setattr(cfg.data, key, str(Path(path).resolve()))
        elif path:
            raise UserError(
                f"data folder {path} (data.{key} of {args.resume}/config.json) not found from here; give it "
                f"again: cyclegan train DATA --resume {args.resume} (or --data-a/--data-b)"
            )
    if cfg.train.init_from and not args.resume:  # absolute, for the record in config.json; missing files named now
        from ..train.init_from import parse_init_from

        cfg.train.init_from = ",".join(
            f"{net}={path.resolve()}" if net else str(path.resolve())
            for net, path in parse_init_from(cfg.train.init_from)
        )
    for section, key in (
        ("loss", "semantic_classifier"),
        ("loss", "feature_weights"),
        ("train", "eval_classifier"),
        ("train", "eval_root"),
    ):  # likewise the other files a run reads (a missing one: validate says so)
        path = getattr(getattr(cfg, section), key)
        if path and Path(path).exists():
            setattr(getattr(cfg, section), key, str(Path(path).resolve()))
    return cfg


def saved_config(run_dir: Path) -> Config:
    """The configuration of the run in run_dir: its config.json, else the one in its resume state."""
    from .. import checkpoint as ckpt

    path = run_dir / "config.json"
    if path.is_file():
        fix = "fix it, or delete it to resume with the configuration saved in the run's checkpoint"
        try:
            return Config.from_dict(json.loads(path.read_text()))
        except json.JSONDecodeError as e:
            raise UserError(f"{path} is not valid JSON ({e}); {fix}") from None
        except (UserError, AttributeError, TypeError) as e:
            raise UserError(f"{path}: {e}; {fix}") from None
    if not any((run_dir / "checkpoints" / f"{k}.state.safetensors").is_file() for k in ("latest", "previous")):
        raise UserError(
            f"--resume {run_dir}: no config.json or checkpoints/latest.state.safetensors there; "
            "is it a run directory of `cyclegan train`?"
        )
    return Config.from_dict(ckpt.read_meta(ckpt.resume_state(run_dir))["config"])


def run(args) -> int:
    from .. import checkpoint as ckpt
    from ..distributed import DistContext
    from ..methods import validate
    from ..plots import write_run_page
    from ..runtime import resolve_device
    from ..train import train

    cfg = config_from_args(args)
    if args.resume:
        run_dir = Path(args.resume)
        ckpt.resume_state(run_dir)  # latest, or previous where latest is damaged; else one line saying why not
    else:
        from ..cli import default_run_dir

        run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(args.name)
        if (run_dir / "checkpoints" / "latest.state.safetensors").exists():
            raise UserError(
                f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose another --name"
            )
        if not (cfg.data.root or (cfg.data.dir_a and cfg.data.dir_b)):
            raise UserError("no training data: give a folder holding trainA/ and trainB/, or --data-a DIR --data-b DIR")
        for folder in filter(None, (cfg.data.root, cfg.data.dir_a, cfg.data.dir_b)):  # a typo: before any output
            if not Path(folder).is_dir():
                problem = "is not a folder" if Path(folder).exists() else "does not exist"
                raise UserError(f"training data: {folder} {problem}")
    validate(cfg)  # before anything is printed or created
    resolve_device(cfg.train.device)
    with DistContext.from_env(cfg.train.device) as dist:
        if dist.is_main:
            print(
                f"run directory: {run_dir}"
                + (" (resuming)" if args.resume else "")
                + f"; watch it with: tensorboard --logdir {run_dir}"
            )
            if dist.world_size > 1:
                print(
                    f"{dist.world_size} processes x batch {cfg.train.batch_size} = global batch "
                    f"{dist.world_size * cfg.train.batch_size}"
                )
        from ..train.evaluation import EvaluationHook  # every eval_every_epochs; keeps checkpoints/best

        hooks = EvaluationHook.from_config(cfg, run_dir if args.resume else None) if dist.is_main else None
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            result = train(
                cfg,
                run_dir,
                resume=bool(args.resume),
                rank=dist.rank,
                world_size=dist.world_size,
                reduce_grads=dist.reduce_grads,
                hooks=hooks,
            )
    if dist.is_main:
        s = result.state
        where = (
            f"in epoch {s.epoch + 1}/{s.total_epochs}"
            if s.batch_in_epoch
            else f"after epoch {s.epoch}/{s.total_epochs}"
        )
        how = (
            "preempted"
            if result.preempted
            else "interrupted"
            if result.interrupted
            else "stopped early"
            if result.stopped_early
            else "finished"
        )
        print(
            f"{how} at step {s.step} ({where}) in {result.seconds / 60:.1f} min"
            + (f"; {s.skipped_images} reads of corrupt images skipped" if s.skipped_images else "")
        )
        print(f"checkpoint: {run_dir / 'checkpoints' / 'latest.model.safetensors'}")
        print(f"results page: {write_run_page(run_dir)}")  # samples and curves (cyclegan.plots)
        if result.stopped_early:
            launcher = "torchrun <the same options> -m cyclegan" if dist.world_size > 1 else "cyclegan"
            print(f"continue with: {launcher} train --resume {run_dir}")
    from ..train.preempt import exit_status

    return exit_status(result.interrupted, result.preempted)  # 130 (Ctrl-C), 75 (SIGTERM/SIGUSR1): saved, resumable
