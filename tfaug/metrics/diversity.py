"""Within-class diversity of generated images: mean pairwise SSIM (study S5) and mean pairwise feature distance.

Both look at a bounded, seeded sample of image pairs per class, so the cost is fixed whatever the number of
images. Low SSIM and a large feature distance mean diverse images; mode collapse drives SSIM to 1 and the
feature distance to 0.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ssim", "class_pairs", "pairwise_ssim", "pairwise_feature_distance"]

K1, K2 = 0.01, 0.03  # Wang et al. 2004 stabilisers


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 2.0, win_size: int = 7) -> np.ndarray:
    """Structural similarity (Wang et al. 2004, "Image Quality Assessment: From Error Visibility to Structural
    Similarity") of image pairs, vectorised; matches ``skimage.metrics.structural_similarity`` with its defaults
    (7x7 uniform window, sample covariance, borders cropped, channels averaged).

    Args:
        a, b: float [P, H, W, C] images (e.g. in [-1, 1]); pairs are (a[i], b[i]).
        data_range: max - min of the pixel range (2 for [-1, 1]).
        win_size: odd window side; shrunk to the largest odd number <= min(H, W) for tiny images.

    Returns:
        float64 [P] SSIM values in [-1, 1] (1 for identical images).
    """
    from scipy.ndimage import uniform_filter

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(f"need two image batches [P, H, W, C] of one shape, got {a.shape} and {b.shape}")
    win = min(int(win_size), min(a.shape[1:3]))
    win -= 1 - win % 2
    size = (1, win, win, 1)
    norm = win * win / (win * win - 1.0)  # sample covariance, as skimage's default
    mu_a, mu_b = uniform_filter(a, size), uniform_filter(b, size)
    va = norm * (uniform_filter(a * a, size) - mu_a * mu_a)
    vb = norm * (uniform_filter(b * b, size) - mu_b * mu_b)
    cov = norm * (uniform_filter(a * b, size) - mu_a * mu_b)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    pad = (win - 1) // 2
    s = s[:, pad : s.shape[1] - pad, pad : s.shape[2] - pad, :]
    return s.mean(axis=(1, 2, 3))


def class_pairs(labels: np.ndarray, max_pairs: int = 200, seed: int = 0) -> dict[int, np.ndarray]:
    """Up to ``max_pairs`` distinct index pairs (i < j) per class, drawn with a seeded RNG.

    Returns:
        ``{class_id: int64 [P, 2]}`` for every class with at least two images.
    """
    labels = np.asarray(labels).ravel()
    rng = np.random.default_rng(seed)
    out = {}
    for c in np.unique(labels).tolist():
        idx = np.flatnonzero(labels == c)
        n = len(idx)
        if n < 2:
            continue
        total = n * (n - 1) // 2
        if total <= max_pairs:
            i, j = np.triu_indices(n, k=1)
        else:  # sample with replacement of pairs, then drop self-pairs: cheap for any n
            i = rng.integers(0, n, size=2 * max_pairs)
            j = rng.integers(0, n, size=2 * max_pairs)
            keep = i != j
            i, j = i[keep][:max_pairs], j[keep][:max_pairs]
        out[int(c)] = np.stack([idx[i], idx[j]], axis=1)
    return out


def pairwise_ssim(images: np.ndarray, labels: np.ndarray, max_pairs: int = 200, seed: int = 0,
                  data_range: float = 2.0) -> dict:
    """Mean within-class SSIM of images float [N, H, W, C] in [-1, 1].

    Returns:
        ``{"mean": float in [-1, 1] (mean of the class means, None without pairs), "per_class": {id: float},
        "pairs": total pairs used}``.
    """
    images = np.asarray(images, np.float32)
    per = {}
    pairs = class_pairs(labels, max_pairs, seed)
    for c, p in pairs.items():
        per[c] = float(ssim(images[p[:, 0]], images[p[:, 1]], data_range=data_range).mean())
    return {"mean": float(np.mean(list(per.values()))) if per else None, "per_class": per,
            "pairs": int(sum(len(p) for p in pairs.values()))}


def pairwise_feature_distance(features: np.ndarray, labels: np.ndarray, max_pairs: int = 200, seed: int = 0) -> dict:
    """Mean within-class Euclidean distance between feature vectors float [N, D].

    Returns:
        ``{"mean": float >= 0 (mean of the class means, None without pairs), "per_class": {id: float}}``.
    """
    features = np.asarray(features, np.float64)
    per = {}
    for c, p in class_pairs(labels, max_pairs, seed).items():
        per[c] = float(np.linalg.norm(features[p[:, 0]] - features[p[:, 1]], axis=1).mean())
    return {"mean": float(np.mean(list(per.values()))) if per else None, "per_class": per}
