"""Choose a strategy on a study's validation columns, never on its test columns.

A study with ``test.validation_per_class`` scores every cell on a fixed validation set of real training-side images
that nothing trains on (``val_accuracy``). :func:`choose_on_validation` ranks candidate strategies by their mean
paired validation difference to a reference (the control), over every (setting, repeat) both have, and returns the
best with the evidence. ``tfaug.synthesis.strategies.recommended`` was chosen this way (README, docs/RESULTS.md).
Numpy only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tfaug.errors import TfaugError

__all__ = ["Choice", "choose_on_validation", "choice_table"]


@dataclass(frozen=True)
class Choice:
    """The chosen strategy and, per candidate, ``(mean paired difference to the reference on the metric, pairs)``
    sorted best first; differences are fractions in [-1, 1]."""

    strategy: str
    metric: str
    reference: str
    ranking: tuple  # ((strategy, mean_diff, n_pairs), ...)


def choose_on_validation(rows: Sequence[dict], candidates: Sequence[str], *, reference: str = "classic",
                         metric: str = "val_accuracy", settings: Sequence[str] | None = None) -> Choice:
    """The candidate with the highest mean paired ``metric`` difference to ``reference``.

    Args:
        rows: study result rows (``setting``, ``strategy``, ``repeat``, ``metric``).
        candidates: strategy texts to choose among (each needs rows with ``metric`` paired with the reference's).
        reference: the control strategy text.
        metric: a validation column (``val_accuracy``, ``val_macro_f1``, ``val_balanced_accuracy``).
        settings: only these settings (None: all).

    Raises:
        TfaugError: no validation column, a candidate without paired rows, no candidates.
    """
    if not candidates:
        raise TfaugError("no candidate strategies to choose among")
    if not metric.startswith("val_"):
        raise TfaugError(f"choose on a validation column (val_...), not {metric!r}: the test set never chooses")
    cells = {}
    for r in rows:
        if settings is not None and r.get("setting") not in settings:
            continue
        v = r.get(metric)
        if isinstance(v, (int, float)) and np.isfinite(v):
            cells[(r["strategy"], r["setting"], int(r.get("repeat", 0)))] = float(v)
    ref = {k[1:]: v for k, v in cells.items() if k[0] == reference}
    if not ref:
        raise TfaugError(f"no {metric} rows of the reference {reference!r}; run the study with "
                         "test.validation_per_class")
    ranking = []
    for c in candidates:
        diffs = [v - ref[k[1:]] for k, v in cells.items() if k[0] == c and k[1:] in ref]
        if not diffs:
            raise TfaugError(f"candidate {c!r} has no {metric} rows paired with {reference!r}")
        ranking.append((c, float(np.mean(diffs)), len(diffs)))
    ranking.sort(key=lambda t: (-t[1], t[0]))
    return Choice(strategy=ranking[0][0], metric=metric, reference=reference, ranking=tuple(ranking))


def choice_table(choice: Choice) -> str:
    """Markdown: candidates, mean paired difference in points, pairs; the chosen one in bold."""
    lines = [f"| strategy | mean Δ {choice.metric} vs {choice.reference} (points) | pairs |", "|---|---:|---:|"]
    for s, d, n in choice.ranking:
        name = f"**{s}**" if s == choice.strategy else s
        lines.append(f"| {name} | {100 * d:+.2f} | {n} |")
    return "\n".join(lines) + "\n"
