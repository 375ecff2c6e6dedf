"""Cross-validation folds for studies: group-aware over real originals, and the naive (leaky) protocol of S1.

Group-aware protocol (:func:`source_folds`): folds are drawn over the REAL ORIGINALS of a cell's training draw. The
runner builds each fold's training mix from that fold's training originals only (their duplicates, augmentations and
a generator trained on them) and validates on the held-out originals only, so no copy or generated image of a
validation image is ever trained on.

Naive protocol (:func:`naive_folds`): folds are drawn over the rows of an already-enriched mix, ignoring where rows
came from; a duplicate and its original then land on both sides of a fold (S1's CV read 0.894 on bootstrapped data
against 0.58 on external tests). :func:`crossing_groups` makes that leak measurable.

Both are stratified: each class is dealt round-robin over the folds in a seeded order, continuing where the previous
class stopped, so fold sizes differ by at most one and a class with fewer rows than folds appears in as many
validation folds as it has rows (a class of one image is validated in one fold only). Numpy only.
"""
from __future__ import annotations

import numpy as np

from tfaug.errors import TfaugError

__all__ = ["source_folds", "naive_folds", "crossing_groups"]


def _stratified_folds(labels, folds: int, seed: int, what: str) -> list[tuple[np.ndarray, np.ndarray]]:
    y = np.asarray(labels).reshape(-1)
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
        raise TfaugError(f"cross-validation needs non-negative integer class ids for the {what}")
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise TfaugError(f"cv folds must be an integer >= 2, got {folds!r}")
    if folds > len(y):
        raise TfaugError(f"cannot make {folds} cross-validation folds from {len(y)} {what}; lower cv.folds")
    fold_of = np.empty(len(y), np.int64)
    offset = 0
    for c in np.unique(y).tolist():
        members = np.random.default_rng([int(seed), int(c)]).permutation(np.flatnonzero(y == c))
        fold_of[members] = (offset + np.arange(len(members))) % folds
        offset += len(members)
    everything = np.arange(len(y), dtype=np.int64)
    return [(everything[fold_of != f], everything[fold_of == f]) for f in range(folds)]


def source_folds(labels, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K folds over real originals (the group-aware protocol).

    Args:
        labels: int [N] labels of the cell's real training originals.
        folds: K >= 2, at most N.
        seed: fold seed.

    Returns:
        K pairs ``(train, val)`` of sorted int64 positions into ``labels``: disjoint, together covering every
        original, and each original is in exactly one ``val``.

    Raises:
        TfaugError: K < 2 or K > N.
    """
    return _stratified_folds(labels, folds, seed, "real training images")


def naive_folds(labels, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K folds over the rows of an enriched mix, ignoring groups: the leaky protocol of S1.

    Args:
        labels: int [M] labels of the mix rows (real, duplicates, generated).
        folds: K >= 2, at most M.
        seed: fold seed.

    Returns:
        K pairs ``(train, val)`` of sorted int64 row positions; copies of one source may sit on both sides.
    """
    return _stratified_folds(labels, folds, seed, "training rows")


def crossing_groups(groups, train_rows, val_rows) -> np.ndarray:
    """Real sources (groups >= 0) with rows on both sides of a fold: sorted int64 (empty when the fold is clean).

    Args:
        groups: int [M] row groups (``TrainingMix.groups``: dataset index of the source, negative for generated rows).
        train_rows, val_rows: int row positions into ``groups``.
    """
    g = np.asarray(groups, np.int64).reshape(-1)
    both = np.intersect1d(g[np.asarray(train_rows, np.int64)], g[np.asarray(val_rows, np.int64)])
    return both[both >= 0].astype(np.int64)
