"""Kernel Inception Distance (Binkowski et al. 2018, "Demystifying MMD GANs"), over numpy float64.

KID is the unbiased estimate of the squared maximum mean discrepancy (Gretton et al. 2012, Lemma 6)

    MMD^2_u = 1/(m(m-1)) sum_{i!=j} k(x_i, x_j) + 1/(n(n-1)) sum_{i!=j} k(y_i, y_j) - 2/(mn) sum_{i,j} k(x_i, y_j)

with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3 on d-dimensional Inception features, averaged
over random equal-size subsets of the two feature sets; the spread over subsets is reported as its
standard deviation (as torch-fidelity does). Unlike FID it is unbiased, so it can be negative near 0.
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / d + 1)^3 for rows of x (m, d) and y (n, d): an (m, n) matrix."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """MMD^2_u between samples x (m, d) and y (n, d) with the cubic polynomial kernel (module doc)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"MMD^2_u needs at least 2 samples per set, got {m} and {n}")
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(xx + yy - 2.0 * k_xy.sum() / (m * n))


def kid(features1, features2, num_subsets: int = 100, subset_size: int = 1000,
        rng: np.random.Generator | int = 0) -> tuple[float, float]:
    """KID: mean and standard deviation of MMD^2_u over `num_subsets` random subsets of each set.

    Each subset draws `subset_size` rows without replacement from each set; like clean-fid, the size is
    capped at the smaller set (torch-fidelity refuses instead), so small test sets still get a score.
    `rng` is a numpy Generator or a seed: the same seed gives the same value.
    """
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"need (N, D) features of equal D, got {f1.shape} and {f2.shape}")
    size = min(subset_size, f1.shape[0], f2.shape[0])
    rng = np.random.default_rng(rng)
    mmds = np.array([
        mmd2_unbiased(f1[rng.choice(f1.shape[0], size, replace=False)],
                      f2[rng.choice(f2.shape[0], size, replace=False)])
        for _ in range(num_subsets)
    ])
    return float(mmds.mean()), float(mmds.std())
