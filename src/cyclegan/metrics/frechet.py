"""Frechet distance between Gaussians fitted to features: the math of FID, over float64 numpy.

FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule ...") fits a Gaussian to the
Inception pool3 features of each image set and reports the Frechet (2-Wasserstein) distance between them
(Dowson & Landau 1982):

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

pytorch-fid evaluates Tr((S1 S2)^(1/2)) with `scipy.linalg.sqrtm` of the non-symmetric product. Here it is
computed from symmetric eigendecompositions only (numpy, no scipy): with S1 = A A^T,
the non-zero eigenvalues of S1 S2 equal those of the symmetric PSD matrix A^T S2 A, so

    Tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(A^T S2 A)).

Dropping the numerically-zero directions of S1 from A keeps rank-deficient covariances (fewer images
than 2048 feature dimensions, the usual case) from adding sqrt(rounding noise) terms.
"""

from __future__ import annotations

import numpy as np


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features, in float64 (as pytorch-fid)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) features for a covariance, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def _psd_factor(sigma: np.ndarray) -> np.ndarray:
    """A (D, k) with A A^T = sigma, keeping only eigen-directions above rounding noise."""
    w, v = np.linalg.eigh(sigma)
    keep = w > max(w.max(initial=0.0), 0.0) * sigma.shape[0] * np.finfo(np.float64).eps
    return v[:, keep] * np.sqrt(w[keep])


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S1 S2)^(1/2)) for symmetric PSD S1, S2, via eig(A^T S2 A) with S1 = A A^T."""
    a = _psd_factor(sigma1)
    m = a.T @ sigma2 @ a
    m = (m + m.T) / 2  # symmetric up to rounding; make it exactly so for eigvalsh
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(m), 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Frechet distance ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians.

    Args: means (D,) and covariances (D, D); computed in float64. Symmetric in its two Gaussians and
    zero for identical ones (up to rounding). This is the value reported as FID.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))


def frechet_distance_from_features(features1, features2) -> float:
    """`frechet_distance` of the Gaussians fitted to (N1, D) and (N2, D) features, without D x D matrices.

    With centred features X1, X2 and S_i = X_i^T X_i / (n_i - 1): Tr S_i = ||X_i||_F^2 / (n_i - 1), and the
    non-zero eigenvalues of S1 S2 are the squared singular values of C = X1 X2^T / sqrt((n1-1)(n2-1)), so

        Tr((S1 S2)^(1/2)) = ||C||_*   (nuclear norm: the sum of singular values).

    Exact, and O(n1 n2 D) instead of O(D^3): for sets of a few thousand images or fewer this is several
    times faster than the covariance route (which it falls back to for larger sets).
    """
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1] or min(len(f1), len(f2)) < 2:
        raise ValueError(f"need (N >= 2, D) features of equal D, got {f1.shape} and {f2.shape}")
    n1, n2, d = len(f1), len(f2), f1.shape[1]
    if max(n1, n2) > 2 * d:
        return frechet_distance(*feature_statistics(f1), *feature_statistics(f2))
    mu1, mu2 = f1.mean(axis=0), f2.mean(axis=0)
    x1, x2 = f1 - mu1, f2 - mu2
    tr1, tr2 = (x1 * x1).sum() / (n1 - 1), (x2 * x2).sum() / (n2 - 1)
    nuclear = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    diff = mu1 - mu2
    return float(diff @ diff + tr1 + tr2 - 2.0 * nuclear)
