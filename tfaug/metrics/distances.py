"""Distribution distances between feature sets: FID and KID (pure maths, no feature extraction).

Metric maths stays separate from feature extraction (docs/design.md, TF-GAN style): these functions take feature
arrays (or their statistics) from any extractor, so they are tested against direct numpy/scipy references.
"""
from __future__ import annotations

import warnings

import numpy as np

from tfaug.utils.kid import mmd2_polynomial, poly_kernel


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D, D] (float64, unbiased) of features [N, D], N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need features [N >= 2, D], got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (Heusel et al. 2017, "GANs Trained by a Two
    Time-Scale Update Rule Converge to a Local Nash Equilibrium"): ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)).

    Computed in float64 with ``scipy.linalg.sqrtm``; when the product is singular (few samples, N < D) an
    ``eps`` offset is added to both diagonals, and a negligible imaginary part from numerical error is dropped
    (a large one raises ValueError). Returns a value >= 0 (0 for identical statistics).
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError("mean vectors and covariance matrices have inconsistent shapes")
    diff = mu1 - mu2
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # singular products (N < D) are expected with few samples; handled below, reported by the caller
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)
            covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag)):.3g} in the matrix square root")
        covmean = covmean.real
    value = diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean)
    return float(max(value, 0.0))


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets [N, D] and [M, D]."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(fake))


# Up to this many samples per side, KID computes full kernel matrices once (<= 2500^2 float64 = 50 MB each).
FULL_KERNEL_LIMIT = 2500


def kernel_inception_distance(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID: unbiased squared MMD with a cubic polynomial kernel, averaged over random subsets
    (Bińkowski et al. 2018, "Demystifying MMD GANs").

    Args:
        real, fake: features [N, D] and [M, D], N, M >= 2.
        subsets: number of random subsets, >= 1.
        subset_size: images per subset; adapted to min(N, M) so small datasets work (callers should report it).
        seed: subset sampling seed.

    Returns:
        (mean, std) over subsets; the mean can be slightly negative (unbiased estimator), ~0 for one distribution.
        Draws are sampled without replacement within a subset; sets of up to ``FULL_KERNEL_LIMIT`` samples use
        precomputed full kernels (identical values, much faster).
    """
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need features [N, D] and [M, D], got {real.shape} and {fake.shape}")
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 samples on each side")
    rng = np.random.default_rng(seed)
    draws = [(rng.choice(len(real), m, replace=False), rng.choice(len(fake), m, replace=False))
             for _ in range(subsets)]
    off = m * (m - 1)
    if max(len(real), len(fake)) <= FULL_KERNEL_LIMIT:
        # Small sets: three full kernels once, then each subset's sums are indicator-vector products
        # (same draws, same values as the per-subset path, many times faster).
        kxx, kyy, kxy = poly_kernel(real, real), poly_kernel(fake, fake), poly_kernel(real, fake)
        u = np.stack([np.bincount(i, minlength=len(real)) for i, _ in draws]).astype(np.float64)  # [S, N]
        v = np.stack([np.bincount(j, minlength=len(fake)) for _, j in draws]).astype(np.float64)  # [S, M]
        sxx = np.einsum("sn,sn->s", u @ kxx, u) - u @ np.diagonal(kxx)
        syy = np.einsum("sm,sm->s", v @ kyy, v) - v @ np.diagonal(kyy)
        sxy = np.einsum("sm,sm->s", u @ kxy, v)
        values = list(sxx / off + syy / off - 2.0 * sxy / (m * m))
    else:
        values = [mmd2_polynomial(real[i], fake[j]) for i, j in draws]
    return float(np.mean(values)), float(np.std(values))
