"""Leakage-safe experiment splits shared by every job (train-gan, train-classifier, demo).

One rule everywhere: first hold out a stratified real test set from the whole dataset, then draw the training
subset (k per class and/or induced imbalance) from what remains (the *pool*). Because the split depends only on
(dataset, test_fraction, seed), a generator trained by ``tfaug train-gan`` and a classifier trained later by
``tfaug train-classifier`` with the same dataset, fraction and seed see the same test set, and the indices the
generator trained on are recorded so that leakage can be checked instead of assumed.

Synthetic images (``Dataset.synthetic``, e.g. of a folder topped up by ``tfaug fill``) never enter the test set:
it is drawn from the real images only, so the test set of a topped-up folder is exactly the test set its real
images alone would give. They stay in the pool and can be drawn for training, after the real images of their class.
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
    synthetic=None,
) -> ExperimentSplit:
    """Hold out a stratified test set of real images, then draw the training subset from the rest.

    Args:
        labels: int [N] class ids of the whole dataset.
        test_fraction: share of every class's REAL images held out as test data, in [0, 1); 0 means no test set.
        per_class: k training images per class (None = the whole pool). With ``synthetic`` flags a class's real
            pool images come first (in their seeded order) and its synthetic images only fill the rest of the k,
            so a class with at least k real pool images gets no synthetic one; the same holds for the images
            a minority class keeps.
        minority, keep: induced imbalance (see ``subset_draw``); keep is a fraction in (0, 1] or a count >= 1.
        seed: seed of the training draw (vary it across repeats).
        split_seed: seed of the test split (defaults to ``seed``; fix it across repeats to keep one test set).
        synthetic: optional bool [N], True for generated images (``Dataset.synthetic``); they never go to the
            test set. None (or all False) gives exactly the split without flags.
    """
    labels = np.asarray(labels)
    if not 0.0 <= test_fraction < 1.0:
        raise TfaugError(f"test fraction must be in [0, 1), got {test_fraction}")
    flags = np.zeros(len(labels), bool) if synthetic is None else np.asarray(synthetic).reshape(-1).astype(bool)
    if len(flags) != len(labels):
        raise TfaugError(f"synthetic flags must be {len(labels)} booleans, one per label, got {len(flags)}")
    split_seed = seed if split_seed is None else split_seed
    if test_fraction > 0:
        real = np.flatnonzero(~flags)
        _, _, test_local = stratified_split(labels[real], test=test_fraction, seed=split_seed)
        test = real[np.asarray(test_local, np.int64)]
    else:
        test = np.zeros(0, np.int64)
    pool = np.setdiff1d(np.arange(len(labels), dtype=np.int64), test)
    local = subset_draw(labels[pool], per_class=per_class, minority=minority, keep=keep, seed=seed,
                        synthetic=flags[pool])
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
