"""In-training evaluation: logged values, the best checkpoint, and no effect on training itself."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY, write_images
from cyclegan.cli import main
from cyclegan.config import build_config
from cyclegan.errors import UserError
from cyclegan.evaluate import LiveResult, evaluate_translators
from cyclegan.train import create_state, train
from cyclegan.train import loop as loop_module
from cyclegan.train.checkpointing import load_resume
from cyclegan.train.evaluation import BEST_NAME, EvaluationHook
from cyclegan.translate import load_translator

EVAL = ["train.eval_every_epochs=1", "train.eval_metric=cycle", "train.eval_images=2"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hook") / "data"
    for i, name in enumerate(("trainA", "trainB", "testA", "testB")):
        write_images(root / name, 4 if name.startswith("train") else 3, (40, 36), seed=i)
    return root


def _cfg(root: Path, extra=()):
    return build_config(["paper"], [], TINY + [f"data.root={root}", "train.batch_size=2", *extra])


@pytest.fixture(scope="module")
def evaluated_run(data_root: Path):
    cfg = _cfg(data_root, EVAL)
    run = data_root.parent / "run_eval"
    result = train(cfg, run, hooks=EvaluationHook.from_config(cfg))
    return run, result


def _eval_records(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "eval/cycle" in r]


def test_hook_logs_and_keeps_best(evaluated_run, data_root: Path):
    run, result = evaluated_run
    records = _eval_records(run)
    assert [r["eval/epoch"] for r in records] == [1, 2]
    values = [r["eval/cycle"] for r in records]
    for r in records:  # the headline is the mean over both directions
        assert r["eval/cycle"] == pytest.approx((r["eval/AtoB/cycle_l1"] + r["eval/BtoA/cycle_l1"]) / 2)
    best_epoch = 1 + values.index(min(values))
    assert records[-1]["eval/best_cycle"] == min(values)
    assert result.state.best["epoch"] == best_epoch and result.state.best["value"] == min(values)
    assert json.loads((run / "best.json").read_text())["epoch"] == best_epoch
    assert list((run / "tensorboard").glob("*.eval"))

    # the best checkpoint is the snapshot of that epoch: scoring it again gives the logged value
    best = run / "checkpoints" / BEST_NAME
    translators = {d: load_translator(best, d, "cpu") for d in ("AtoB", "BtoA")}
    hook = EvaluationHook.from_config(_cfg(data_root, EVAL))
    again = evaluate_translators(translators, hook.setup, "cycle")
    assert again.headline == pytest.approx(min(values), rel=1e-6)
    if best_epoch == 2:  # then it holds the final weights
        a, b = load_file(best), load_file(run / "checkpoints" / "latest.model.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_evaluation_does_not_change_training(evaluated_run, data_root: Path):
    """Same seed with and without evaluation: bit-identical weights (RNG forked, train mode restored)."""
    run, _ = evaluated_run
    plain = data_root.parent / "run_plain"
    train(_cfg(data_root), plain)
    a = load_file(run / "checkpoints" / "latest.model.safetensors")
    b = load_file(plain / "checkpoints" / "latest.model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Ended(Exception):
    """Stands for the process ending in the middle of an evaluation: a preemption's SIGKILL after its grace period
    (on a CPU an evaluation can outlast it), an out-of-memory kill, a power cut. Nothing after it runs."""


class _EndsInEvaluation(EvaluationHook):
    def evaluate(self, state):
        raise _Ended


def test_a_process_ended_during_an_evaluation_loses_only_the_evaluation(evaluated_run, data_root: Path, tmp_path):
    """The epoch's training is saved before the evaluation starts, marked pending; the resumed run evaluates that
    epoch first and then ends exactly as the run that was never stopped (no timed save in this short run: without
    the save before the evaluation there would be nothing to resume from)."""
    cfg = _cfg(data_root, EVAL)
    run = tmp_path / "run"
    with pytest.raises(_Ended):
        train(cfg, run, hooks=_EndsInEvaluation.from_config(cfg))
    tree, _ = load_resume(run)
    assert tree["progress"]["epoch"] == 1 and tree["progress"]["step"] == 2 and tree["progress"]["eval_pending"]
    assert not _eval_records(run)  # it ended before logging anything
    straight, _ = evaluated_run
    snapshot = "epoch_0001.model.safetensors"  # the epoch's end was done before the evaluation: its snapshot too
    a, b = load_file(run / "checkpoints" / snapshot), load_file(straight / "checkpoints" / snapshot)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    _resume_ends_as_straight(cfg, run, straight)


def _resume_ends_as_straight(cfg, run: Path, straight: Path) -> None:
    """Resuming `run` (stopped in its first evaluation) evaluates that epoch first, then ends exactly as `straight`."""
    result = train(cfg, run, resume=True, hooks=EvaluationHook.from_config(cfg))
    epoch_ends = [
        r["epoch_end"] for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "epoch_end" in r
    ]
    assert epoch_ends == [1, 2]  # each once
    assert [(r["step"], r["eval/epoch"], r["eval/cycle"]) for r in _eval_records(run)] == [
        (r["step"], r["eval/epoch"], r["eval/cycle"]) for r in _eval_records(straight)
    ]
    best = json.loads((straight / "best.json").read_text())
    assert result.state.best == {k: best[k] for k in result.state.best}
    tree, _ = load_resume(run)
    assert not tree["progress"]["eval_pending"]
    for name in ("latest.model.safetensors", BEST_NAME):
        a, b = load_file(run / "checkpoints" / name), load_file(straight / "checkpoints" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


class _SignalledInEvaluation(EvaluationHook):
    """SIGTERM (a cluster ending the job) a moment into an evaluation longer than any grace period."""

    def evaluate(self, state):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)  # a signal that only sets the stop flag lets this run out (PEP 475) and fail below
        raise AssertionError("the stop signal did not end the evaluation")


class _NeverEvaluates(EvaluationHook):
    def evaluate(self, state):
        raise AssertionError("evaluated after a stop signal during the epoch's end")


@pytest.mark.parametrize("when", ["during the evaluation", "before it, during the epoch's end"])
def test_a_stop_signal_does_not_wait_for_an_evaluation(evaluated_run, data_root, tmp_path, monkeypatch, capsys, when):
    """A stop signal during an evaluation abandons it at once (on a CPU it can outlast the grace period before
    SIGKILL, and a killed job exits 137, which job scripts do not requeue); one during the epoch's end skips it.
    The run stops without training or saving more: its resume state is the one saved before the evaluation,
    pending, and the resumed run ends exactly as the run that was never stopped."""
    cfg = _cfg(data_root, EVAL)
    run = tmp_path / "run"
    hook_class = _SignalledInEvaluation
    if when.startswith("before"):
        hook_class = _NeverEvaluates
        saves = loop_module.save_checkpoint

        def save_then_signal(state, *args, **kwargs):
            saves(state, *args, **kwargs)
            if state.eval_pending:
                os.kill(os.getpid(), signal.SIGTERM)

        monkeypatch.setattr(loop_module, "save_checkpoint", save_then_signal)
    result = train(cfg, run, hooks=hook_class.from_config(cfg))
    monkeypatch.undo()
    assert result.stopped_early and result.preempted and result.state.step == 2
    tree, _ = load_resume(run)
    assert tree["progress"]["epoch"] == 1 and tree["progress"]["step"] == 2 and tree["progress"]["eval_pending"]
    assert not _eval_records(run)
    capsys.readouterr()
    assert main(["check", str(run)]) == 0
    assert (
        "continues from latest.state.safetensors (resume state, step 2 (epoch 1); that epoch's evaluation is "
        "pending: --resume runs it first)" in capsys.readouterr().out
    )
    _resume_ends_as_straight(cfg, run, evaluated_run[0])


@pytest.mark.parametrize(
    "metric, values, best_epoch, saves",
    [
        ("cycle", [0.5, 0.2, 0.3], 2, [1, 2]),  # lower is better
        ("seg", [0.1, 0.3, 0.2], 2, [1, 2]),  # higher is better
        ("cycle", [0.2, 0.2, 0.1], 3, [1, 3]),  # a tie keeps the earlier snapshot
    ],
)
def test_best_selection(data_root: Path, tmp_path: Path, monkeypatch, metric, values, best_epoch, saves):
    cfg = _cfg(data_root, ["train.eval_every_epochs=1", "train.eval_metric=cycle"])
    state = create_state(cfg, torch.device("cpu"))
    hook = EvaluationHook.from_config(cfg)
    hook.metric, hook.lower_is_better = metric, metric == "cycle"
    scores = iter(values)
    monkeypatch.setattr(hook, "evaluate", lambda s: LiveResult({"AtoB": {"x": 0.0}}, next(scores)))
    saved = []
    monkeypatch.setattr(hook, "_save_best", lambda s, run: saved.append(s.epoch))
    for epoch in (1, 2, 3):
        state.epoch, state.step = epoch, 10 * epoch
        hook.epoch_end(state, tmp_path)
    assert state.best == {
        "metric": metric,
        "value": values[best_epoch - 1],
        "epoch": best_epoch,
        "step": 10 * best_epoch,
        "images_per_direction": 100,
    }
    assert saved == saves


def test_every_k_epochs(data_root: Path, tmp_path: Path, monkeypatch):
    cfg = _cfg(data_root, ["train.eval_every_epochs=2", "train.eval_metric=cycle"])
    state = create_state(cfg, torch.device("cpu"))
    hook = EvaluationHook.from_config(cfg)
    calls = []
    monkeypatch.setattr(hook, "evaluate", lambda s: calls.append(s.epoch) or LiveResult({}, 1.0))
    monkeypatch.setattr(hook, "_save_best", lambda s, run: None)
    for epoch in range(1, 6):
        state.epoch = epoch
        hook.epoch_end(state, tmp_path)
    assert calls == [2, 4]


def test_from_config(data_root: Path, tmp_path: Path):
    assert EvaluationHook.from_config(_cfg(data_root)) is None  # eval_every_epochs = 0: off
    with pytest.raises(UserError, match="testA"):
        EvaluationHook.from_config(_cfg(tmp_path, EVAL))
    with pytest.raises(UserError, match="unknown metric"):
        EvaluationHook.from_config(_cfg(data_root, ["train.eval_every_epochs=1", "train.eval_metric=bleu"]))
    with pytest.raises(UserError, match="classifier"):
        EvaluationHook.from_config(_cfg(data_root, ["train.eval_every_epochs=1", "train.eval_metric=content"]))


def test_eval_root_selects_on_a_validation_split(data_root: Path, tmp_path: Path):
    """train.eval_root: in-training scores come from that folder's testA/testB, not data.root's test split."""
    val = tmp_path / "val"
    for i, name in enumerate(("testA", "testB")):
        write_images(val / name, 2, (40, 36), seed=10 + i)
    cfg = _cfg(data_root, EVAL + [f"train.eval_root={val}"])
    hook = EvaluationHook.from_config(cfg)
    assert Path(hook.setup.test_a) == val / "testA" and Path(hook.setup.test_b) == val / "testB"
    run = tmp_path / "run"
    train(cfg, run, hooks=hook)
    logged = _eval_records(run)[-1]["eval/cycle"]
    best = run / "checkpoints" / BEST_NAME
    translators = {d: load_translator(best, d, "cpu") for d in ("AtoB", "BtoA")}
    assert evaluate_translators(translators, hook.setup, "cycle").headline == pytest.approx(logged, rel=1e-6)
    test_split = EvaluationHook.from_config(_cfg(data_root, EVAL)).setup
    assert evaluate_translators(translators, test_split, "cycle").headline != pytest.approx(logged, rel=1e-3)
    assert f"validation images in {val}" in json.loads((run / "best.json").read_text())["note"]


def test_pix2pix_is_evaluated_in_its_own_direction(data_root: Path, tmp_path: Path, capsys):
    """A pix2pix model translates only data.direction; in-training seg evaluation (which scores AtoB) must
    run for an AtoB model and be refused, before training, for a BtoA one; the cycle metric, which needs an
    inverse, is refused before training and by `cyclegan evaluate` (a note when other metrics come with it)."""

    def cfg(direction):
        return build_config(
            ["pix2pix"],
            [],
            TINY
            + [
                f"data.root={data_root}",
                f"data.direction={direction}",
                "train.eval_every_epochs=1",
                "train.eval_metric=seg",
                "train.eval_images=2",
            ],
        )

    run = tmp_path / "p2p"
    train(cfg("AtoB"), run, hooks=EvaluationHook.from_config(cfg("AtoB")))
    records = [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if "eval/seg" in r]
    assert len(records) == 2 and 0 <= records[-1]["eval/AtoB/per_pixel_acc"] <= 1
    with pytest.raises(UserError, match="scores AtoB, which this model does not translate"):
        EvaluationHook.from_config(cfg("BtoA"))
    # one network, no inverse: the cycle metric is refused before training, and by `cyclegan evaluate`
    cycle_cfg = build_config(
        ["pix2pix"], [], TINY + [f"data.root={data_root}", "train.eval_every_epochs=1", "train.eval_metric=cycle"]
    )
    with pytest.raises(UserError, match="translates AtoB only, with no inverse"):
        EvaluationHook.from_config(cycle_cfg)
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--data",
                str(data_root),
                "--metrics",
                "cycle",
                "--out",
                str(tmp_path / "o"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "translates AtoB only, with no inverse" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert (
        main(
            [
                "evaluate",
                str(run),
                "--data",
                str(data_root),
                "--metrics",
                "seg,cycle",
                "--out",
                str(tmp_path / "o2"),
                "--quiet",
                "--no-gallery",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "o2" / "metrics.json").read_text())
    assert "cycle_l1" not in report["metrics"]["AtoB"] and report["notes"][0].startswith("cycle: not computed")


def test_pix2pix_labels_to_photo_is_evaluated_by_fcn_score(data_root: Path, tmp_path: Path):
    """train.eval_metric=fcn with the segmenter as train.eval_classifier: a BtoA (labels->photo) pix2pix logs its
    FCN-score each epoch; without a segmenter it is refused before training, naming the setting."""
    from cyclegan.metrics.segmentation import FACADES_CLASSES
    from cyclegan.segmenter import SegNet, save_segmenter

    kwargs = {"in_ch": 3, "num_classes": 12, "width": 4, "depth": 2}
    save_segmenter(tmp_path / "seg.safetensors", SegNet(**kwargs), 3, list(FACADES_CLASSES), "facades", kwargs=kwargs)
    overrides = TINY + [
        f"data.root={data_root}",
        "data.direction=BtoA",
        "train.eval_every_epochs=1",
        "train.eval_metric=fcn",
        "train.eval_images=2",
    ]
    with pytest.raises(UserError, match="train.eval_metric=fcn needs a segmenter .*train.eval_classifier=FILE"):
        EvaluationHook.from_config(build_config(["pix2pix"], [], overrides))
    cfg = build_config(["pix2pix"], [], overrides + [f"train.eval_classifier={tmp_path / 'seg.safetensors'}"])
    train(cfg, tmp_path / "run", hooks=EvaluationHook.from_config(cfg))
    records = [r for r in map(json.loads, (tmp_path / "run" / "log.jsonl").read_text().splitlines()) if "eval/fcn" in r]
    assert len(records) == 2 and 0 <= records[-1]["eval/BtoA/fcn_per_pixel_acc"] <= 1
