"""Learning-rate policies at chosen epochs."""

import pytest

from cyclegan.schedule import lr_factor, plateau_update


def test_linear_matches_the_reference():
    f = lambda e: lr_factor("linear", e, 100, 100)  # noqa: E731
    assert f(0) == 1.0 and f(98) == 1.0 and f(99) == 1.0
    assert f(100) == pytest.approx(1 - 1 / 101)
    assert f(149) == pytest.approx(1 - 50 / 101)
    assert f(199) == pytest.approx(1 / 101)  # last epoch; the next would be 0


def test_step_and_cosine():
    assert lr_factor("step", 49, decay_epochs=50, gamma=0.1) == 1.0
    assert lr_factor("step", 50, decay_epochs=50, gamma=0.1) == pytest.approx(0.1)
    assert lr_factor("step", 120, decay_epochs=50, gamma=0.1) == pytest.approx(0.01)
    assert lr_factor("cosine", 0, 100, 100) == 1.0
    assert lr_factor("cosine", 100, 100, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 200, 100, 100) == pytest.approx(0.0, abs=1e-12)


def test_plateau_decays_after_patience():
    s = {}
    for metric in [1.0, 0.9, 0.9, 0.9, 0.9]:
        s = plateau_update(s, metric, patience=2, gamma=0.5)
    assert s["factor"] == 0.5 and s["best"] == 0.9
    assert lr_factor("plateau", 10, plateau_factor=s["factor"]) == 0.5
