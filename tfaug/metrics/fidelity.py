"""Fidelity metrics on features and class probabilities: IS, precision/recall/density/coverage, per-class FID/KID,
class consistency. Pure numpy maths; the extractor that produced the arrays is someone else's business.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from tfaug.metrics.distances import fid_from_features, kernel_inception_distance

__all__ = ["inception_score", "prdc", "class_consistency", "per_class_distances", "MIN_CLASS_SAMPLES"]

# Below this many images of a class on either side, per-class FID/KID are not computed (flagged instead).
MIN_CLASS_SAMPLES = 2


def inception_score(probs: np.ndarray, splits: int = 10, eps: float = 1e-12) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) from class probabilities, as in S4: the set is cut into ``splits``
    consecutive parts and each part scores exp(E_x KL(p(y|x) || p(y))).

    Args:
        probs: float [N, K] rows of class probabilities (each sums to 1).
        splits: number of parts, >= 1; reduced to N when N is smaller.
        eps: floor inside the logarithms.

    Returns:
        (mean, std) over the parts; values lie in [1, K] (1: every image the same class or fully uncertain,
        K: confident and evenly spread over the K classes).
    """
    p = np.asarray(probs, np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"need probabilities [N >= 1, K], got shape {p.shape}")
    splits = max(1, min(int(splits), len(p)))
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = np.sum(part * (np.log(part + eps) - np.log(marginal + eps)), axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances [len(a), len(b)] (float64, clipped at 0)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _kth_nn_radius(x: np.ndarray, k: int, chunk: int) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row, [N] (memory: chunk x N)."""
    out = np.empty(len(x))
    for s in range(0, len(x), chunk):
        d = _sq_dists(x[s : s + chunk], x)
        # the k-th smallest counting the point itself (distance 0) at position 0
        out[s : s + chunk] = np.partition(d, k, axis=1)[:, k]
    return np.sqrt(out)


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5, chunk: int = 1024) -> dict:
    """Precision, recall, density and coverage with k-NN manifolds (Naeem et al. 2020, "Reliable Fidelity and
    Diversity Metrics for Generative Models"; precision/recall as in Kynkäänniemi et al. 2019).

    A real point's ball has the radius of its k-th nearest real neighbour (likewise for fake points).
    precision: share of fake points inside some real ball; recall: share of real points inside some fake ball;
    density: mean number of real balls containing a fake point, divided by k; coverage: share of real balls
    containing at least one fake point.

    Args:
        real: float [N, D] features, N > k. fake: float [M, D] features, M > k.
        k: neighbourhood size, >= 1 (5 as in the paper).
        chunk: rows per distance block, bounding memory at chunk x max(N, M) floats.

    Returns:
        dict ``precision``, ``recall``, ``coverage`` in [0, 1] and ``density`` >= 0 (about 1 for matching sets).
    """
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"need features [N, D] and [M, D], got {real.shape} and {fake.shape}")
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"PRDC with k={k} needs more than {k} samples on each side, got {len(real)} and {len(fake)}")
    r_real = _kth_nn_radius(real, k, chunk)
    r_fake = _kth_nn_radius(fake, k, chunk)
    in_real_ball = np.zeros(len(fake), bool)  # precision
    real_ball_counts = np.zeros(len(fake))  # density
    real_covered = np.zeros(len(real), bool)  # coverage
    real_in_fake_ball = np.zeros(len(real), bool)  # recall
    for s in range(0, len(real), chunk):
        d = np.sqrt(_sq_dists(real[s : s + chunk], fake))  # [n, M]
        inside = d < r_real[s : s + chunk, None]
        in_real_ball |= inside.any(axis=0)
        real_ball_counts += inside.sum(axis=0)
        real_covered[s : s + chunk] = d.min(axis=1) < r_real[s : s + chunk]
        real_in_fake_ball[s : s + chunk] = (d < r_fake[None, :]).any(axis=1)
    return {
        "precision": float(in_real_ball.mean()),
        "recall": float(real_in_fake_ball.mean()),
        "density": float(real_ball_counts.mean() / k),
        "coverage": float(real_covered.mean()),
    }


def class_consistency(probs: np.ndarray, requested: np.ndarray) -> float:
    """Share in [0, 1] of generated images that the extractor assigns to their requested class (S4's
    "inception accuracy"). probs: float [N, K]; requested: int [N] class ids."""
    probs = np.asarray(probs)
    requested = np.asarray(requested).ravel()
    if len(probs) != len(requested) or len(requested) == 0:
        raise ValueError(f"need one requested label per image, got {len(probs)} images and {len(requested)} labels")
    return float(np.mean(np.argmax(probs, axis=1) == requested))


def per_class_distances(real: np.ndarray, real_labels: np.ndarray, fake: np.ndarray, fake_labels: np.ndarray,
                        class_names: Sequence[str], *, kid_subsets: int = 100, kid_subset_size: int = 1000,
                        seed: int = 0) -> dict:
    """FID and KID between the real and generated features of each class.

    Args:
        real, fake: float [N, D] and [M, D] features; real_labels, fake_labels: int class ids.
        class_names: one name per class id (the output's keys).
        kid_subsets, kid_subset_size, seed: as :func:`~tfaug.metrics.distances.kernel_inception_distance`.

    Returns:
        ``{name: {"fid", "kid": {"mean", "std"}, "n_real", "n_generated", "too_few", "small_n"}}``; ``too_few``
        (values None) when a side has fewer than :data:`MIN_CLASS_SAMPLES` images; ``small_n`` when a side has
        fewer images than feature dimensions (FID's covariance is then singular and the value biased upwards).
    """
    real_labels, fake_labels = np.asarray(real_labels).ravel(), np.asarray(fake_labels).ravel()
    dim = np.asarray(real).shape[1]
    out = {}
    for c, name in enumerate(class_names):
        r, f = real[real_labels == c], fake[fake_labels == c]
        entry = {"n_real": int(len(r)), "n_generated": int(len(f)), "fid": None, "kid": None,
                 "too_few": bool(min(len(r), len(f)) < MIN_CLASS_SAMPLES),
                 "small_n": bool(min(len(r), len(f)) < dim)}
        if not entry["too_few"]:
            entry["fid"] = fid_from_features(r, f)
            mean, std = kernel_inception_distance(r, f, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
            entry["kid"] = {"mean": mean, "std": std}
        out[str(name)] = entry
    return out
