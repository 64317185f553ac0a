"""The loop's extra sinks: wall time in log.jsonl, and optional W&B (a fake `wandb` module: no network)."""

from __future__ import annotations

import json
import sys
import types

import pytest

from cyclegan.config import build_config
from cyclegan.errors import UserError
from cyclegan.train import train
from cyclegan.train.evaluation import EvaluationHook
from cyclegan.train.logger import previous_wall_time


class FakeWandb(types.ModuleType):
    """Records what the loop sends: init's arguments, each log call, finish."""

    def __init__(self):
        super().__init__("wandb")
        self.inits, self.logs, self.finished = [], [], 0

    def init(self, **kwargs):
        self.inits.append(kwargs)
        return self

    def log(self, data, step=None):
        self.logs.append((step, data))

    def finish(self):
        self.finished += 1

    class Image:
        def __init__(self, array):
            self.shape = array.shape


def _records(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_wandb_gets_the_scalars_evaluations_and_sample_grids(image_root, tiny_overrides, tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    cfg = build_config(
        [],
        [],
        tiny_overrides
        + [
            f"data.root={image_root}",
            "log.wandb=true",
            "log.wandb_project=p1",
            "train.eval_every_epochs=1",
            "train.eval_metric=cycle",
            "train.eval_images=2",
        ],
    )
    run = tmp_path / "run"
    train(cfg, run, hooks=EvaluationHook.from_config(cfg))
    assert fake.inits == [{"project": "p1", "name": "run", "config": cfg.to_dict(), "dir": str(run)}]
    assert fake.finished == 1
    steps = [s for s, _ in fake.logs]
    assert steps == sorted(steps)  # W&B refuses steps that go back
    sent = {}
    for step, data in fake.logs:
        for k, v in data.items():
            sent.setdefault(k, {}).setdefault(step, []).append(v)
    # every scalar of log.jsonl reaches W&B at its step, under TensorBoard's tag
    for r in _records(run):
        for k, v in r.items():
            if k not in ("step", "epoch") and isinstance(v, (int, float)):
                tag = k if "/" in k else f"train/{k}" if k in ("lr", "it_per_s", "wall_s") else f"loss/{k}"
                assert v in sent[tag][r["step"]], (tag, r["step"])
    assert {"loss/G_A", "loss/D_A", "eval/AtoB/cycle_l1", "eval/cycle", "epoch/G_A"} <= sent.keys()
    grids = sent["samples"]
    assert len(grids) == 2 and all(g.shape[2] == 3 for [g] in grids.values())  # one grid per epoch, (H, W, 3)


def test_wall_time_is_logged_and_goes_on_after_a_resume(image_root, tiny_overrides, tmp_path):
    run = tmp_path / "run"
    base = tiny_overrides + [f"data.root={image_root}"]
    train(build_config([], [], base + ["train.max_steps=3"]), run)
    first = [r["wall_s"] for r in _records(run)]
    assert first and all(b >= a >= 0 for a, b in zip(first, first[1:]))
    train(build_config([], [], base), run, resume=True)
    after = [r["wall_s"] for r in _records(run)][len(first) :]
    assert after and min(after) >= first[-1]  # the clock continues, it does not restart at 0
    assert previous_wall_time(run / "log.jsonl") == after[-1]


def test_wandb_is_never_imported_unless_asked(image_root, tiny_overrides, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # any `import wandb` now raises ImportError
    base = tiny_overrides + [f"data.root={image_root}", "train.max_steps=2"]
    train(build_config([], [], base), tmp_path / "off")  # off by default: trains without touching wandb
    with pytest.raises(UserError, match="pip install wandb"):
        train(build_config([], [], base + ["log.wandb=true"]), tmp_path / "on")
    with pytest.raises(UserError, match="log.wandb_project"):
        train(build_config([], [], base + ["log.wandb=true", "log.wandb_project= "]), tmp_path / "on")
