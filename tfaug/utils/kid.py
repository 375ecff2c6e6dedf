"""A cheap image-quality score for training loops: KID on downsampled pixels (pure NumPy).

The Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs") is the unbiased squared MMD with
the cubic polynomial kernel ``k(x, y) = (x.y / D + 1)^3``. Training (``tfaug.training.gan_runner``) must not
depend on ``tfaug.metrics`` (layering) nor pay for a feature network every few hundred steps, so it scores
generators with :func:`pixel_kid`: the same estimator on area-downsampled raw pixels. It ranks checkpoints of
one run (lower is better); it is not comparable with an Inception or domain-classifier KID.
"""
from __future__ import annotations

import numpy as np

# Longest side of the downsampled images whose pixels are the features (16x16x1 = 256 features for MNIST).
PIXEL_SIDE = 16


def poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cubic polynomial kernel matrix ``k(x, y) = (x.y / D + 1)^3`` for ``x [N, D]``, ``y [M, D]`` -> ``[N, M]``."""
    k = x @ y.T / x.shape[1] + 1.0
    return k * k * k  # 10x faster than ** 3 (which calls pow)


def mmd2_polynomial(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel between feature sets ``x [N, D]`` and ``y [M, D]``.

    Args:
        x, y: float features, N, M >= 2, same D.

    Returns:
        The estimate (can be slightly negative; ~0 when both come from one distribution).

    Raises:
        ValueError: mismatched shapes or fewer than 2 rows on a side.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"need features [N, D] and [M, D], got {x.shape} and {y.shape}")
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError("MMD needs at least 2 samples on each side")
    kxx, kyy, kxy = poly_kernel(x, x), poly_kernel(y, y), poly_kernel(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2.0 * kxy.mean())


def pixel_features(images: np.ndarray, side: int = PIXEL_SIDE) -> np.ndarray:
    """Images float [N, H, W, C] in [-1, 1] -> [N, h * w * C] pixels after integer-factor area downsampling so
    that the longer side is at most ``side`` (trailing rows/columns that do not fill a block are dropped)."""
    x = np.asarray(images, np.float32)
    if x.ndim != 4:
        raise ValueError(f"need images [N, H, W, C], got shape {x.shape}")
    n, h, w, c = x.shape
    f = max(1, -(-max(h, w) // side))
    if f > 1:
        hh, ww = h // f, w // f
        x = x[:, :hh * f, :ww * f].reshape(n, hh, f, ww, f, c).mean(axis=(2, 4))
    return x.reshape(n, -1)


def pixel_kid(real: np.ndarray, fake: np.ndarray, side: int = PIXEL_SIDE) -> float:
    """KID (unbiased polynomial-kernel MMD^2) between two image sets on downsampled pixels; lower is better.

    Args:
        real, fake: float images [N, H, W, C] and [M, H, W, C] in [-1, 1], N, M >= 2.
        side: longest side of the downsampled images.
    """
    return mmd2_polynomial(pixel_features(real, side), pixel_features(fake, side))


__all__ = ["PIXEL_SIDE", "mmd2_polynomial", "poly_kernel", "pixel_features", "pixel_kid"]
