"""Subsets: k-shot draws, induced imbalance (minority/keep, exponential long tail), stratified and group-aware splits."""
from __future__ import annotations

import numpy as np
import pytest

from tfaug.data.subsets import (exponential_counts, imbalance_subset, long_tail_subset, per_class_subset,
                                stratified_split, subset_draw)
from tfaug.errors import TfaugError


def _labels(counts, seed=0):
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    return np.random.default_rng(seed).permutation(y)


def test_per_class_exact_counts_sorted_int64():
    y = _labels([30, 12, 50])
    idx = per_class_subset(y, 10, seed=1)
    assert idx.dtype == np.int64 and (np.diff(idx) > 0).all()
    np.testing.assert_array_equal(np.bincount(y[idx]), [10, 10, 10])


def test_per_class_deterministic_and_seed_sensitive():
    y = _labels([40, 40, 40])
    a, b, c = per_class_subset(y, 5, seed=3), per_class_subset(y, 5, seed=3), per_class_subset(y, 5, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_per_class_nested_across_k():
    y = _labels([40, 40])
    assert set(per_class_subset(y, 5, seed=7)) <= set(per_class_subset(y, 10, seed=7))


def test_per_class_too_large_k():
    y = _labels([20, 7, 20])
    with pytest.raises(TfaugError, match="class 1 has only 7 images, fewer than the 10 per class requested"):
        per_class_subset(y, 10)
    with pytest.raises(TfaugError, match="class 3 has only 0 images"):
        per_class_subset(_labels([5, 5, 5]), 2, num_classes=4)
    with pytest.raises(TfaugError):
        per_class_subset(y, 0)


def test_imbalance_fraction_and_count():
    y = _labels([100, 100, 100, 100])
    idx = imbalance_subset(y, [1, 3], 0.1, seed=0)
    np.testing.assert_array_equal(np.bincount(y[idx]), [100, 10, 100, 10])
    idx = imbalance_subset(y, 2, 7, seed=0)
    np.testing.assert_array_equal(np.bincount(y[idx]), [100, 100, 7, 100])
    assert idx.dtype == np.int64 and (np.diff(idx) > 0).all()
    # tiny fractions still keep one image
    np.testing.assert_array_equal(np.bincount(y[imbalance_subset(y, 0, 0.001)]), [1, 100, 100, 100])
    np.testing.assert_array_equal(imbalance_subset(y, 0, 5, seed=2), imbalance_subset(y, 0, 5, seed=2))
    assert not np.array_equal(imbalance_subset(y, 0, 5, seed=2), imbalance_subset(y, 0, 5, seed=3))


@pytest.mark.parametrize(
    "minority, keep, fragment",
    [(9, 0.5, "minority class 9"), (1, 0.0, "(0, 1]"), (1, 1.5, "(0, 1]"), (1, 0, "count >= 1"), (1, 11, "only 10")],
)
def test_imbalance_errors(minority, keep, fragment):
    with pytest.raises(TfaugError) as err:
        imbalance_subset(_labels([10, 10]), minority, keep)
    assert fragment in str(err.value)


def test_stratified_split_disjoint_and_stratified():
    y = _labels([50, 30, 20])
    train, val, test = stratified_split(y, test=0.2, val=0.1, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(np.intersect1d(train, val)) == 0
    assert len(np.intersect1d(val, test)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))
    np.testing.assert_array_equal(np.bincount(y[test]), [10, 6, 4])
    np.testing.assert_array_equal(np.bincount(y[val]), [5, 3, 2])
    for part in (train, val, test):
        assert part.dtype == np.int64 and (np.diff(part) > 0).all()
    again = stratified_split(y, test=0.2, val=0.1, seed=0)
    for a, b in zip((train, val, test), again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(test, stratified_split(y, test=0.2, val=0.1, seed=1)[2])


def test_stratified_split_counts_and_errors():
    y = _labels([10, 4])
    train, val, test = stratified_split(y, test=2, seed=0)
    np.testing.assert_array_equal(np.bincount(y[test]), [2, 2])
    assert len(val) == 0
    with pytest.raises(TfaugError, match="class 1 has only 4 images"):
        stratified_split(y, test=3, val=1)
    with pytest.raises(TfaugError, match=r"\[0, 1\)"):
        stratified_split(y, test=1.0)
    # fractions never take a class's last training image
    train, _, test = stratified_split(np.array([0, 0, 0, 1]), test=0.5)
    assert 3 in train and 3 not in test


def test_stratified_split_group_aware():
    rng = np.random.default_rng(0)
    # 40 source images, 3 classes; each source has 1-5 augmented copies sharing its group id and label
    src_labels = rng.integers(0, 3, 40)
    copies = rng.integers(1, 6, 40)
    groups = np.repeat(np.arange(40), copies)
    y = np.repeat(src_labels, copies)
    order = rng.permutation(len(y))
    groups, y = groups[order], y[order]
    y[:5] = (y[:5] + 1) % 3  # a few copies disagree with their group's majority label
    train, val, test = stratified_split(y, test=0.25, val=0.15, seed=0, groups=groups)
    sets = [set(groups[p]) for p in (train, val, test)]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(y)))
    assert set(y[test]) == {0, 1, 2} and set(y[train]) == {0, 1, 2}
    assert 0.1 < len(test) / len(y) < 0.4


def test_group_aware_keeps_a_training_group():
    # one class split into two big groups: the test request (1 image) still leaves a whole training group
    y = np.zeros(10, int)
    groups = np.array([0] * 5 + [1] * 5)
    train, val, test = stratified_split(y, test=0.3, seed=0, groups=groups)
    assert len(train) == 5 and len(test) == 5 and len(val) == 0
    train, _, test = stratified_split(np.zeros(4, int), test=0.5, groups=np.zeros(4, int))
    assert len(train) == 4 and len(test) == 0


def test_subset_draw_combines():
    y = _labels([30, 30, 30])
    np.testing.assert_array_equal(subset_draw(y), np.arange(90))
    idx = subset_draw(y, per_class=10, minority=[2], keep=0.3, seed=5)
    np.testing.assert_array_equal(np.bincount(y[idx]), [10, 10, 3])
    assert set(idx) <= set(per_class_subset(y, 10, seed=5))
    with pytest.raises(TfaugError, match="both"):
        subset_draw(y, minority=1)


def test_exponential_counts_follow_the_formula_and_cifar10_lt():
    # CIFAR-10-LT at ratio 100 (Cui et al. 2019; Cao et al. 2019): int(5000 * 0.01 ** (c / 9))
    assert exponential_counts(5000, 10, 100) == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert exponential_counts(5000, 10, 10) == [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]
    # K = 3, ratio 4: 12 * 4 ** (-0 / 2), 12 * 4 ** (-1 / 2) = 6, 12 / 4 = 3
    assert exponential_counts(12, 3, 4) == [12, 6, 3]
    assert exponential_counts(7, 4, 1) == [7, 7, 7, 7]  # ratio 1 is balanced
    assert exponential_counts(3, 5, 100) == [3, 1, 1, 1, 1]  # at least one image per class
    for n_max, k, ratio in ((0, 3, 10), (5, 1, 10), (5, 3, 0.5), (5, 3, float("inf")), (5, 3, True)):
        with pytest.raises(TfaugError):
            exponential_counts(n_max, k, ratio)


def test_long_tail_subset_counts_nesting_and_seed():
    y = _labels([40, 50, 60, 45])
    idx = long_tail_subset(y, 10, seed=1)
    assert np.bincount(y[idx], minlength=4).tolist() == exponential_counts(40, 4, 10) == [40, 18, 8, 4]
    assert np.array_equal(idx, np.sort(idx)) and idx.dtype == np.int64
    steeper = long_tail_subset(y, 100, seed=1)
    assert set(steeper.tolist()) <= set(idx.tolist())  # each class takes a prefix of one seeded order
    assert np.bincount(y[long_tail_subset(y, 10, n_max=30)]).tolist() == [30, 13, 6, 3]
    assert not np.array_equal(long_tail_subset(y, 10, seed=1), long_tail_subset(y, 10, seed=2))
    flags = np.zeros(len(y), bool)
    flags[np.flatnonzero(y == 3)[:41]] = True  # class 3: 4 real images left, drawn before any synthetic one
    assert not flags[long_tail_subset(y, 10, seed=1, synthetic=flags)].any()
    with pytest.raises(TfaugError, match="class 0 has only 40 images, fewer than the 41"):
        long_tail_subset(y, 10, n_max=41)
    with pytest.raises(TfaugError, match="class 4 has no images"):
        long_tail_subset(y, 10, num_classes=5)


def test_extreme_imbalance_is_a_count_against_the_rest():
    y = _labels([500, 500, 500, 500])
    idx = subset_draw(y, per_class=400, minority=[1, 3], keep=12, seed=0)
    assert np.bincount(y[idx]).tolist() == [400, 12, 400, 12]
