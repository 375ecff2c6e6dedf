"""Summary statistics over repeats: mean with a Student-t confidence interval, paired differences.

With few repeats (3-10) a normal-approximation interval is too narrow; the t quantile with n-1 degrees of
freedom is the honest choice. With one repeat the half-width is NaN (unknown), never 0.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the two-sided ``confidence`` interval (t distribution).

    Args:
        values: finite numbers (NaNs are dropped).
        confidence: in (0, 1).

    Returns:
        (mean, half_width); half_width is NaN when fewer than two values remain.
    """
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if len(x) == 0:
        return float("nan"), float("nan")
    if len(x) == 1:
        return float(x[0]), float("nan")
    sem = x.std(ddof=1) / math.sqrt(len(x))
    t = stats.t.ppf(0.5 + confidence / 2.0, df=len(x) - 1)
    return float(x.mean()), float(t * sem)


def paired_difference_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and CI half-width of ``a - b`` paired by position (same repeat/seed): removes between-repeat noise."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    return mean_ci(list(a - b), confidence)


def format_ci(mean: float, half: float, digits: int = 3) -> str:
    """'0.912 ± 0.014' (or '0.912' when the interval is unknown)."""
    if math.isnan(mean):
        return "n/a"
    if math.isnan(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"
