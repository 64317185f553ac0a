"""In-training evaluation: every k epochs, score the current networks on a test subset, log it, and keep
the best model snapshot.

Two numbers come out of a run with evaluation on, and they are not the same thing:
- best-over-training: `checkpoints/best.model.safetensors` and `best.json` hold the snapshot whose
  in-training score (on the first `train.eval_images` test images per direction) was best. It was chosen
  by looking at test data, so it is optimistic; much of the literature reports this kind of number.
  With `train.eval_root` pointing at a validation split (a folder with its own testA/, testB/), the
  choice sees no test data, and the best snapshot's test score is an honest one.
- final: `checkpoints/latest.model.safetensors` at the end of training, chosen by nothing.
`cyclegan evaluate RUN` scores the final model on the whole test split; pass
`RUN/checkpoints/best.model.safetensors` to score the best one, and say which one a reported figure is.

Logged per evaluation, to log.jsonl and TensorBoard: `eval/<direction>/<name>` for every value, and
`eval/<metric>` for the headline number (mean over directions; seg: its one direction), plus
`eval/best_<metric>` so far. Test images are resized to data.crop_size first when training uses
resize_and_crop (the reference's test.py does the same). Only rank 0 evaluates; the training RNG is left
untouched.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from .. import checkpoint as ckpt
from ..config import Config
from ..errors import UserError
from ..evaluate import EVAL_METRICS, LOWER_IS_BETTER, EvalSetup, check_setup, evaluate_translators, test_folders
from ..nets import size_multiple
from ..runtime import unwrap
from ..translate import Translator
from .state import TrainState

BEST_NAME = "best.model.safetensors"


def live_translators(state: TrainState) -> dict[str, Translator]:
    """Translators over the networks being trained (their moving averages when kept), one per direction
    the method has."""
    method = state.method
    nets = nn.ModuleDict({k: unwrap(v) for k, v in state.nets.items()})
    nets.update({k: v for k, v in (state.ema or {}).items()})
    device = next(nets.parameters()).device
    out = {}
    for d, name in method.directions.items():
        in_ch, out_ch = method.io_channels(d)
        out[d] = Translator(
            method.translator(nets, d),
            in_ch,
            out_ch,
            size_multiple(nets[name]),
            device,
            f"{method.name} {d} (step {state.step}, epoch {state.epoch})",
        )
    return out


class EvaluationHook:
    """`epoch_end(state, run_dir)` for `train(..., hooks=...)`: evaluate every `every` epochs."""

    def __init__(self, setup: EvalSetup, metric: str, every: int, directions=("AtoB", "BtoA")):
        if metric not in EVAL_METRICS:
            raise UserError(f"train.eval_metric: unknown metric {metric!r}; choose from: {', '.join(EVAL_METRICS)}")
        if every < 1:
            raise UserError("train.eval_every_epochs must be at least 1 to evaluate")
        self.setup, self.metric, self.every = setup, metric, every
        self.lower_is_better = LOWER_IS_BETTER[metric]
        if metric == "cycle" and len(tuple(directions)) < 2:
            raise UserError(
                f"train.eval_metric=cycle needs a model that translates both ways; this one translates "
                f"{', '.join(directions)} only, with no inverse to reconstruct with: choose seg, fid, kid or content"
            )
        check_setup(setup, directions)
        self._inception = None
        self._tb = None
        self.source = "test images (chosen on test data)"

    @classmethod
    def from_config(cls, cfg: Config, resume_dir: str | Path | None = None) -> "EvaluationHook | None":
        """The hook that cfg.train asks for, or None when eval_every_epochs is 0.

        Test images come from train.eval_root/testA and testB when set, else data.root/testA and
        data.root/testB (when resuming, data.root of the run's config.json). eval_classifier is the judge: for
        eval_metric=content the domain-B classifier (labels from testA/labels.csv), for fcn the segmenter.
        """
        t = cfg.train
        if not t.eval_every_epochs:
            return None
        root = cfg.data.root
        if resume_dir is not None and (Path(resume_dir) / "config.json").is_file():
            root = json.loads((Path(resume_dir) / "config.json").read_text())["data"]["root"] or root
        root = t.eval_root or root
        if not root:
            raise UserError(
                "in-training evaluation (train.eval_every_epochs) needs data.root (or train.eval_root) "
                "holding testA/ and testB/"
            )
        test_a, test_b = test_folders(root)
        judge = t.eval_classifier or None
        if t.eval_metric == "fcn" and not judge:
            raise UserError(
                "train.eval_metric=fcn needs a segmenter of real photos: --set train.eval_classifier=FILE "
                "(e.g. experiments/facades/train_segmenter.py)"
            )
        # at the training crop size when training resizes (as the reference's test.py), else as stored
        size = cfg.data.crop_size if cfg.data.preprocess == "resize_and_crop" else 0
        setup = EvalSetup(
            test_a=test_a,
            test_b=test_b,
            metrics=(t.eval_metric,),
            classifier_b=judge,
            segmenter=judge,
            max_images=t.eval_images,
            batch_size=16,
            size=size,
        )  # content reads the one, fcn the other
        from ..methods import create_method

        directions = tuple(create_method(cfg).directions)  # the instance's: pix2pix translates its data.direction only
        hook = cls(setup, t.eval_metric, t.eval_every_epochs, directions)
        hook.source = f"validation images in {t.eval_root}" if t.eval_root else "test images (chosen on test data)"
        return hook

    def _inception_model(self):
        if self._inception is None and self.metric in ("fid", "kid"):
            from ..metrics.features import InceptionLoader

            self._inception = InceptionLoader(self.setup.inception_weights, self.setup.device)
        return self._inception

    def evaluate(self, state: TrainState):
        """Score the current networks (eval mode, RNG forked) and put them back as they were."""
        translators = live_translators(state)
        nets = list(state.nets.values()) + list((state.ema or {}).values())
        modes = [net.training for net in nets]
        test_train_mode = getattr(state.method, "test_train_mode", False)
        device = next(state.nets.parameters()).device
        try:
            for net in nets:
                net.train(test_train_mode)
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                return evaluate_translators(translators, self.setup, self.metric, self._inception_model())
        finally:
            for net, mode in zip(nets, modes):
                net.train(mode)

    def epoch_end(self, state: TrainState, run_dir: str | Path) -> None:
        if state.epoch % self.every:
            return
        run_dir = Path(run_dir)
        t0 = time.time()
        result = self.evaluate(state)
        value = result.headline
        best = state.best
        improved = not math.isnan(value) and (
            not best
            or best.get("metric") != self.metric
            or (value < best["value"] if self.lower_is_better else value > best["value"])
        )
        if improved:
            state.best = {
                "metric": self.metric,
                "value": value,
                "epoch": state.epoch,
                "step": state.step,
                "images_per_direction": self.setup.max_images or None,
            }
            self._save_best(state, run_dir)
        record = {f"eval/{d}/{k}": v for d, vals in result.values.items() for k, v in vals.items()}
        record.update(
            {
                f"eval/{self.metric}": value,
                f"eval/best_{self.metric}": state.best["value"],
                "eval/epoch": state.epoch,
                "eval/seconds": round(time.time() - t0, 2),
            }
        )
        mark = " (new best)" if improved else f" (best {state.best['value']:.4f} at epoch {state.best['epoch']})"
        print(f"eval epoch {state.epoch}: {self.metric} {value:.4f}{mark}", flush=True)
        self._log(run_dir, state.step, record)  # last: an evaluation abandoned by a stop signal (train/loop.py)
        # has then written nothing that its rerun on resume would repeat

    def _save_best(self, state: TrainState, run_dir: Path) -> None:
        from .checkpointing import model_meta

        meta = {**model_meta(state), "best": dict(state.best)}
        ckpt.save_model(run_dir / "checkpoints" / BEST_NAME, state.inference_nets(), meta)
        note = (
            f"best over in-training evaluations on the first images_per_direction {self.source} per direction; "
            "the final model is checkpoints/latest.model.safetensors"
        )
        (run_dir / "best.json").write_text(
            json.dumps({**state.best, "checkpoint": f"checkpoints/{BEST_NAME}", "note": note}, indent=2) + "\n"
        )

    def _log(self, run_dir: Path, step: int, record: dict) -> None:
        if self._tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(run_dir / "tensorboard"), filename_suffix=".eval")
            except ImportError:
                self._tb = False
        if self._tb:
            for k, v in record.items():
                if isinstance(v, (int, float)) and not math.isnan(v):
                    self._tb.add_scalar(k, v, step)
            self._tb.flush()
        with open(run_dir / "log.jsonl", "a") as f:  # one line, appended: interleaves safely with the loop's
            f.write(json.dumps({"step": step, **record}) + "\n")
