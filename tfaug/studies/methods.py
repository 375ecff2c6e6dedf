"""S3's classifiers built from per-class generators instead of a trained CNN (docs/studies.md, S3).

- ``disc-bank``: classify x by ``argmax_k D_k(x)`` over the K discriminators of a GAN bank.
- ``m1``: sample ``m`` images of every class from the generator; the score of class k is the mean of the ``L``
  smallest Euclidean distances from x to class k's samples (pixel space, images flattened); the class with the
  smallest score wins.
- ``m3``: pool the ``K * m`` samples; ``eps`` is the distance from x to its ``t = ceil(mu * m * K)``-th nearest
  pooled sample (t clipped to [1, K * m]); the ball of radius ``eps`` around x holds ``n >= t`` samples (more
  when distances tie), ``n_k`` of them from class k; the posterior of class k is ``n_k / n``; the largest wins.
- ``m2`` / ``m4``: ``m1`` / ``m3`` with distances in an embedding (``embed_fn``: images -> [N, D]; the study
  runner passes the posterior mean of a VAE trained on the cell's real training images).

Votes (all of m1-m4): ``N`` rounds, each with fresh samples; each round predicts one class per query and the
most-voted class wins. A tie between classes with the same number of votes goes to the best score summed over
the rounds (smallest summed M1/M2 distance, largest summed M3/M4 posterior), then to the lowest class id.
Inside one M3/M4 round, classes with the same posterior are ordered by their nearest sample's distance (the
class of the nearest pooled sample among them wins), then by class id.

Seeds: round ``r`` samples class ``c``'s images ``j = 0..m-1`` with seeds
``seed + r * m + j + CLASS_SEED_STRIDE * c`` (:func:`tfaug.synthesis.sample.sample_per_class` with base seed
``seed + r * m``), so no (class, seed) pair is used twice in a prediction and the same ``seed`` gives the same
predictions.

Distances are computed in blocks of queries against all samples (``||a||^2 - 2 a.b + ||b||^2`` in float64),
each block at most ``MAX_BLOCK`` distances (8 MiB), so 10k queries x 5,000 samples x 784 values needs the
float64 samples (31 MB) plus a few blocks (measured peak: 48 MB), never the full 10k x 5k matrix. numpy only
(no TensorFlow import).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from tfaug.errors import TfaugError

METHODS = ("disc-bank", "m1", "m2", "m3", "m4")
# Query-sample distances per block (float64: 8 MiB); a block's temporaries stay within a few times this.
MAX_BLOCK = 2**20

__all__ = ["MAX_BLOCK", "METHODS", "disc_bank_predict", "m1_scores", "m3_scores", "predict_method"]


def disc_bank_predict(bank, images) -> np.ndarray:
    """S3's discriminator bank: ``argmax_k D_k(x)``.

    Args:
        bank: anything with ``discriminator_scores(images) -> [N, K]`` (e.g. a ``GANBank``: sigmoid scores).
        images: float32 [N, H, W, C] in [-1, 1] (uint8 [0, 255] is converted).

    Returns:
        int64 [N] class ids in [0, K); ties go to the lowest class id.
    """
    x = _float_images(images)
    scores = np.asarray(bank.discriminator_scores(x))
    if scores.ndim != 2 or len(scores) != len(x):
        raise TfaugError(f"discriminator_scores must return [N={len(x)}, K] scores, got shape {scores.shape}")
    return np.argmax(scores, axis=1).astype(np.int64)


def m1_scores(samples, queries, L: int) -> np.ndarray:
    """M1's class scores: mean of the ``L`` smallest distances from each query to each class's samples.

    Args:
        samples: float [K, m, D] (m samples of each of K classes; [K, m, ...] is flattened).
        queries: float [N, D] (or [N, ...], flattened).
        L: 1 <= L <= m.

    Returns:
        float64 [N, K] mean distances >= 0 (smaller = more likely that class).
    """
    s, q = _check_points(samples, queries)
    if not 1 <= int(L) <= s.shape[1]:
        raise TfaugError(f"L must be between 1 and m ({s.shape[1]}), got {L}")
    return _blockwise(s, q, lambda d: _mean_smallest(d, int(L)))


def m3_scores(samples, queries, mu: float) -> np.ndarray:
    """M3's class posteriors: class shares of the pooled samples inside each query's epsilon-ball.

    ``eps`` is the distance to the ``t = ceil(mu * m * K)``-th nearest pooled sample (t clipped to [1, K * m]);
    every sample at distance <= eps counts, so n >= t when distances tie.

    Args:
        samples: float [K, m, D] (m samples of each of K classes).
        queries: float [N, D].
        mu: ball share in (0, 1].

    Returns:
        float64 [N, K] in [0, 1], rows summing to 1 (``n_k / n``).
    """
    s, q = _check_points(samples, queries)
    t = _ball_size(mu, s.shape[1], s.shape[0])
    return _blockwise(s, q, lambda d: _ball_shares(d, t))


def predict_method(
    method: str,
    *,
    images,
    num_classes: int,
    generator=None,
    bank=None,
    embed_fn: Callable[[np.ndarray], np.ndarray] | None = None,
    params: dict,
    seed: int = 0,
) -> np.ndarray:
    """Classify ``images`` with one of S3's methods (see the module docstring for the rules).

    Args:
        method: one of ``METHODS``.
        images: float32 [N, H, W, C] in [-1, 1] (uint8 is converted) to classify.
        num_classes: K >= 2; classes 0..K-1 are sampled.
        generator: ``sample(class_ids, seeds) -> float32 [-1, 1] images`` with ``num_classes >= K``; m1-m4.
        bank: ``discriminator_scores(images) -> [N, K]``; disc-bank.
        embed_fn: images float32 [M, H, W, C] in [-1, 1] -> float [M, D]; m2 and m4.
        params: ``m`` (samples per class and round, >= 1), ``L`` (1..m, m1/m2), ``N`` (rounds, >= 1), ``mu``
            ((0, 1], m3/m4); other keys are ignored.
        seed: base seed of the samples (>= 0).

    Returns:
        int64 [N] class ids in [0, K).

    Raises:
        TfaugError: unknown method, a missing generator/bank/embed_fn, or bad parameters.
    """
    if method not in METHODS:
        raise TfaugError(f"unknown S3 method {method!r}; known: {', '.join(METHODS)}")
    if method == "disc-bank":
        if bank is None:
            raise TfaugError("disc-bank needs a GAN bank (bank=...) whose discriminators score the images")
        return disc_bank_predict(bank, images)
    if generator is None:
        raise TfaugError(f"{method} needs a generator (generator=...) to sample every class from")
    embedded = method in ("m2", "m4")
    if embedded and embed_fn is None:
        raise TfaugError(f"{method} needs an embedding (embed_fn=...), e.g. a VAE encoder trained on the real images")
    m, L, rounds, mu = _params(params, need_mu=method in ("m3", "m4"), need_l=method in ("m1", "m2"))
    k = int(num_classes)
    gen_k = int(getattr(generator, "num_classes", k))
    if k < 2 or gen_k < k:
        raise TfaugError(f"num_classes must be between 2 and the generator's {gen_k} classes, got {k}")
    if int(seed) < 0:
        raise TfaugError(f"seed must be >= 0, got {seed}")
    from tfaug.synthesis.sample import CLASS_SEED_STRIDE, sample_per_class

    if rounds * m > CLASS_SEED_STRIDE:
        raise TfaugError(f"N * m ({rounds * m}) exceeds {CLASS_SEED_STRIDE} seeds per class; lower N or m")
    x = _float_images(images)
    embed = (lambda a: _as_2d(embed_fn(a), "embed_fn output")) if embedded else (lambda a: a.reshape(len(a), -1))
    queries = embed(x)
    votes = np.zeros((len(x), k), np.int64)
    summed = np.zeros((len(x), k), np.float64)
    for r in range(rounds):
        imgs, _ = sample_per_class(generator, {c: m for c in range(k)}, seed=int(seed) + r * m)
        samples = embed(np.asarray(imgs, np.float32)).reshape(k, m, -1)
        s, q = _check_points(samples, queries)
        if method in ("m1", "m2"):
            score = _blockwise(s, q, lambda d: _mean_smallest(d, L))
            pred = np.argmin(score, axis=1)
            summed -= score  # larger = better for the tie-break
        else:
            t = _ball_size(mu, m, k)
            share, nearest = _blockwise(s, q, lambda d: _ball_shares(d, t), lambda d: d.min(axis=2))
            pred = _argmax_then_min(share, nearest)
            summed += share
        votes[np.arange(len(x)), pred] += 1
    return _vote(votes, summed)


# -- pieces -------------------------------------------------------------------------------------------------


def _float_images(images) -> np.ndarray:
    from tfaug.utils.images import as_float_images

    x = as_float_images(images)
    if x.ndim != 4:
        raise TfaugError(f"images must be [N, H, W, C], got shape {x.shape}")
    return x


def _as_2d(a, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim < 1:
        raise TfaugError(f"{what} must be an array [N, D], got a scalar")
    return a.reshape(len(a), -1)


def _check_points(samples, queries) -> tuple[np.ndarray, np.ndarray]:
    """samples -> float64 [K, m, D], queries -> float [N, D]; finite, matching D, K >= 1 and m >= 1."""
    s = np.asarray(samples)
    if s.ndim < 3 or s.shape[0] < 1 or s.shape[1] < 1:
        raise TfaugError(f"samples must be [K, m, D] with K, m >= 1, got shape {s.shape}")
    s = s.reshape(s.shape[0], s.shape[1], -1).astype(np.float64, copy=False)
    q = _as_2d(queries, "queries")
    if q.shape[1] != s.shape[2]:
        raise TfaugError(f"queries have {q.shape[1]} values each but samples {s.shape[2]}")
    if not (np.isfinite(s).all() and np.isfinite(q).all()):
        raise TfaugError("samples or queries contain NaN or infinite values")
    return s, q


def _blockwise(samples: np.ndarray, queries: np.ndarray, *reducers):
    """Apply each reducer ``distances [rows, K, m] -> [rows, K]`` to blocks of queries; one [N, K] per reducer."""
    k, m, dim = samples.shape
    flat = samples.reshape(k * m, dim)
    flat_sq = np.einsum("ij,ij->i", flat, flat)
    rows = max(1, MAX_BLOCK // (k * m))
    outs = [np.zeros((len(queries), k), np.float64) for _ in reducers]
    for i in range(0, len(queries), rows):
        qa = queries[i:i + rows].astype(np.float64)
        d = qa @ flat.T
        d *= -2.0
        d += np.einsum("ij,ij->i", qa, qa)[:, None]
        d += flat_sq[None, :]
        np.maximum(d, 0.0, out=d)  # rounding can push a zero distance slightly negative
        np.sqrt(d, out=d)
        d = d.reshape(len(qa), k, m)
        for out, reduce in zip(outs, reducers):
            out[i:i + rows] = reduce(d)
    return outs[0] if len(outs) == 1 else tuple(outs)


def _mean_smallest(d: np.ndarray, L: int) -> np.ndarray:
    """[rows, K, m] distances -> [rows, K] mean of the L smallest per class."""
    part = np.partition(d, L - 1, axis=2)[:, :, :L] if L < d.shape[2] else d
    return part.mean(axis=2)


def _ball_size(mu: float, m: int, k: int) -> int:
    """t = ceil(mu * m * K) in [1, K * m]; a 1e-9 slack keeps e.g. 0.05 * 50 * 10 at 25, not 26."""
    mu = float(mu)
    if not 0.0 < mu <= 1.0:
        raise TfaugError(f"mu must be in (0, 1], got {mu}")
    return int(min(k * m, max(1, math.ceil(mu * m * k - 1e-9))))


def _ball_shares(d: np.ndarray, t: int) -> np.ndarray:
    """[rows, K, m] distances -> [rows, K] share of each class among the pooled samples within eps of a query."""
    rows = d.shape[0]
    pooled = d.reshape(rows, -1)
    eps = np.partition(pooled, t - 1, axis=1)[:, t - 1]
    inside = (d <= eps[:, None, None]).sum(axis=2).astype(np.float64)
    return inside / inside.sum(axis=1, keepdims=True)


def _argmax_then_min(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Per row, the column with the largest ``primary``; ties go to the smallest ``secondary``, then the lowest id."""
    best = primary == primary.max(axis=1, keepdims=True)
    return np.argmin(np.where(best, secondary, np.inf), axis=1)


def _vote(votes: np.ndarray, summed: np.ndarray) -> np.ndarray:
    """Majority vote; ties go to the largest ``summed`` (better summed score), then the lowest class id."""
    return _argmax_then_min(votes, -summed).astype(np.int64)


def _params(params: dict, need_mu: bool, need_l: bool) -> tuple[int, int, int, float]:
    """(m, L, N, mu) from ``params``, validated."""
    if not isinstance(params, dict):
        raise TfaugError(f"params must be a mapping with m, L, N, mu, got {type(params).__name__}")
    required = ["m", "N"] + (["L"] if need_l else []) + (["mu"] if need_mu else [])
    missing = [key for key in required if key not in params]
    if missing:
        raise TfaugError(f"S3 method parameter {missing[0]!r} is missing (give m, L, N and mu)")
    ints = {}
    for key in ("m", "L", "N"):
        value = params.get(key, 1)
        try:
            ok = not isinstance(value, bool) and int(value) == value and value >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise TfaugError(f"S3 method parameter {key} must be an integer >= 1, got {value!r}")
        ints[key] = int(value)
    if need_l and ints["L"] > ints["m"]:
        raise TfaugError(f"S3 method parameter L ({ints['L']}) must not exceed m ({ints['m']})")
    given = params.get("mu", 1.0)
    try:
        mu = float("nan") if isinstance(given, bool) else float(given)
    except (TypeError, ValueError):
        mu = float("nan")
    if need_mu and not 0.0 < mu <= 1.0:
        raise TfaugError(f"S3 method parameter mu must be in (0, 1], got {given!r}")
    return ints["m"], ints["L"], ints["N"], mu
