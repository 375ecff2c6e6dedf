"""The training set of one study cell: real draw + duplicates + extra real + generated images, with their sources.

:func:`build_study_mix` turns a parsed :class:`~tfaug.studies.strategies.Strategy` and a cell's real draw into a
:class:`StudyMix`. Every row records its source (``groups``) so that no copy or generated image can cross a split or
CV fold from its source, and the counts of what was added.

Count rules (the issue's):

- per_class regime: ``round(ratio * n_c)`` generated images for a class with ``n_c`` real ones (ratio default 1;
  rounding half up).
- imbalance regime: without an explicit ratio (``strategy.ratio_given`` False) generative and bootstrap strategies top
  every class up to the majority class count (bootstrap: duplicates by ``balance_by_duplication``; generator:
  generated images of each short class); with a ratio: ``round(ratio * n_c)``. ``bootstrap:F`` with F given still
  duplicates up to F times the size (``bootstrap``).
- grid regime: ``setting.synthetic`` generated images in total, spread evenly over the classes (remainder to the
  lowest class ids); ``setting.real`` may be 0 (generated only).
- ``extra-real`` (the control): the same number of additional REAL images a generator would add under the same rule,
  drawn without replacement (seeded) from the pool images of the same class that are not in the draw; when the pool
  is short it takes what there is (``n_extra_real`` records it).
- ``synthetic-only``: generated images only, as many per class as the real draw has (``ratio`` times that when
  given); imbalance: the majority count for every class; grid: the synthetic count. Real images are not trained on.
- ``curriculum``: ``pretrain`` holds the generated images (counts as for MODEL); ``images``/``labels`` are the real
  part (with duplicates / extra real when also asked).
- ``source-flag``: real + generated with an extra last channel, 1 on generated rows and 0 on real ones
  (:func:`add_flag`; test images get flag 0).
- filters: each strategy filter name is looked up in the study's named ``filters`` (else used as a spec) and the
  chain is built with the callables it needs from ``resources`` (fitted on the real draw). Generation over-samples
  (twice the missing count, up to :data:`ROUNDS` rounds with fresh seeds) until each class has its count of kept
  images; when the rounds run out it keeps what passed; ``n_rejected`` counts the filtered-out images.

Seeds: generated image j of class c in the cell uses seed ``seed + CLASS_SEED_STRIDE * c + j``; later rounds continue
from the next unused j, so no seed is ever used twice (the unfiltered draw equals ``sample_per_class(gen, counts,
seed)``). Everything is deterministic given ``seed``. Numpy only at import.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tfaug.augment.bootstrap import balance_by_duplication, bootstrap
from tfaug.errors import TfaugError
from tfaug.studies.config import Setting
from tfaug.studies.strategies import Strategy
from tfaug.synthesis.filters import apply_filters, build_filters, parse_filters
from tfaug.synthesis.sample import CLASS_SEED_STRIDE
from tfaug.training.classifier import as_float_images

__all__ = ["Resources", "StudyMix", "synthetic_counts", "build_study_mix", "add_flag", "ROUNDS", "OVERSAMPLE"]

ROUNDS = 4        # generation rounds when filters drop images (the first + 3 with fresh seeds)
OVERSAMPLE = 2.0  # images requested per still-missing image in each filtered round
_CHUNK = 1024     # images per generator.sample call
_EXTRA_TAG = 7919  # separates the extra-real draw's random stream from the duplication stream


class Resources(Protocol):
    """What a mix may need beyond the real draw; implemented by the runner, cached per cell / fold."""

    def generator(self, model: str):
        """A generator (``sample(class_ids, seeds)``) of zoo ``model`` trained only on this cell's generator_train."""

    def probabilities_fn(self):
        """Judge classifier trained on the real training images: images [-1, 1] [N,H,W,C] -> probabilities [N, K]."""

    def encode_fn(self):
        """Encoder trained on the real training images: images [-1, 1] [N,H,W,C] -> encodings [N, D]."""


@dataclass
class StudyMix:
    """One cell's training set.

    Attributes:
        images: float32 [-1, 1] [M, H, W, C] (C + 1 channels with ``source_flag``: last channel 1 = generated).
        labels: int32 [M] class ids.
        groups: int64 [M]: the dataset index of the real original a row comes from (real, duplicate and extra-real
            rows); generated rows ``-1 - g`` for the g-th generated image, so each is its own group, never >= 0.
        synthetic: bool [M], True on generated rows.
        augment: classic augmentation spec for training batches (never for test), or None.
        pretrain: curriculum only: ``(images float32 [P, H, W, C], labels int32 [P])`` of generated images to train
            on first; ``images``/``labels`` then hold only the real part.
        n_real, n_duplicates, n_extra_real, n_synthetic, n_rejected: rows by origin (generated ones in ``pretrain``
            count as n_synthetic); n_rejected = generated images dropped by filters.
        source_flag: True when ``images`` carry the flag channel.
    """

    images: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    synthetic: np.ndarray
    augment: str | None
    pretrain: tuple | None
    n_real: int
    n_duplicates: int
    n_extra_real: int
    n_synthetic: int
    n_rejected: int
    source_flag: bool


def _round(x: float) -> int:
    return int(np.floor(x + 0.5))


def _even(total: int, num_classes: int) -> dict[int, int]:
    base, rest = divmod(int(total), num_classes)
    return {c: base + (c < rest) for c in range(num_classes)}


def synthetic_counts(strategy: Strategy, setting: Setting, y_real, num_classes: int) -> dict[int, int]:
    """Generated (or, for ``extra-real``, additional real) images per class, by the module's count rules.

    Args:
        strategy: the parsed strategy (its ratio, flags).
        setting: the cell's setting (regime; the grid's synthetic total).
        y_real: int [N] labels of the real draw.
        num_classes: K >= 1.

    Returns:
        ``{class_id: count >= 0}`` for every class in [0, K); all zeros when the strategy adds nothing.
    """
    if num_classes < 1:
        raise TfaugError(f"num_classes must be >= 1, got {num_classes}")
    zero = {c: 0 for c in range(num_classes)}
    if not (strategy.generator or strategy.extra_real):
        return zero
    if setting.kind == "grid":
        return _even(setting.synthetic or 0, num_classes)
    counts = np.bincount(np.asarray(y_real, np.int64).reshape(-1), minlength=num_classes)[:num_classes]
    if strategy.synthetic_only:
        base = np.full(num_classes, counts.max()) if setting.kind == "imbalance" else counts
        ratio = strategy.ratio if strategy.ratio_given else 1.0
        return {c: _round(ratio * int(base[c])) for c in range(num_classes)}
    if setting.kind == "imbalance" and not strategy.ratio_given:
        top = int(counts.max()) if counts.size else 0
        return {c: top - int(counts[c]) for c in range(num_classes)}
    return {c: _round(strategy.ratio * int(counts[c])) for c in range(num_classes)}


def add_flag(images: np.ndarray, flag: float) -> np.ndarray:
    """Append a constant channel: float32 [N, H, W, C] -> [N, H, W, C + 1] with the last channel ``flag`` (0 real,
    1 generated; test images get 0)."""
    x = np.asarray(images, np.float32)
    return np.concatenate([x, np.full((*x.shape[:-1], 1), flag, np.float32)], axis=-1)


def _duplicates(strategy: Strategy, setting: Setting, y: np.ndarray, seed: int) -> np.ndarray:
    """Row indices (into the real draw) of the duplicates the strategy adds (no originals)."""
    if not strategy.bootstrap or len(y) == 0:
        return np.zeros(0, np.int64)
    if setting.kind == "imbalance" and not strategy.bootstrap_given:
        return balance_by_duplication(y, seed=seed)[len(y):]
    return bootstrap(np.arange(len(y)), y, strategy.bootstrap, seed=seed)[2][len(y):]


def _extra_real(counts: dict, pool_x, pool_y, pool_idx, idx_real: np.ndarray, seed: int):
    """Rows of the pool to add: per class up to ``counts[c]`` images not in the draw, seeded, without replacement."""
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


def _filters(strategy: Strategy, named: dict | None, resources, x_real: np.ndarray, y_real: np.ndarray):
    specs = [s for name in strategy.filters for s in parse_filters((named or {}).get(name, name))]
    if not specs:
        return []
    names = {s.name for s in specs}
    if resources is None and names & {"consistency", "sphere"}:
        raise TfaugError(f"strategy {strategy.name!r} filters with a classifier or encoder but no resources were given")
    built = build_filters(specs, probabilities_fn=resources.probabilities_fn() if "consistency" in names else None,
                          encode_fn=resources.encode_fn() if "sphere" in names else None,
                          reference=x_real if "near-duplicate" in names else None)
    for f in built:
        f.fit(x_real, y_real)
    return built


def _sample(generator, labels: np.ndarray, seeds: np.ndarray, shape) -> np.ndarray:
    if len(labels) == 0:
        return np.zeros((0, *shape), np.float32)
    parts = [np.asarray(generator.sample(labels[i:i + _CHUNK], seeds[i:i + _CHUNK]), np.float32)
             for i in range(0, len(labels), _CHUNK)]
    return np.concatenate(parts)


def _generate(generator, counts: dict, filters: list, seed: int, shape) -> tuple[np.ndarray, np.ndarray, int]:
    """``counts[c]`` generated images per class (fewer if filters keep too few); returns (x, y int32, n_rejected)."""
    shape = tuple(shape) if shape is not None else tuple(generator.image_shape)
    used = {c: 0 for c in counts}
    kept = {c: [] for c in counts}
    rejected = 0
    for r in range(ROUNDS if filters else 1):
        need = {c: n - sum(len(k) for k in kept[c]) for c, n in counts.items()}
        ask = {c: (int(np.ceil(OVERSAMPLE * m)) if filters else m) for c, m in need.items() if m > 0}
        if not ask:
            break
        labels = np.concatenate([np.full(n, c, np.int32) for c, n in ask.items()])
        seeds = np.concatenate([int(seed) + CLASS_SEED_STRIDE * c + used[c] + np.arange(n, dtype=np.int64)
                                for c, n in ask.items()])
        for c, n in ask.items():
            used[c] += n
        x = _sample(generator, labels, seeds, shape)
        if filters:
            fx, fy, _ = apply_filters(filters, x, labels)
            rejected += len(x) - len(fx)
            x, labels = fx, fy.astype(np.int32)
        for c in ask:
            kept[c].append(x[labels == c][: need[c]])
    xs = [k for c in sorted(kept) for k in kept[c]]
    ys = [np.full(len(k), c, np.int32) for c in sorted(kept) for k in kept[c]]
    if not xs:
        return np.zeros((0, *shape), np.float32), np.zeros(0, np.int32), rejected
    return np.concatenate(xs), np.concatenate(ys), rejected


def build_study_mix(strategy: Strategy, *, setting: Setting, x_real, y_real, idx_real, num_classes: int,
                    pool_x=None, pool_y=None, pool_idx=None, resources: Resources | None = None,
                    filters: dict | None = None, seed: int = 0) -> StudyMix:
    """Build the training set of ``strategy`` for one cell (see the module docstring for the count rules).

    Args:
        strategy: a parsed strategy without ``method`` (S3 classifiers need no mix).
        setting: the cell's setting.
        x_real: the real training draw, uint8 [0, 255] or float32 [-1, 1] [N, H, W, C] (N may be 0 in a grid).
        y_real: int [N] their labels in [0, num_classes).
        idx_real: int [N] their dataset indices (the groups of real rows and their duplicates).
        num_classes: K.
        pool_x, pool_y, pool_idx: the real pool (images, labels, dataset indices) for ``extra-real``.
        resources: the cell's generator / judge / encoder (needed by generative strategies and some filters).
        filters: the study's named filter specs ``{NAME: SPEC}``.
        seed: seed of duplication, extra-real draws and generation.

    Returns:
        A :class:`StudyMix`.

    Raises:
        TfaugError: a method strategy, mismatched inputs, or a generator needed without ``resources``.
    """
    if strategy.method:
        raise TfaugError(f"strategy {strategy.name!r} is a classifier of its own and builds no training mix")
    x = as_float_images(x_real)
    y = np.asarray(y_real, np.int32).reshape(-1)
    idx = np.asarray(idx_real, np.int64).reshape(-1)
    if not len(x) == len(y) == len(idx):
        raise TfaugError(f"the real draw has {len(x)} images, {len(y)} labels and {len(idx)} indices; give one each")
    counts = synthetic_counts(strategy, setting, y, num_classes)
    generator = None
    if strategy.generator and sum(counts.values()) > 0:
        if resources is None:
            raise TfaugError(f"strategy {strategy.name!r} needs a generator but no resources were given")
        generator = resources.generator(strategy.generator)
    if x.ndim != 4:  # an empty draw given without its image shape (grid real=0)
        if generator is None:
            raise TfaugError("the real draw must be images [N, H, W, C]; got an array of shape " + str(x.shape))
        x = np.zeros((0, *generator.image_shape), np.float32)

    dup = _duplicates(strategy, setting, y, seed)
    parts_x, parts_y, parts_g = [x, x[dup]], [y, y[dup]], [idx, idx[dup]]
    if strategy.extra_real:
        rows, pidx = _extra_real(counts, pool_x, pool_y, pool_idx, idx, seed)
        if len(rows):
            parts_x.append(as_float_images(np.asarray(pool_x)[rows]))
            parts_y.append(np.asarray(pool_y, np.int32).reshape(-1)[rows])
            parts_g.append(pidx[rows])
    real_x = np.concatenate(parts_x).astype(np.float32, copy=False)
    real_y, real_g = np.concatenate(parts_y).astype(np.int32), np.concatenate(parts_g).astype(np.int64)
    n_extra = len(real_y) - len(y) - len(dup)

    gen_x, gen_y, rejected = np.zeros((0, *x.shape[1:]), np.float32), np.zeros(0, np.int32), 0
    if generator is not None:
        flt = _filters(strategy, filters, resources, x, y)
        gen_x, gen_y, rejected = _generate(generator, counts, flt, seed, x.shape[1:])
    n_syn = len(gen_y)
    gen_g = -1 - np.arange(n_syn, dtype=np.int64)

    common = dict(augment=strategy.augment, n_duplicates=len(dup), n_extra_real=n_extra, n_synthetic=n_syn,
                  n_rejected=rejected, source_flag=strategy.source_flag)
    if strategy.synthetic_only:
        return StudyMix(images=gen_x, labels=gen_y, groups=gen_g, synthetic=np.ones(n_syn, bool), pretrain=None,
                        n_real=0, **{**common, "n_duplicates": 0, "n_extra_real": 0})
    if strategy.curriculum:
        return StudyMix(images=real_x, labels=real_y, groups=real_g, synthetic=np.zeros(len(real_y), bool),
                        pretrain=(gen_x, gen_y), n_real=len(y), **common)
    if strategy.source_flag:
        real_x, gen_x = add_flag(real_x, 0.0), add_flag(gen_x, 1.0)
    return StudyMix(images=np.concatenate([real_x, gen_x]), labels=np.concatenate([real_y, gen_y]),
                    groups=np.concatenate([real_g, gen_g]),
                    synthetic=np.concatenate([np.zeros(len(real_y), bool), np.ones(n_syn, bool)]),
                    pretrain=None, n_real=len(y), **common)
