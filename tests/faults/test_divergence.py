"""The divergence guard (train/guard.py): a non-finite loss or gradient never reaches the weights, and a diverging
run stops with one line (exit 4) that names the likely cause, its last good checkpoint untouched."""

import copy

import pytest
import torch

from conftest import TINY, needs_horse2zebra
from cyclegan.cli import main
from cyclegan.config import build_config
from cyclegan.errors import UserError
from cyclegan.methods import validate
from cyclegan.train import create_state, train_step
from cyclegan.train.guard import DivergenceGuard, TrainingDiverged

from .helpers import cli, one_line_error, real_data, tiny_sets

pytestmark = needs_horse2zebra


@pytest.fixture
def healthy_run(tmp_path):
    """Two good steps on real images, saved: the last good checkpoint."""
    data = real_data(tmp_path / "data")
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(data),
                "--run-dir",
                str(run),
                "--preset",
                "quick",
                *tiny_sets("optim.n_epochs=10"),
                "--max-steps",
                "2",
            ]
        )
        == 0
    )
    return run, (run / "checkpoints" / "latest.state.safetensors").read_bytes()


def test_a_learning_rate_a_million_times_too_high_stops_the_run(healthy_run):
    run, saved = healthy_run
    out = cli("train", "--resume", run, "--max-steps", "40", "--set", "optim.lr=200")
    assert out.returncode == 4, out.stdout + out.stderr
    line = one_line_error(out)
    assert line.startswith("error: training diverged at step ") and "above train.max_loss=1e+06" in line
    assert (
        f"nothing was saved over the last good checkpoint, {run / 'checkpoints' / 'latest.state.safetensors'} "
        "(step 2)" in line
    )
    assert "a learning rate too high (optim.lr=200" in line and f"cyclegan train --resume {run}" in line
    assert (run / "checkpoints" / "latest.state.safetensors").read_bytes() == saved  # the good state, untouched
    assert not (run / "checkpoints" / "previous.state.safetensors").exists()


def test_non_finite_steps_are_skipped_then_the_run_stops(healthy_run):
    """An absurd learning rate with the loss bound off: weights overflow to inf, losses become NaN; each such step is
    skipped, and train.max_bad_steps=3 of them in a row stop the run."""
    run, saved = healthy_run
    out = cli("train", "--resume", run, "--max-steps", "40", "--set", "optim.lr=1e30", "--set", "train.max_loss=0")
    assert out.returncode == 4, out.stdout + out.stderr
    line = one_line_error(out)
    assert "(3 step(s) in a row with non-finite values, each skipped; train.max_bad_steps=3)" in line
    assert " is nan" in line or " is inf" in line
    assert "(step 2)" in line  # the epoch end at step 4 fell among the skipped steps: it saved nothing
    assert (run / "checkpoints" / "latest.state.safetensors").read_bytes() == saved


def _state(image_root, *extra):
    cfg = validate(build_config([], [], TINY + [f"data.root={image_root}", "loss.pool_size=3", *extra]))
    return create_state(cfg, torch.device("cpu"), 0)


def _batch(seed: int = 0, nan: bool = False):
    g = torch.Generator().manual_seed(seed)
    batch = {k: torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for k in ("A", "B")}
    if nan:
        batch["A"][0, 0, 5, 5] = float("nan")
    return batch


@pytest.mark.parametrize("precision", ["fp32", "bf16"])  # bf16 autocast: the losses and gradients are float32
def test_a_non_finite_step_changes_nothing(image_root, tmp_path, precision):
    state = _state(image_root, f"train.precision={precision}")
    guard = DivergenceGuard(max_bad_steps=3)
    train_step(state, _batch(0), guard=guard)  # one good step: the optimizers have state
    guard.after_step(state, tmp_path)
    nets = {k: copy.deepcopy(v.state_dict()) for k, v in state.nets.items()}
    opts = copy.deepcopy((state.opt_g.state_dict(), state.opt_d.state_dict()))
    pooled = {k: len(p.images) for k, p in state.pools.items()}
    for _ in range(2):
        terms = train_step(state, _batch(1, nan=True), guard=guard)
        guard.after_step(state, tmp_path)
        assert not all(torch.isfinite(v) for v in terms.values())  # the loss was NaN...
    for k, net in state.nets.items():  # ...and no weight, optimizer moment or pooled image saw it
        assert all(torch.equal(v, nets[k][n]) for n, v in net.state_dict().items()), k
    assert str((state.opt_g.state_dict(), state.opt_d.state_dict())) == str(opts)
    assert {k: len(p.images) for k, p in state.pools.items()} == pooled
    assert guard.bad_in_row == 2 and state.step == 3
    train_step(state, _batch(2), guard=guard)  # a good step resets the count
    guard.after_step(state, tmp_path)
    assert guard.bad_in_row == 0
    for _ in range(2):
        train_step(state, _batch(3, nan=True), guard=guard)
        guard.after_step(state, tmp_path)
    train_step(state, _batch(3, nan=True), guard=guard)
    with pytest.raises(TrainingDiverged, match=r"training diverged at step 7: the generators' loss is nan \(3 step"):
        guard.after_step(state, tmp_path)


def test_the_guard_leaves_good_steps_bit_identical(image_root):
    plain, guarded = _state(image_root), _state(image_root)
    guard = DivergenceGuard(max_bad_steps=3, max_loss=1e6)
    for seed in range(3):
        a, b = train_step(plain, _batch(seed)), train_step(guarded, _batch(seed), guard=guard)
        assert all(torch.equal(a[k], b[k]) for k in a)
    for k in plain.nets:
        assert all(torch.equal(v, guarded.nets[k].state_dict()[n]) for n, v in plain.nets[k].state_dict().items())


@pytest.mark.parametrize(
    "setting, message",
    [
        ("train.max_bad_steps=-1", "train.max_bad_steps must be 0"),
        ("train.max_loss=-5", "train.max_loss must be 0"),
        ("train.max_loss=inf", "train.max_loss must be 0"),
    ],
)
def test_guard_settings_are_checked(setting, message):
    with pytest.raises(UserError, match=message):
        validate(build_config([], [], [setting]))
