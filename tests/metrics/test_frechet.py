"""Frechet distance: closed forms, FID(x, x) = 0, symmetry, and agreement with scipy's sqrtm route."""

from __future__ import annotations

import numpy as np
import pytest

from cyclegan.metrics.frechet import (
    feature_statistics,
    frechet_distance,
    frechet_distance_from_features,
    trace_sqrt_product,
)
from cyclegan.metrics.registry import fid_from_features


def test_1d_gaussians_closed_form():
    # N(m1, s1^2), N(m2, s2^2): d^2 = (m1 - m2)^2 + (s1 - s2)^2 = 9 + (2 - 1)^2
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(10.0, abs=1e-12)


def test_2d_diagonal_is_sum_of_1d():
    d = frechet_distance([1.0, 2.0], np.diag([9.0, 1.0]), [0.0, 0.0], np.diag([1.0, 4.0]))
    assert d == pytest.approx((1 + 4) + (3 - 1) ** 2 + (1 - 2) ** 2, abs=1e-12)


def test_2d_non_commuting_closed_form():
    # For 2x2 PSD M: Tr sqrt(M) = sqrt(Tr M + 2 sqrt(det M)); with M ~ S1 S2:
    # Tr sqrt(S1 S2) = sqrt(Tr(S1 S2) + 2 sqrt(det S1 det S2)) = sqrt(10 + 2 sqrt(12)).
    s1 = np.array([[2.0, 1.0], [1.0, 2.0]])
    s2 = np.array([[1.0, 0.0], [0.0, 4.0]])
    tr_sqrt = np.sqrt(10 + 2 * np.sqrt(12))
    assert trace_sqrt_product(s1, s2) == pytest.approx(tr_sqrt, rel=1e-12)
    assert frechet_distance([0, 0], s1, [1, 1], s2) == pytest.approx(2 + 4 + 5 - 2 * tr_sqrt, rel=1e-12)


def test_rotation_invariance_and_mean_shift():
    rng = np.random.default_rng(0)
    f1, f2 = rng.normal(size=(200, 8)), rng.normal(size=(150, 8)) * 1.5 + 0.3
    base = fid_from_features(f1, f2)
    q, _ = np.linalg.qr(rng.normal(size=(8, 8)))  # random orthogonal map: FID is invariant
    assert fid_from_features(f1 @ q, f2 @ q) == pytest.approx(base, rel=1e-9)
    v = np.arange(8.0)
    # shifting one set by v adds ||v||^2 + 2 v.(mu1 - mu2)
    mu1, mu2 = f1.mean(0), f2.mean(0)
    assert fid_from_features(f1 + v, f2) == pytest.approx(base + v @ v + 2 * v @ (mu1 - mu2), rel=1e-9)


@pytest.mark.parametrize("n", [30, 500])  # rank-deficient (n < d) and full-rank covariances
def test_fid_of_a_set_with_itself_is_zero(n):
    rng = np.random.default_rng(n)
    feats = np.abs(rng.normal(size=(n, 64))) ** 2  # skewed, positive like pool3 features
    mu, sigma = feature_statistics(feats)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)


def test_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(40, 32)), rng.gamma(2.0, size=(60, 32))
    s_a, s_b = feature_statistics(a), feature_statistics(b)
    assert frechet_distance(*s_a, *s_b) == pytest.approx(frechet_distance(*s_b, *s_a), rel=1e-10)


def test_feature_statistics_float64_unbiased():
    feats = np.array([[1, 2], [3, 6], [5, 4]], dtype=np.float32)
    mu, sigma = feature_statistics(feats)
    assert mu.dtype == sigma.dtype == np.float64
    np.testing.assert_allclose(mu, [3, 4])
    np.testing.assert_allclose(sigma, [[4, 2], [2, 4]])  # divides by N - 1
    with pytest.raises(ValueError):
        feature_statistics(feats[:1])


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


@pytest.mark.parametrize("n", [20, 300])
def test_matches_scipy_sqrtm_formula(n):
    linalg = pytest.importorskip("scipy.linalg", reason="scipy (a test extra) gives the reference sqrtm")
    rng = np.random.default_rng(n)
    s1 = feature_statistics(rng.normal(size=(n, 48)) @ rng.normal(size=(48, 48)))
    s2 = feature_statistics(rng.gamma(1.5, size=(n + 7, 48)))
    covmean = linalg.sqrtm(s1[1] @ s2[1]).real
    diff = s1[0] - s2[0]
    reference = diff @ diff + np.trace(s1[1]) + np.trace(s2[1]) - 2 * np.trace(covmean)
    assert frechet_distance(*s1, *s2) == pytest.approx(reference, rel=1e-7)


@pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")  # pytorch-fid's own call
def test_matches_pytorch_fid_calculate_frechet_distance():
    fid_score = pytest.importorskip("pytorch_fid.fid_score", reason="pytorch-fid (and scipy) not installed")
    rng = np.random.default_rng(7)
    s1 = feature_statistics(rng.gamma(2.0, size=(40, 64)))  # rank 39 < 64, as in small FID sets
    s2 = feature_statistics(rng.gamma(2.2, size=(50, 64)))
    expected = fid_score.calculate_frechet_distance(s1[0], s1[1], s2[0], s2[1])
    assert frechet_distance(*s1, *s2) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("n1,n2", [(10, 14), (40, 90), (130, 150)])  # the last takes the covariance route (n > 2D)
def test_features_route_equals_covariance_route(n1, n2):
    rng = np.random.default_rng(n1)
    a = rng.gamma(2.0, size=(n1, 64)) @ rng.normal(size=(64, 64))
    b = rng.gamma(2.5, size=(n2, 64)) @ rng.normal(size=(64, 64)) + 1.0
    expected = frechet_distance(*feature_statistics(a), *feature_statistics(b))
    assert frechet_distance_from_features(a, b) == pytest.approx(expected, rel=1e-9)
    assert abs(frechet_distance_from_features(a, a)) < 1e-9 * expected
    with pytest.raises(ValueError):
        frechet_distance_from_features(a[:1], b)
