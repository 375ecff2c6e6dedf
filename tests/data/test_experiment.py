import numpy as np
import pytest

from tfaug.data.experiment import check_no_leakage, draw_experiment
from tfaug.errors import TfaugError


def _labels():
    return np.repeat(np.arange(5), 40)


def test_test_set_is_held_out_before_the_draw():
    y = _labels()
    sp = draw_experiment(y, test_fraction=0.25, per_class=6, seed=3)
    assert len(np.intersect1d(sp.train, sp.test)) == 0
    assert len(np.intersect1d(sp.pool, sp.test)) == 0
    assert set(sp.train) <= set(sp.pool)
    assert np.bincount(y[sp.train]).tolist() == [6] * 5
    assert np.bincount(y[sp.test]).tolist() == [10] * 5


def test_same_split_seed_keeps_the_test_set_across_repeats():
    y = _labels()
    a = draw_experiment(y, test_fraction=0.3, per_class=5, seed=1, split_seed=0)
    b = draw_experiment(y, test_fraction=0.3, per_class=5, seed=2, split_seed=0)
    assert np.array_equal(a.test, b.test)
    assert not np.array_equal(a.train, b.train)


def test_leakage_check():
    y = _labels()
    sp = draw_experiment(y, test_fraction=0.3, per_class=5, seed=0)
    check_no_leakage(sp.train, sp.test)
    with pytest.raises(TfaugError, match="test images were used"):
        check_no_leakage(np.concatenate([sp.train, sp.test[:2]]), sp.test)
    with pytest.raises(TfaugError):
        draw_experiment(y, test_fraction=1.5)
