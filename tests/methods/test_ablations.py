"""The paper's ablations (Sec. 5.1.4, Tables 4-5) as presets: each really removes its terms.

The loss dictionary names exactly the active terms, and a zero-weight term costs no network pass:
forward calls of every network are counted with hooks.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY as _TINY
from cyclegan.config import PRESETS, build_config
from cyclegan.methods import create_method
from cyclegan.train.state import create_state
from cyclegan.train.step import train_step

# Passes are counted as the paper writes them, one network call each; the default path's fused calls
# (methods/fused.py) merge some of them and are held to these by tests/methods/test_fused.py.
TINY = _TINY + ["train.fuse_passes=false"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a busy 2-core machine two OpenMP threads run these small nets ~10x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


NO_IDT = ["loss.lambda_identity=0"]

# preset(s), extra overrides -> generator-phase terms, forward calls per network in the generator phase,
# and the discriminators that get trained.
CASES = {
    "full+identity": (
        ["paper"],
        [],
        {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B"},
        {"G_A": 3, "G_B": 3, "D_A": 1, "D_B": 1},
        ("D_A", "D_B"),
    ),
    "full": (
        ["paper"],
        NO_IDT,
        {"G_A", "G_B", "cycle_A", "cycle_B"},
        {"G_A": 2, "G_B": 2, "D_A": 1, "D_B": 1},
        ("D_A", "D_B"),
    ),
    "gan_only": (["gan_only"], [], {"G_A", "G_B"}, {"G_A": 1, "G_B": 1, "D_A": 1, "D_B": 1}, ("D_A", "D_B")),
    "cycle_only": (["cycle_only"], [], {"cycle_A", "cycle_B"}, {"G_A": 2, "G_B": 2, "D_A": 0, "D_B": 0}, ()),
    # forward cycle only: F(G(x)) ~ x, so G(F(y)) is never computed
    "gan_forward": (
        ["gan_forward"],
        NO_IDT,
        {"G_A", "G_B", "cycle_A"},
        {"G_A": 1, "G_B": 2, "D_A": 1, "D_B": 1},
        ("D_A", "D_B"),
    ),
    "gan_backward": (
        ["gan_backward"],
        NO_IDT,
        {"G_A", "G_B", "cycle_B"},
        {"G_A": 2, "G_B": 1, "D_A": 1, "D_B": 1},
        ("D_A", "D_B"),
    ),
    # with identity on, gan_forward keeps only the identity term whose cycle weight is nonzero (idt_B)
    "gan_forward+identity": (
        ["gan_forward"],
        [],
        {"G_A", "G_B", "cycle_A", "idt_B"},
        {"G_A": 1, "G_B": 3, "D_A": 1, "D_B": 1},
        ("D_A", "D_B"),
    ),
}


def _count_calls(nets) -> dict[str, int]:
    counts = {k: 0 for k in nets}
    for k, net in nets.items():
        net.register_forward_hook(lambda m, args, out, k=k: counts.__setitem__(k, counts[k] + 1))
    return counts


def _batch(seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"A": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(1, 3, 32, 32, generator=g) * 2 - 1}


def test_presets_zero_the_right_weights():
    assert PRESETS["gan_only"] == {"loss.lambda_a": 0.0, "loss.lambda_b": 0.0, "loss.lambda_identity": 0.0}
    assert PRESETS["cycle_only"] == {"loss.lambda_gan_a": 0.0, "loss.lambda_gan_b": 0.0, "loss.lambda_identity": 0.0}
    assert PRESETS["gan_forward"] == {"loss.lambda_b": 0.0}
    assert PRESETS["gan_backward"] == {"loss.lambda_a": 0.0}


@pytest.mark.parametrize("case", list(CASES))
def test_terms_and_network_passes(case):
    presets, extra, terms_expected, calls_expected, active = CASES[case]
    cfg = build_config(presets, [], TINY + extra)
    method = create_method(cfg)
    torch.manual_seed(0)
    nets = method.build_networks()
    counts = _count_calls(nets)
    terms, fakes = method.generator_loss(nets, _batch())
    assert set(terms) == terms_expected
    assert counts == calls_expected
    assert method.active_discriminators() == active and set(fakes) == set(active)
    assert all(t.requires_grad and torch.isfinite(t) for t in terms.values())


def test_full_step_runs_every_network_and_trains_both_discriminators():
    state = create_state(build_config(["paper"], [], TINY + NO_IDT), torch.device("cpu"))
    counts = _count_calls(state.nets)
    terms = train_step(state, _batch())
    assert set(terms) == {"G_A", "G_B", "cycle_A", "cycle_B", "D_A", "D_B"}
    # D: once on G's output in the generator phase, then once on real and once on pooled fake
    assert counts == {"G_A": 2, "G_B": 2, "D_A": 3, "D_B": 3}


def test_cycle_only_never_runs_or_updates_a_discriminator():
    state = create_state(build_config(["cycle_only"], [], TINY), torch.device("cpu"))
    assert state.opt_d is None and state.pools == {}
    before = {k: [p.clone() for p in state.nets[k].parameters()] for k in ("D_A", "D_B", "G_A")}
    counts = _count_calls(state.nets)
    terms = train_step(state, _batch())
    assert set(terms) == {"cycle_A", "cycle_B"}
    assert counts == {"G_A": 2, "G_B": 2, "D_A": 0, "D_B": 0}
    for k in ("D_A", "D_B"):
        assert all(torch.equal(a, b) for a, b in zip(before[k], state.nets[k].parameters()))
        assert all(p.grad is None for p in state.nets[k].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before["G_A"], state.nets["G_A"].parameters()))


def test_gan_only_step_trains_generators_from_the_adversarial_terms_alone():
    state = create_state(build_config(["gan_only"], [], TINY), torch.device("cpu"))
    counts = _count_calls(state.nets)
    terms = train_step(state, _batch())
    assert set(terms) == {"G_A", "G_B", "D_A", "D_B"}
    assert counts == {"G_A": 1, "G_B": 1, "D_A": 3, "D_B": 3}


@pytest.mark.parametrize(
    "preset, kept, dropped", [("gan_forward", "cycle_A", "cycle_B"), ("gan_backward", "cycle_B", "cycle_A")]
)
def test_one_sided_cycle_values(preset, kept, dropped):
    """The kept cycle term is lambda * ||F(G(x)) - x||_1 (forward) or lambda * ||G(F(y)) - y||_1 (backward)."""
    cfg = build_config(
        [preset],
        [],
        TINY
        + NO_IDT
        + ["loss.lambda_a=7", "loss.lambda_b=7"]
        + [f"loss.lambda_{'b' if preset == 'gan_forward' else 'a'}=0"],
    )
    method = create_method(cfg)
    torch.manual_seed(0)
    nets = method.build_networks()
    batch = _batch(1)
    terms, _ = method.generator_loss(nets, batch)
    assert dropped not in terms
    with torch.no_grad():
        if kept == "cycle_A":
            expect = 7 * F.l1_loss(nets["G_B"](nets["G_A"](batch["A"])), batch["A"])
        else:
            expect = 7 * F.l1_loss(nets["G_A"](nets["G_B"](batch["B"])), batch["B"])
    assert terms[kept].item() == pytest.approx(expect.item(), rel=1e-5)


def test_ablation_presets_compose_with_others():
    cfg = build_config(["quick", "gan_forward"])  # later presets win only on their own keys
    assert (cfg.model.ngf, cfg.loss.lambda_a, cfg.loss.lambda_b, cfg.loss.lambda_identity) == (16, 10.0, 0.0, 0.0)
