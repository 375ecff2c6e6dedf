import math

import numpy as np
import pytest
from scipy import stats

from tfaug.metrics.stats import format_ci, mean_ci, paired_difference_ci


def test_mean_ci_matches_scipy_t_interval():
    x = [0.9, 0.92, 0.88, 0.95]
    m, h = mean_ci(x)
    lo, hi = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert m == pytest.approx(np.mean(x))
    assert m - h == pytest.approx(lo) and m + h == pytest.approx(hi)


def test_single_value_has_unknown_interval_not_zero():
    m, h = mean_ci([0.5])
    assert m == 0.5 and math.isnan(h)
    assert format_ci(m, h) == "0.500"


def test_paired_difference_removes_shared_noise():
    base = np.array([0.6, 0.8, 0.7, 0.9])
    d, h = paired_difference_ci(base + 0.05, base)
    assert d == pytest.approx(0.05) and h == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        paired_difference_ci([1, 2], [1])
