"""How many images a generator adds to each class: the one rule ``train-classifier``, studies and ``fill`` share.

:func:`generated_counts` maps the real images per class to the generated images per class:

- an explicit ``ratio`` r >= 0: ``round(r * n_c)`` (half up) for every class, so the class balance stays as it is;
- else ``top_up`` (an imbalanced draw: ``--minority``/``keep`` in ``train-classifier``, the imbalance regime of a
  study) or a ``target``: every class below the target gets ``target - n_c`` so it reaches it, classes at or above it
  get 0. The target defaults to the majority (largest) class count; ``tfaug fill`` passes its ``--min-per-class``;
- else ``n_c`` (ratio 1: as many generated images as real ones).

So a draw with 3 images of the minority class and 24 of every other class gets 21 generated images of the minority
class and none of the others: the imbalance is removed, not copied. Numpy only.
"""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

from tfaug.errors import TfaugError

__all__ = ["generated_counts", "round_half_up"]


def round_half_up(x: float) -> int:
    """``floor(x + 0.5)``: 0.5 -> 1, 1.5 -> 2, 2.5 -> 3 (Python's ``round`` would give 0, 2, 2)."""
    return int(np.floor(float(x) + 0.5))


def generated_counts(class_counts: Sequence[int], *, ratio: float | None = None, top_up: bool = False,
                     target: int | None = None) -> list[int]:
    """Generated images per class for real counts ``class_counts`` (see the module docstring for the rule).

    Args:
        class_counts: K >= 1 real image counts (ints >= 0), indexed by class id.
        ratio: generated images per real image, >= 0; when given it wins over ``top_up``/``target``.
        top_up: top every class up to ``target`` (default: the largest count).
        target: the count every class is topped up to, >= 1 (implies ``top_up``).

    Returns:
        K ints >= 0.

    Raises:
        TfaugError: negative or non-integer counts, a negative ratio, or a target < 1.
    """
    counts = [c for c in np.asarray(class_counts).reshape(-1).tolist()]
    if not counts or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 0 for c in counts):
        raise TfaugError(f"class counts must be a non-empty list of integers >= 0, got {list(class_counts)!r}")
    if ratio is not None:
        if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not np.isfinite(ratio) or ratio < 0:
            raise TfaugError(f"the ratio of generated to real images must be a number >= 0, got {ratio!r}")
        return [round_half_up(ratio * c) for c in counts]
    if target is not None:
        if isinstance(target, bool) or not isinstance(target, numbers.Integral) or target < 1:
            raise TfaugError(f"the per-class target must be an integer >= 1, got {target!r}")
        top_up = True
    if top_up:
        goal = int(target) if target is not None else max(counts)
        return [max(0, goal - int(c)) for c in counts]
    return [int(c) for c in counts]
