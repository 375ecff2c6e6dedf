"""Duplication: bootstrapping (S1) and class balancing by oversampling (S5, imbalance studies).

Pure numpy. Every function keeps all originals first and reports, for each output row, which original it
copies (``source_idx``), so that splits can keep a duplicate on the same side as its source: S1's
cross-validation on bootstrapped data read 0.894 against 0.58 on external tests because duplicates crossed
the folds.
"""
from __future__ import annotations

import math

import numpy as np

from tfaug.errors import TfaugError


def bootstrap(
    images: np.ndarray, labels: np.ndarray, factor: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grow a dataset to ``factor`` times its size by duplicating originals drawn with replacement.

    S1's bootstrapping ("sample originals with replacement until the set is 4x its size"), made
    leakage-safe: all ``N`` originals are kept (rows ``0..N-1``, in order), followed by
    ``round((factor - 1) * N)`` duplicates of originals drawn uniformly with replacement.

    Args:
        images: array [N, ...] (any dtype; uint8 or float32 images in [-1, 1]), N >= 1.
        labels: array [N] of class indices.
        factor: output size / input size, finite and >= 1 (1 returns a copy of the originals).
        seed: seed of the draw; the same inputs and seed give the same output.

    Returns:
        ``(images [M, ...], labels [M], source_idx [M] int64)`` with ``M = N + round((factor - 1) * N)``
        and ``images[i] == original_images[source_idx[i]]``.

    Raises:
        TfaugError: ``factor`` below 1 or not finite, mismatched lengths, or an empty dataset.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    try:
        factor = float(factor)
    except (TypeError, ValueError):
        factor = float("nan")
    if not (math.isfinite(factor) and factor >= 1.0):
        raise TfaugError(f"bootstrap factor must be a finite number >= 1 (output size / input size), got {factor!r}")
    if len(images) != len(labels):
        raise TfaugError(f"bootstrap needs one label per image, got {len(images)} images and {len(labels)} labels")
    n = len(images)
    if n == 0:
        raise TfaugError("bootstrap needs at least one image, got an empty dataset")
    extra = int(round((factor - 1.0) * n))
    rng = np.random.default_rng(seed)
    duplicates = rng.integers(0, n, size=extra, dtype=np.int64)
    source_idx = np.concatenate([np.arange(n, dtype=np.int64), duplicates])
    return images[source_idx], labels[source_idx], source_idx


def balance_by_duplication(labels: np.ndarray, target_per_class: int | None = None, seed: int = 0) -> np.ndarray:
    """Indices (with repeats) that oversample every class up to ``target_per_class`` images.

    All originals come first (``0..N-1``, in order), then each short class's duplicates, class by class.
    Duplicates are spread evenly: a class of ``n`` images needing ``d`` more repeats each of its images
    ``d // n`` times plus ``d % n`` images drawn without replacement, so no image is copied much more often
    than another. Classes already at or above the target are kept whole (never subsampled).

    Args:
        labels: int array [N] of class indices, N >= 1; only classes present in it are balanced.
        target_per_class: images per class after balancing, >= 1; default the majority class's count.
        seed: seed of the remainder draws.

    Returns:
        int64 array [M] of indices into the originals, M >= N; ``labels[idx]`` has at least
        ``target_per_class`` of every present class.

    Raises:
        TfaugError: empty or non-1-D labels, or a target below 1.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise TfaugError(f"balance_by_duplication needs a non-empty 1-D label array, got shape {labels.shape}")
    classes, counts = np.unique(labels, return_counts=True)
    target = int(counts.max()) if target_per_class is None else int(target_per_class)
    if target < 1:
        raise TfaugError(f"target_per_class must be >= 1, got {target_per_class!r}")
    rng = np.random.default_rng(seed)
    parts = [np.arange(labels.size, dtype=np.int64)]
    for cls, count in zip(classes, counts):
        need = target - int(count)
        if need <= 0:
            continue
        members = np.flatnonzero(labels == cls).astype(np.int64)
        full, rest = divmod(need, members.size)
        parts.append(np.tile(members, full))
        parts.append(np.sort(rng.choice(members, size=rest, replace=False)))
    return np.concatenate(parts)
