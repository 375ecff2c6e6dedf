"""Tests for tfaug.augment.bootstrap: duplication sizes, provenance, determinism and class balancing."""
from __future__ import annotations

import numpy as np
import pytest

from tfaug.augment.bootstrap import balance_by_duplication, bootstrap
from tfaug.errors import TfaugError


@pytest.mark.parametrize("factor, expected", [(1, 60), (1.5, 90), (4, 240), (2.01, 121)])
def test_bootstrap_sizes(toy, factor, expected):
    images, labels = toy
    x, y, src = bootstrap(images, labels, factor, seed=0)
    assert len(x) == len(y) == len(src) == expected
    assert src.dtype == np.int64 and x.dtype == images.dtype and y.dtype == labels.dtype


def test_bootstrap_keeps_originals_and_source_idx_is_exact(toy):
    images, labels = toy
    x, y, src = bootstrap(images, labels, 4.0, seed=1)
    n = len(images)
    np.testing.assert_array_equal(src[:n], np.arange(n))
    np.testing.assert_array_equal(x[:n], images)
    np.testing.assert_array_equal(x, images[src])
    np.testing.assert_array_equal(y, labels[src])
    assert src.min() >= 0 and src.max() < n


def test_bootstrap_draws_uniformly_with_replacement(toy):
    images, labels = toy
    _, _, src = bootstrap(images, labels, 101.0, seed=0)
    dup_counts = np.bincount(src[len(images):], minlength=len(images))
    assert dup_counts.sum() == 6000
    assert dup_counts.min() > 50 and dup_counts.max() < 150  # mean 100: no original favoured or missed


def test_bootstrap_is_deterministic(toy):
    images, labels = toy
    a = bootstrap(images, labels, 3.0, seed=5)
    b = bootstrap(images, labels, 3.0, seed=5)
    c = bootstrap(images, labels, 3.0, seed=6)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[2], c[2])


@pytest.mark.parametrize("factor", [0.5, 0.0, -1, float("nan"), float("inf"), "many"])
def test_bootstrap_rejects_bad_factor(toy, factor):
    images, labels = toy
    with pytest.raises(TfaugError, match="factor"):
        bootstrap(images, labels, factor)


def test_bootstrap_rejects_mismatched_or_empty_input(toy):
    images, labels = toy
    with pytest.raises(TfaugError, match="label"):
        bootstrap(images, labels[:-1], 2.0)
    with pytest.raises(TfaugError, match="empty"):
        bootstrap(images[:0], labels[:0], 2.0)


def _imbalanced(toy):
    _, labels = toy  # 20 per class
    keep = np.concatenate([np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)[:5], np.flatnonzero(labels == 2)[:2]])
    return labels[keep]  # counts 20 / 5 / 2


def test_balance_to_majority(toy):
    labels = _imbalanced(toy)
    idx = balance_by_duplication(labels, seed=0)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx[: len(labels)], np.arange(len(labels)))
    np.testing.assert_array_equal(np.bincount(labels[idx]), [20, 20, 20])
    # Even spreading: the 2 images of class 2 are each used 10 times, the 5 of class 1 each 4 times.
    uses = np.bincount(idx, minlength=len(labels))
    assert set(uses[labels == 2]) == {10} and set(uses[labels == 1]) == {4} and set(uses[labels == 0]) == {1}


def test_balance_to_explicit_target_keeps_large_classes_whole(toy):
    labels = _imbalanced(toy)
    idx = balance_by_duplication(labels, target_per_class=8, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[idx]), [20, 8, 8])
    uses = np.bincount(idx, minlength=len(labels))
    assert uses[labels == 1].max() - uses[labels == 1].min() <= 1  # remainder drawn without replacement
    idx30 = balance_by_duplication(labels, target_per_class=30, seed=0)
    np.testing.assert_array_equal(np.bincount(labels[idx30]), [30, 30, 30])


def test_balance_is_deterministic_and_validates(toy):
    labels = _imbalanced(toy)
    np.testing.assert_array_equal(balance_by_duplication(labels, 9, seed=3), balance_by_duplication(labels, 9, seed=3))
    with pytest.raises(TfaugError, match="target_per_class"):
        balance_by_duplication(labels, target_per_class=0)
    with pytest.raises(TfaugError, match="1-D"):
        balance_by_duplication(np.array([], np.int32))
