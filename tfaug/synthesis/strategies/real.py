"""Blocks built from real images only: ``baseline``, ``bootstrap[:F]``, ``classic[:PRESET]``, ``extra-real[:R]``.

- ``bootstrap``: duplicates of randomly chosen originals until the set is F times its size (default 4, S1); in an
  imbalance regime without F, every class duplicated up to the majority count (``balance_by_duplication``). A
  duplicate keeps its source's group.
- ``classic``: the augmentation spec travels in ``TrainingMix.augment`` (applied on the fly to training batches).
- ``extra-real`` (the control): as many additional REAL images as a generator would add under the same count rule,
  drawn without replacement (seeded) from the pool images of the same class that are not in the draw; when the pool
  is short it takes what there is (``n_extra_real`` records it).
"""
from __future__ import annotations

import numpy as np

from tfaug.augment.bootstrap import balance_by_duplication, bootstrap
from tfaug.synthesis.strategies.base import Block, Needs, Strategy, number, once, register
from tfaug.synthesis.strategies.mix import MixState
from tfaug.utils.images import as_float_images

_EXTRA_TAG = 7919  # separates the extra-real draw's random stream from the duplication stream


def _parse_baseline(fields: dict, head: str, arg: str, text: str) -> None:
    """``baseline``: the real images only (adds nothing)."""


def _parse_bootstrap(fields: dict, head: str, arg: str, text: str) -> None:
    once(fields, "bootstrap", number(arg, 4.0, text, minimum=1.0), text)
    fields["bootstrap_given"] = bool(arg)


def _parse_classic(fields: dict, head: str, arg: str, text: str) -> None:
    once(fields, "augment", f"{head}:{arg}" if arg else head, text)


def _parse_extra_real(fields: dict, head: str, arg: str, text: str) -> None:
    once(fields, "extra_real", True, text)
    if arg:
        fields["ratio"] = number(arg, 1.0, text, minimum=0.0)
        fields["ratio_given"] = True


def duplicates(strategy: Strategy, kind: str, y: np.ndarray, seed: int) -> np.ndarray:
    """Row indices (into the real draw) of the duplicates ``strategy`` adds (no originals)."""
    if not strategy.bootstrap or len(y) == 0:
        return np.zeros(0, np.int64)
    if kind == "imbalance" and not strategy.bootstrap_given:
        return balance_by_duplication(y, seed=seed)[len(y):]
    return bootstrap(np.arange(len(y)), y, strategy.bootstrap, seed=seed)[2][len(y):]


def _stage_bootstrap(strategy: Strategy, state: MixState) -> None:
    dup = duplicates(strategy, state.counts.kind, state.y, state.draw.seed)
    state.real.append((state.x[dup], state.y[dup], state.idx[dup]))
    state.n_duplicates += len(dup)


def extra_real_rows(counts: dict, pool_x, pool_y, pool_idx, idx_real: np.ndarray, seed: int):
    """Rows of the pool to add: per class up to ``counts[c]`` images not in the draw, seeded, without replacement.

    Returns:
        (rows int64 into the pool, the pool's dataset indices int64).
    """
    if pool_y is None or pool_x is None or len(pool_y) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pool_y = np.asarray(pool_y).reshape(-1)
    pool_idx = np.arange(len(pool_y)) if pool_idx is None else np.asarray(pool_idx, np.int64).reshape(-1)
    fresh = ~np.isin(pool_idx, idx_real)  # never a second copy of a training image
    rows = []
    for c, n in counts.items():
        members = np.flatnonzero((pool_y == c) & fresh)
        if n > 0 and len(members):
            rng = np.random.default_rng([int(seed), _EXTRA_TAG, int(c)])
            rows.append(np.sort(rng.choice(members, size=min(n, len(members)), replace=False)))
    rows = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
    return rows, pool_idx


def _stage_extra_real(strategy: Strategy, state: MixState) -> None:
    d = state.draw
    rows, pidx = extra_real_rows(state.per_class, d.pool_x, d.pool_y, d.pool_idx, state.idx, d.seed)
    if len(rows):
        state.real.append((as_float_images(np.asarray(d.pool_x)[rows]),
                           np.asarray(d.pool_y, np.int32).reshape(-1)[rows], pidx[rows]))
        state.n_extra_real += len(rows)


BASELINE = register(Block(names=("baseline",), parse=_parse_baseline))
BOOTSTRAP = register(Block(names=("bootstrap",), parse=_parse_bootstrap, stage=_stage_bootstrap, order=10))
CLASSIC = register(Block(names=("classic",), parse=_parse_classic))
EXTRA_REAL = register(Block(names=("extra-real",), parse=_parse_extra_real, stage=_stage_extra_real, order=20,
                            needs=lambda s: Needs(pool=True)))
