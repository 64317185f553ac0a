"""KID: the unbiased MMD^2 estimator on hand-made sets, subsets, and its unbiasedness."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from cyclegan.metrics.kid import kid, mmd2_unbiased, polynomial_kernel

kid_module = importlib.import_module("cyclegan.metrics.kid")  # the package's `kid` attribute is the function


def test_hand_computed_1d():
    # d = 1, k(a, b) = (ab + 1)^3. x = {0, 1}, y = {0, -1}:
    # xx: k(0,1) = 1 -> 2 * 1 / (2 * 1) = 1;  yy: k(0,-1) = 1 -> 1
    # xy: k(0,0) + k(0,-1) + k(1,0) + k(1,-1) = 1 + 1 + 1 + 0 = 3 -> 2 * 3 / 4 = 1.5
    assert mmd2_unbiased(np.array([[0.0], [1.0]]), np.array([[0.0], [-1.0]])) == pytest.approx(0.5, abs=1e-12)


def test_matches_direct_double_sum():
    x = np.array([[1.0, 0.0, 2.0], [0.5, -1.0, 0.0], [2.0, 2.0, 1.0], [0.0, 0.0, 0.0]])
    y = np.array([[1.0, 1.0, 1.0], [-1.0, 0.0, 2.0], [0.0, 3.0, -1.0], [2.0, 0.5, 0.5], [1.0, -2.0, 0.0]])
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert polynomial_kernel(x, y)[1, 2] == pytest.approx(k(x[1], y[2]), rel=1e-12)


def test_subsets_capped_at_smaller_set_give_the_full_estimate():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 4)) + 1.0
    mean, std = kid(x, y, num_subsets=5, subset_size=1000)
    assert mean == pytest.approx(mmd2_unbiased(x, y), rel=1e-12)
    # every subset is both whole sets: no spread to report (not a precise-looking 0 or 1e-16)
    assert np.isnan(std) and kid_module.kid_subsets_identical(12, 12, 1000)
    # the smaller set whole, the larger resampled: a real spread
    mean, std = kid(x, np.vstack([y, y[:3] + 0.5]), num_subsets=5, subset_size=1000)
    assert std > 0 and not kid_module.kid_subsets_identical(12, 15, 1000)


def test_estimator_is_unbiased_where_the_plain_average_is_not():
    # Same distribution on both sides: MMD^2 = 0. The U-statistic averages to 0; the biased
    # V-statistic (diagonal kept) stays clearly positive at n = 8.
    rng = np.random.default_rng(3)
    u, v = [], []
    for _ in range(400):
        x, y = rng.normal(size=(8, 2)), rng.normal(size=(8, 2))
        u.append(mmd2_unbiased(x, y))
        kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
        v.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    u, v = np.array(u), np.array(v)
    se = u.std() / np.sqrt(len(u))
    assert abs(u.mean()) < 3 * se
    assert v.mean() > 10 * se


def test_kid_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(5)
    a, b = rng.gamma(2.0, size=(600, 32)), rng.gamma(2.0, size=(600, 32))
    c = rng.gamma(2.4, size=(600, 32))
    same, _ = kid(a, b, num_subsets=20, subset_size=200, rng=1)
    diff, diff_std = kid(a, c, num_subsets=20, subset_size=200, rng=1)
    assert diff > 5 * diff_std > 0
    assert abs(same) < 0.05 * diff


def test_seeded_and_generator_rng_are_deterministic():
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(50, 6)), rng.normal(size=(40, 6))
    assert kid(a, b, num_subsets=10, subset_size=20, rng=3) == kid(a, b, num_subsets=10, subset_size=20, rng=3)
    assert kid(a, b, 10, 20, rng=np.random.default_rng(3)) == kid(a, b, 10, 20, rng=3)
    assert kid(a, b, 10, 20, rng=3) != kid(a, b, 10, 20, rng=4)


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        kid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError):
        mmd2_unbiased(np.zeros((1, 3)), np.zeros((5, 3)))


def test_bad_options_say_which():
    x, y = np.zeros((3, 2)), np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"subset_size must be at least 2 .*got 1"):
        kid(x, y, subset_size=1)
    with pytest.raises(ValueError, match="num_subsets must be at least 1, got 0"):
        kid(x, y, num_subsets=0)
    with pytest.raises(ValueError, match="at least 2 samples per set, got 1 and 5"):
        kid(x[:1], y)


def test_precomputed_kernels_give_the_per_subset_result(monkeypatch):
    rng = np.random.default_rng(11)
    a, b = rng.gamma(2.0, size=(70, 16)), rng.gamma(2.3, size=(60, 16))
    fast = kid(a, b, num_subsets=15, subset_size=25, rng=2)
    monkeypatch.setattr(kid_module, "GRAM_LIMIT", 0)  # force kernels per subset
    slow = kid(a, b, num_subsets=15, subset_size=25, rng=2)
    assert fast == pytest.approx(slow, rel=1e-10)
