"""CV folds: group-aware folds keep every source on one side; naive folds over a bootstrapped mix leak (S1)."""
import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.studies.config import Setting
from tfaug.studies.cv import crossing_groups, naive_folds, source_folds
from tfaug.synthesis.strategies import Counts, Draw, parse

SETTING = Counts.of(Setting("k=10", "per_class", per_class=10))


def _originals(seed=0):
    y = np.repeat(np.arange(3), [10, 10, 7]).astype(np.int32)
    x = np.random.default_rng(seed).uniform(-1, 1, (len(y), 8, 8, 1)).astype(np.float32)
    return x, y, 200 + 3 * np.arange(len(y), dtype=np.int64)  # dataset indices, not positions


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_source_folds_partition_the_originals(folds):
    _, y, _ = _originals()
    parts = source_folds(y, folds, seed=1)
    assert len(parts) == folds
    seen = np.concatenate([val for _, val in parts])
    assert sorted(seen.tolist()) == list(range(len(y)))  # each original validated exactly once
    for train, val in parts:
        assert not np.intersect1d(train, val).size and len(train) + len(val) == len(y)
        assert train.dtype == val.dtype == np.int64 and np.all(np.diff(val) > 0)
        for c in range(3):  # stratified: class shares within one image of an even spread
            assert abs((y[val] == c).sum() - (y == c).sum() / folds) < 1
    sizes = [len(v) for _, v in parts]
    assert max(sizes) - min(sizes) <= 1
    assert [v.tolist() for _, v in source_folds(y, folds, seed=1)] == [v.tolist() for _, v in parts]
    assert [v.tolist() for _, v in source_folds(y, folds, seed=2)] != [v.tolist() for _, v in parts]


def test_tiny_classes_and_too_many_folds():
    y = np.array([0, 0, 0, 0, 1, 2, 2])
    parts = source_folds(y, 3, seed=0)
    assert sum((y[v] == 1).sum() for _, v in parts) == 1  # a class of one image: one validation fold
    assert all(len(v) >= 2 for _, v in parts)
    with pytest.raises(TfaugError, match="cannot make 8 cross-validation folds from 7"):
        source_folds(y, 8, seed=0)
    with pytest.raises(TfaugError, match="folds must be an integer >= 2"):
        naive_folds(y, 1, seed=0)
    assert len(source_folds([0, 1], 2, seed=0)) == 2


def test_naive_folds_on_a_bootstrapped_mix_leak():
    x, y, idx = _originals()
    mix = parse("bootstrap").build(Draw(x=x, y=y, idx=idx, num_classes=3, seed=0), SETTING)
    assert len(mix.labels) == 4 * len(y)
    crossing = [crossing_groups(mix.groups, tr, va) for tr, va in naive_folds(mix.labels, 3, seed=0)]
    assert all(len(c) > 0 for c in crossing)  # copies of one original sit on both sides: the leak is real
    assert set(np.concatenate(crossing)) <= set(idx)


def test_mix_built_per_source_fold_never_crosses():
    x, y, idx = _originals()

    class Gen:
        num_classes, image_shape = 3, (8, 8, 1)

        def sample(self, class_ids, seeds):
            return np.zeros((len(class_ids), 8, 8, 1), np.float32)

    class Res:
        def generator(self, model):
            return Gen()

    for fold, (tr, va) in enumerate(source_folds(y, 3, seed=0)):
        mix = parse("cdcgan+bootstrap+classic").build(Draw(x=x[tr], y=y[tr], idx=idx[tr], num_classes=3, seed=fold),
                                                      SETTING, Res())
        assert mix.n_duplicates > 0 and mix.n_synthetic > 0
        real_sources = mix.groups[mix.groups >= 0]
        assert not np.intersect1d(real_sources, idx[va]).size  # no copy of a validation original is trained on
        # validation rows are the held-out originals themselves: put train mix and val side by side
        groups = np.concatenate([mix.groups, idx[va]])
        rows = np.arange(len(groups))
        assert crossing_groups(groups, rows[: len(mix.groups)], rows[len(mix.groups):]).size == 0


def test_crossing_groups_ignores_generated_rows():
    groups = np.array([5, 5, -1, -2, 7, -1])
    assert crossing_groups(groups, [0, 2, 4], [1, 5]).tolist() == [5]
    assert crossing_groups(groups, [0, 2], [3, 4]).tolist() == []
