"""train/adam.py: fused Adam on channels_last weights gives the stock optimizer's numbers bit for bit, keeps every
layout as it was, and copies nothing."""

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from cyclegan.train.adam import Adam


def _net() -> nn.Module:
    """A small channels_last network (its 1x1 weight and biases are contiguous either way)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 4, stride=2), nn.Conv2d(4, 1, 1))
    return net.to(memory_format=torch.channels_last)


def _train(opt_class, steps: int = 4, **kw):
    net = _net()
    opt = opt_class(net.parameters(), lr=1e-2, betas=(0.5, 0.999), **kw)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(2, 3, 12, 12, generator=g).contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        net(x).square().mean().backward()
        opt.step()
    return net, opt


@pytest.mark.parametrize("kw", [{"fused": True}, {"foreach": True}, {"foreach": False}])
def test_the_same_numbers_as_stock_adam_and_the_same_layouts(kw):
    ours, opt = _train(Adam, **kw)
    stock, stock_opt = _train(torch.optim.Adam, **kw)
    for (name, p), q in zip(ours.named_parameters(), stock.parameters()):
        assert torch.equal(p, q), name
        assert p.shape == q.shape and p.stride() == q.stride() and p.grad.stride() == q.grad.stride(), name
        for k in ("exp_avg", "exp_avg_sq"):
            mine, theirs = opt.state[p][k], stock_opt.state[q][k]
            assert torch.equal(mine, theirs) and mine.stride() == theirs.stride(), (name, k)
    assert any(p.dim() == 4 and not p.is_contiguous() for p in ours.parameters())  # the case under test
    saved = opt.state_dict()["state"]
    assert all(v["exp_avg"].shape == p.shape for v, p in zip(saved.values(), ours.parameters()))


def test_the_fused_step_copies_nothing():
    net, opt = _train(Adam, steps=1, fused=True)
    stock_net, stock_opt = _train(torch.optim.Adam, steps=1, fused=True)

    def copies(optimizer):  # of tensors, not of the 0-d step counts
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            optimizer.step()
        return sum(e.name in ("aten::clone", "aten::copy_") and any(e.input_shapes[0]) for e in prof.events())

    assert copies(stock_opt) > 0  # PyTorch's kernel copies channels_last tensors (why train/adam.py exists)
    assert copies(opt) == 0


def test_the_grad_scaler_steps_through_it():
    """fp16 runs step through torch.amp.GradScaler, which hands fused optimizers its scale and inf flag (each
    network is built after torch.manual_seed(0), so both loops draw the same inputs)."""
    results = []
    for opt_class in (Adam, torch.optim.Adam):
        net = _net()
        opt = opt_class(net.parameters(), lr=1e-2, fused=True)
        scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            x = torch.randn(2, 3, 12, 12).contiguous(memory_format=torch.channels_last)
            scaler.scale(net(x).square().mean()).backward()
            scaler.step(opt)
            scaler.update()
        results.append([p.detach().clone() for p in net.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*results))
