"""Moving average of the generators' weights (optim.ema_decay): the recursion, its place in training,
snapshots and resume."""

import pytest
import torch
from torch import nn

from conftest import flat_tensors
from cyclegan.checkpoint import load_model, load_tree
from cyclegan.config import build_config
from cyclegan.errors import UserError
from cyclegan.train import create_state, train, train_step
from cyclegan.train.state import make_ema, update_ema


def test_update_follows_the_recursion_with_its_warm_up():
    net = nn.ModuleDict({"G": nn.Linear(2, 1)})
    ema = make_ema(net, ["G"])
    assert not any(p.requires_grad for p in ema.parameters())
    with torch.no_grad():
        ema["G"].weight.fill_(1.0)
        net["G"].weight.fill_(3.0)
    update_ema(ema, net, decay=0.9, step=0)  # warm-up: d = min(0.9, 1/10) = 0.1
    assert torch.allclose(ema["G"].weight, torch.full((1, 2), 0.1 * 1.0 + 0.9 * 3.0))
    with torch.no_grad():
        ema["G"].weight.fill_(1.0)
    update_ema(ema, net, decay=0.9, step=1000)  # d = min(0.9, 1001/1010) = 0.9
    assert torch.allclose(ema["G"].weight, torch.full((1, 2), 0.9 * 1.0 + 0.1 * 3.0))
    # the live network is untouched
    assert torch.equal(net["G"].weight, torch.full((1, 2), 3.0))


def test_ema_is_a_shadow_snapshots_hold_it_and_training_is_unchanged(image_root, tiny_overrides, tmp_path):
    base = tiny_overrides + [f"data.root={image_root}", "train.max_steps=5"]
    plain = train(build_config([], [], base), tmp_path / "plain").state
    averaged = train(build_config([], [], base + ["optim.ema_decay=0.5"]), tmp_path / "ema").state
    # the trained weights are bit-identical with and without the average (it draws no random numbers)
    for k, net in plain.nets.items():
        for (name, a), b in zip(net.state_dict().items(), averaged.nets[k].state_dict().values()):
            assert torch.equal(a, b), f"{k}.{name}"
    assert set(averaged.ema) == {"G_A", "G_B"}
    # the model snapshot holds the averages, not the trained weights
    model, _ = load_model(tmp_path / "ema" / "checkpoints" / "latest.model.safetensors")
    w_ema = averaged.ema["G_A"].state_dict()
    w_live = averaged.nets["G_A"].state_dict()
    assert all(torch.equal(model["G_A"][k], w_ema[k]) for k in w_ema)
    assert any(not torch.equal(w_ema[k], w_live[k]) for k in w_ema if w_ema[k].is_floating_point())


def test_ema_by_hand_over_a_few_steps(tiny_overrides):
    cfg = build_config([], [], tiny_overrides + ["optim.ema_decay=0.8", "loss.pool_size=0"])
    state = create_state(cfg, torch.device("cpu"))
    expected = {k: v.clone() for k, v in state.nets["G_B"].state_dict().items()}
    g = torch.Generator().manual_seed(0)
    for step in range(4):
        batch = {"A": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1}
        train_step(state, batch)
        d = min(0.8, (1 + step) / (10 + step))
        for k, v in state.nets["G_B"].state_dict().items():
            expected[k] = d * expected[k] + (1 - d) * v if v.is_floating_point() else v.clone()
    for k, v in state.ema["G_B"].state_dict().items():
        assert torch.allclose(v, expected[k], atol=1e-6), k


def test_resume_with_ema_is_bit_identical(image_root, tiny_overrides, tmp_path):
    base = tiny_overrides + [f"data.root={image_root}", "optim.ema_decay=0.9", "loss.pool_size=3"]
    train(build_config([], [], base + ["train.max_steps=8"]), tmp_path / "straight")
    train(build_config([], [], base + ["train.max_steps=3"]), tmp_path / "resumed")
    train(build_config([], [], base + ["train.max_steps=8"]), tmp_path / "resumed", resume=True)
    a, _ = load_tree(tmp_path / "straight" / "checkpoints" / "latest.state.safetensors")
    b, _ = load_tree(tmp_path / "resumed" / "checkpoints" / "latest.state.safetensors")
    ta, tb = dict(flat_tensors(a["ema"])), dict(flat_tensors(b["ema"]))
    assert ta and ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k


def test_turning_ema_on_at_resume_starts_from_the_resumed_weights(image_root, tiny_overrides, tmp_path):
    base = tiny_overrides + [f"data.root={image_root}"]
    train(build_config([], [], base + ["train.max_steps=3"]), tmp_path / "run")
    with pytest.warns(UserWarning, match=r"optim.ema_decay 0.0 -> 0.9\): from here on the run differs"):
        state = train(
            build_config([], [], base + ["train.max_steps=3", "optim.ema_decay=0.9"]), tmp_path / "run", resume=True
        ).state
    assert state.step == 3
    for k in ("G_A", "G_B"):
        for a, b in zip(state.ema[k].state_dict().values(), state.nets[k].state_dict().values()):
            assert torch.equal(a, b)


@pytest.mark.parametrize("decay", ["1.0", "-0.1"])
def test_ema_decay_out_of_range_is_refused(image_root, tiny_overrides, tmp_path, decay):
    cfg = build_config([], [], tiny_overrides + [f"data.root={image_root}", f"optim.ema_decay={decay}"])
    with pytest.raises(UserError, match="optim.ema_decay"):
        train(cfg, tmp_path / "run")
