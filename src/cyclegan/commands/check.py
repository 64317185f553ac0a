"""`cyclegan check RUN`: verify every checkpoint of a run and say which state a resume would start from."""

from __future__ import annotations

import argparse
from pathlib import Path

DAMAGED = 1  # exit status when a checkpoint is damaged (the last line says whether the run can still resume)

NAME = "check"
HELP = "verify a run's checkpoints and say whether it can resume"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        NAME,
        help=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read every checkpoint of a run in full (header, size, every tensor, finite values) "
        "and say which resume state `train --resume` would continue from.\n\n"
        "exit status: 0 all readable, 1 some damaged (see the last line), 2 not a run.\n\n"
        "examples:\n"
        "  cyclegan check runs/h2z\n"
        "  cyclegan check runs/h2z/checkpoints/latest.state.safetensors",
    )
    p.add_argument("run", metavar="RUN", help="run directory (or its checkpoints/ folder, or one checkpoint file)")
    return p


def check_file(path: Path) -> tuple[str | None, str]:
    """(problem or None, description) of one checkpoint file, read in full."""
    import torch

    from .. import checkpoint as ckpt
    from ..errors import UserError

    problem = ckpt.verify_file(path)
    if problem:
        return problem, ""
    try:
        tree, meta = ckpt.load_tree(path)
    except UserError as e:
        return str(e).removeprefix(f"{path}: "), ""
    except (KeyError, TypeError, ValueError) as e:  # a header whose tree names tensors that are not there
        return f"its metadata does not match its tensors ({type(e).__name__}: {e})", ""
    fmt = meta.get("format")
    kind = {ckpt.FORMAT_STATE: "resume state", ckpt.FORMAT_MODEL: "model snapshot"}.get(fmt, f"format {fmt!r}")
    where = f", step {meta['step']} (epoch {meta.get('epoch', '?')})" if "step" in meta else ""
    progress = tree.get("progress") if isinstance(tree, dict) else None
    if isinstance(progress, dict) and bool(progress.get("eval_pending", False)):  # saved before the evaluation
        where += "; that epoch's evaluation is pending: --resume runs it first"
    bad = [name for name, t in _tensors(tree) if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        return f"{len(bad)} tensor(s) hold NaN or inf, e.g. {bad[0]}", kind + where
    return None, kind + where


def _tensors(tree, prefix: str = ""):
    import torch

    if isinstance(tree, torch.Tensor):
        yield prefix, tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            yield from _tensors(v, f"{prefix}/{k}")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from _tensors(v, f"{prefix}/{i}")


def _files(target: Path) -> tuple[list[Path], Path | None]:
    """(checkpoint files to check, the run directory or None)."""
    from ..errors import UserError

    if target.is_file():
        return [target], None
    if not target.is_dir():
        raise UserError(f"{target} not found")
    folder = target / "checkpoints" if (target / "checkpoints").is_dir() else target
    files = sorted(f for f in folder.glob("*.safetensors") if not f.name.startswith("."))
    if not files:
        raise UserError(f"{target}: no checkpoints (*.safetensors) there; is it a run directory of `cyclegan train`?")
    return files, folder.parent if folder.name == "checkpoints" else None


def run(args) -> int:
    import warnings

    from .. import checkpoint as ckpt
    from .. import machine
    from ..errors import UserError

    target = Path(args.run)
    files, run_dir = _files(target)
    damaged = 0
    width = max(len(f.name) for f in files)
    for f in files:
        problem, description = check_file(f)
        damaged += problem is not None
        print(f"{'DAMAGED' if problem else 'ok':8} {f.name:{width}}  {problem or description}")
    folder = files[0].parent
    for tmp in sorted(folder.glob(".*.tmp")):
        print(f"{'leftover':8} {tmp.name}  a temporary file of an interrupted write; safe to delete")
    if run_dir is not None:
        for rec in machine.read(run_dir):  # where each start or resume of the run computed
            print(f"{'machine':8} from step {rec.get('step', '?')}: {machine.describe(rec)}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                state = ckpt.resume_state(run_dir)
            problem, description = check_file(state)
            if problem:
                raise UserError(problem)
            print(f"can resume: `cyclegan train --resume {run_dir}` continues from {state.name} ({description})")
        except UserError as e:
            print(f"cannot resume: {e}")
    return DAMAGED if damaged else 0
