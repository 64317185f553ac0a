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


# Up to this many images in all, kid() forms the full kernel matrices once and slices each subset out of
# them (at most 4096^2 float64 = 128 MiB), instead of recomputing kernels for every subset.
GRAM_LIMIT = 4096


def _mmd2_from_kernels(k_xx: np.ndarray, k_yy: np.ndarray, k_xy: np.ndarray) -> float:
    m, n = k_xy.shape
    xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    yy = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(xx + yy - 2.0 * k_xy.sum() / (m * n))


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """MMD^2_u between samples x (m, d) and y (n, d) with the cubic polynomial kernel (module doc)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError(f"MMD^2_u needs at least 2 samples per set, got {x.shape[0]} and {y.shape[0]}")
    return _mmd2_from_kernels(polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y))


def kid(
    features1, features2, num_subsets: int = 100, subset_size: int = 1000, rng: np.random.Generator | int = 0
) -> tuple[float, float]:
    """KID: mean and standard deviation of MMD^2_u over `num_subsets` random subsets of each set.

    Each subset draws `subset_size` rows without replacement from each set; like clean-fid, the size is
    capped at the smaller set (torch-fidelity refuses instead), so small test sets still get a score.
    When the (capped) size equals both set sizes, every subset is the whole of both sets: the mean is
    that one value and the std is NaN (not available), not a spread of 0 that looks precise.
    `rng` is a numpy Generator or a seed: the same seed gives the same value.
    """
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"need (N, D) features of equal D, got {f1.shape} and {f2.shape}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be at least 1, got {num_subsets}")
    if subset_size < 2:
        raise ValueError(f"subset_size must be at least 2 (MMD^2_u needs 2 samples per set), got {subset_size}")
    n1, n2 = f1.shape[0], f2.shape[0]
    size = min(subset_size, n1, n2)
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {n1} and {n2}")
    if kid_subsets_identical(n1, n2, subset_size):  # every subset is both whole sets: one value, no spread
        return mmd2_unbiased(f1, f2), float("nan")
    rng = np.random.default_rng(rng)
    if n1 + n2 <= GRAM_LIMIT:
        k11, k22, k12 = polynomial_kernel(f1, f1), polynomial_kernel(f2, f2), polynomial_kernel(f1, f2)
        mmd = lambda i, j: _mmd2_from_kernels(k11[np.ix_(i, i)], k22[np.ix_(j, j)], k12[np.ix_(i, j)])  # noqa: E731
    else:
        mmd = lambda i, j: mmd2_unbiased(f1[i], f2[j])  # noqa: E731
    mmds = np.array(
        [mmd(rng.choice(n1, size, replace=False), rng.choice(n2, size, replace=False)) for _ in range(num_subsets)]
    )
    return float(mmds.mean()), float(mmds.std())


def kid_subsets_identical(n1: int, n2: int, subset_size: int) -> bool:
    """True when every KID subset of sets of n1 and n2 images is both whole sets (kid's std is NaN)."""
    return min(subset_size, n1, n2) == n1 == n2
