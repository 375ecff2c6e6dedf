"""Exact Euclidean nearest neighbours between two point sets, in bounded memory (numpy only).

Memorisation metrics and the near-duplicate filter both ask "which training image is closest to this generated
image, and how close?" for up to 10k x 10k points of a few hundred dimensions on CPU. A full distance matrix
(800 MB in float64 at 10k x 10k) is avoided by working on blocks of queries against all reference points with
``||a||^2 - 2 a.b + ||b||^2`` in float64 (one matrix product per block). Rounding in that expansion only
affects which of two nearly equidistant points wins; the winners' distances are recomputed directly as
``||a - b||``, so exact copies come out as exactly 0.
"""
from __future__ import annotations

import numpy as np

from tfaug.errors import TfaugError


def _as_points(x, what: str) -> np.ndarray:
    """Any array [N, ...] -> float64 [N, D] (images are flattened)."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise TfaugError(f"{what} must be an array of points [N, ...], got a scalar")
    x = x.reshape(len(x), -1).astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise TfaugError(f"{what} contains NaN or infinite values")
    return x


def k_nearest_neighbours(a, b, k: int = 1, *, chunk: int = 1024, max_block: int = 2**22, progress: bool = False):
    """The ``k`` nearest points of ``b`` for every point of ``a`` (exact, Euclidean).

    Args:
        a: queries [N, ...] (features [N, D] or images [N, H, W, C]; flattened), any real dtype.
        b: reference points [M, ...] with the same flattened size as ``a``; M >= k.
        k: neighbours per query, >= 1.
        chunk: at most this many queries per block.
        max_block: at most this many query-reference distances per block (float64, so the default is 32 MiB);
            peak memory is a few blocks plus float64 copies of the inputs (measured: 135 MB above the inputs
            for 10k x 10k points of 784 values).
        progress: show a progress bar over query blocks.

    Returns:
        ``(index, distance)``: int64 [N, k] indices into ``b`` and float32 [N, k] distances >= 0, nearest first.
    """
    a, b = _as_points(a, "query points"), _as_points(b, "reference points")
    if a.shape[1] != b.shape[1]:
        raise TfaugError(f"query points have {a.shape[1]} values each but reference points {b.shape[1]}")
    if not 1 <= k <= len(b):
        raise TfaugError(f"k must be between 1 and the number of reference points ({len(b)}), got {k}")
    rows = max(1, min(int(chunk), int(max_block) // max(1, len(b))))
    b_sq = np.einsum("ij,ij->i", b, b)
    index = np.zeros((len(a), k), np.int64)
    sq = np.zeros((len(a), k), np.float64)
    starts = range(0, len(a), rows)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="nearest-neighbours", unit="block", dynamic_ncols=True)
    for i in starts:
        qa = a[i : i + rows]
        d = qa @ b.T
        d *= -2.0
        d += np.einsum("ij,ij->i", qa, qa)[:, None]
        d += b_sq[None, :]
        if k == 1:
            best = np.argmin(d, axis=1)[:, None]
        else:
            best = np.argpartition(d, k - 1, axis=1)[:, :k] if k < len(b) else np.tile(np.arange(len(b)), (len(qa), 1))
        # Exact distances for the winners (no cancellation error: copies come out as 0), nearest first.
        exact = np.sum((qa[:, None, :] - b[best]) ** 2, axis=-1)
        order = np.lexsort((best, exact), axis=1) if k > 1 else np.zeros((len(qa), 1), np.int64)
        index[i : i + rows] = np.take_along_axis(best, order, axis=1)
        sq[i : i + rows] = np.take_along_axis(exact, order, axis=1)
    return index, np.sqrt(sq).astype(np.float32)


def nearest_neighbours(a, b, *, chunk: int = 1024, max_block: int = 2**22, progress: bool = False):
    """The nearest point of ``b`` for every point of ``a`` (exact, Euclidean).

    Args:
        a: queries [N, ...]; b: reference points [M >= 1, ...] of the same flattened size.
        chunk, max_block: block limits bounding memory (see :func:`k_nearest_neighbours`).
        progress: show a progress bar.

    Returns:
        ``(index, distance)``: int64 [N] indices into ``b`` and float32 [N] distances >= 0.
    """
    index, distance = k_nearest_neighbours(a, b, 1, chunk=chunk, max_block=max_block, progress=progress)
    return index[:, 0], distance[:, 0]


def leave_one_out_distances(x, *, chunk: int = 1024, progress: bool = False) -> np.ndarray:
    """float32 [N] distance from each point of ``x`` [N >= 2, ...] to its nearest *other* point of ``x``.

    A stand-in for held-out-to-training distances when no held-out set is available: how far apart distinct
    real images typically are (exact duplicates inside ``x`` give 0).
    """
    x = _as_points(x, "points")
    if len(x) < 2:
        raise TfaugError("need at least 2 points for leave-one-out nearest-neighbour distances")
    index, distance = k_nearest_neighbours(x, x, 2, chunk=chunk, progress=progress)
    # The nearest point is normally the point itself; with exact duplicates it may be its twin (also distance 0).
    is_self = index[:, 0] == np.arange(len(x))
    return np.where(is_self, distance[:, 1], distance[:, 0]).astype(np.float32)
