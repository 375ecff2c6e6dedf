"""Leakage-safe experiment splits shared by every job (train-gan, train-classifier, demo).

One rule everywhere: first hold out a stratified real test set from the whole dataset, then draw the training
subset (k per class and/or induced imbalance) from what remains (the *pool*). Because the split depends only on
(dataset, test_fraction, seed), a generator trained by ``tfaug train-gan`` and a classifier trained later by
``tfaug train-classifier`` with the same dataset, fraction and seed see the same test set, and the indices the
generator trained on are recorded so that leakage can be checked instead of assumed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfaug.data.subsets import stratified_split, subset_draw
from tfaug.errors import TfaugError


@dataclass(frozen=True)
class ExperimentSplit:
    """Indices into the full dataset.

    Attributes:
        train: int64 [M] the training draw (subset of ``pool``).
        test: int64 [T] held-out real test images (disjoint from ``pool``).
        pool: int64 [P] everything not in test (training draws come from here; ``extra-real`` controls too).
    """

    train: np.ndarray
    test: np.ndarray
    pool: np.ndarray

    def to_dict(self) -> dict:
        return {"train": self.train.tolist(), "test": self.test.tolist()}


def draw_experiment(
    labels: np.ndarray,
    *,
    test_fraction: float = 0.3,
    per_class: int | None = None,
    minority=None,
    keep=None,
    seed: int = 0,
    split_seed: int | None = None,
) -> ExperimentSplit:
    """Hold out a stratified test set, then draw the training subset from the rest.

    Args:
        labels: int [N] class ids of the whole dataset.
        test_fraction: share of every class held out as real test data, in [0, 1); 0 means no test set.
        per_class: k training images per class (None = the whole pool).
        minority, keep: induced imbalance (see ``subset_draw``); keep is a fraction in (0, 1] or a count >= 1.
        seed: seed of the training draw (vary it across repeats).
        split_seed: seed of the test split (defaults to ``seed``; fix it across repeats to keep one test set).
    """
    labels = np.asarray(labels)
    if not 0.0 <= test_fraction < 1.0:
        raise TfaugError(f"test fraction must be in [0, 1), got {test_fraction}")
    split_seed = seed if split_seed is None else split_seed
    if test_fraction > 0:
        pool, _, test = stratified_split(labels, test=test_fraction, seed=split_seed)
    else:
        pool, test = np.arange(len(labels)), np.zeros(0, np.int64)
    pool = np.sort(np.asarray(pool, np.int64))
    local = subset_draw(labels[pool], per_class=per_class, minority=minority, keep=keep, seed=seed)
    train = np.sort(pool[np.asarray(local, np.int64)])
    return ExperimentSplit(train=train, test=np.sort(np.asarray(test, np.int64)), pool=pool)


def check_no_leakage(generator_train_idx, test_idx, what: str = "the generator") -> None:
    """Raise TfaugError if any test index was used to train ``what`` (same dataset assumed)."""
    overlap = np.intersect1d(np.asarray(generator_train_idx), np.asarray(test_idx))
    if len(overlap):
        raise TfaugError(
            f"{len(overlap)} test images were used to train {what}; use the same --seed and --test-fraction "
            "as the generator run (or a generator trained on other data) so the test set stays unseen"
        )
