"""The training mix of a strategy: count rules, the draw, the state blocks build on, and the assembly.

:func:`build` turns a :class:`~tfaug.synthesis.strategies.base.Strategy` and a real :class:`Draw` into a
:class:`TrainingMix`: the generator is fetched from the resources when the count rule asks for generated images,
then the strategy's blocks run their stages in order on a :class:`MixState` (bootstrap, extra-real, generation,
then blocks of their own), and the first block with a ``finish`` that returns a mix assembles it (synthetic-only,
curriculum, source-flag); otherwise real rows and generated rows are concatenated. Numpy only at import.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tfaug.errors import TfaugError
from tfaug.synthesis.counts import generated_counts, round_half_up
from tfaug.synthesis.strategies.base import Resources, Strategy
from tfaug.utils.images import as_float_images

__all__ = ["Counts", "Draw", "MixState", "TrainingMix", "add_flag", "build", "common",
           "generated_groups", "synthetic_counts"]


@dataclass(frozen=True)
class Counts:
    """What the setting says about counts: ``kind`` ``per_class``, ``imbalance`` or ``grid``; ``synthetic`` = the
    grid's total of generated (or extra real) images, >= 0 (grid only). A study ``Setting`` has both attributes."""

    kind: str = "per_class"
    synthetic: int | None = None

    @staticmethod
    def of(setting) -> "Counts":
        return Counts(kind=setting.kind, synthetic=getattr(setting, "synthetic", None))


@dataclass
class Draw:
    """The real images a mix starts from.

    Attributes:
        x: uint8 [0, 255] or float32 [-1, 1] [N, H, W, C] (N may be 0 in a grid).
        y: int [N] labels in [0, num_classes).
        idx: int [N] dataset indices (the groups of real rows and their duplicates); None = 0..N-1.
        num_classes: K >= 1.
        seed: seed of duplication, extra-real draws and generation.
        pool_x, pool_y, pool_idx: the unused real pool (``extra-real``); None = no pool.
    """

    x: object
    y: object
    num_classes: int
    idx: object = None
    seed: int = 0
    pool_x: object = None
    pool_y: object = None
    pool_idx: object = None


@dataclass
class TrainingMix:
    """One training set.

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
        train_options: how the classifier trains on the mix (``Strategy.train_options``; empty: plainly).
        targets: float32 [M, K] per-row training targets (rows >= 0 summing to 1: one-hot on real rows, the teacher's
            soft targets on generated rows; ``soft``), or None: one-hot labels.
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
    train_options: dict = field(default_factory=dict)
    targets: np.ndarray | None = None

    def counts(self) -> dict:
        """``n_real``, ``n_duplicates``, ``n_extra_real``, ``n_synthetic``, ``n_rejected`` as ints (result rows)."""
        return {k: int(getattr(self, k)) for k in ("n_real", "n_duplicates", "n_extra_real", "n_synthetic",
                                                   "n_rejected")}


def _even(total: int, num_classes: int) -> dict[int, int]:
    base, rest = divmod(int(total), num_classes)
    return {c: base + (c < rest) for c in range(num_classes)}


def synthetic_counts(strategy: Strategy, counts, y_real, num_classes: int) -> dict[int, int]:
    """Generated (or, for ``extra-real``, additional real) images per class, by the package's count rules.

    Args:
        strategy: the parsed strategy (its ratio, flags).
        counts: the setting's :class:`Counts` (regime; the grid's synthetic total); None = per_class.
        y_real: int [N] labels of the real draw.
        num_classes: K >= 1.

    Returns:
        ``{class_id: count >= 0}`` for every class in [0, K); all zeros when the strategy adds nothing.
    """
    counts = counts or Counts()
    if num_classes < 1:
        raise TfaugError(f"num_classes must be >= 1, got {num_classes}")
    zero = {c: 0 for c in range(num_classes)}
    if not (strategy.generator or strategy.extra_real):
        return zero
    if counts.kind == "grid":
        return _even(counts.synthetic or 0, num_classes)
    have = np.bincount(np.asarray(y_real, np.int64).reshape(-1), minlength=num_classes)[:num_classes]
    if strategy.synthetic_only:
        base = np.full(num_classes, have.max()) if counts.kind == "imbalance" else have
        ratio = strategy.ratio if strategy.ratio_given else 1.0
        return {c: round_half_up(ratio * int(base[c])) for c in range(num_classes)}
    # the rule train-classifier and `tfaug fill` share: top an imbalanced draw up to its majority, else ratio x n_c
    top_up = counts.kind == "imbalance" and not strategy.ratio_given
    return dict(enumerate(generated_counts(have.tolist(), ratio=None if top_up else strategy.ratio, top_up=top_up)))


def add_flag(images: np.ndarray, flag: float) -> np.ndarray:
    """Append a constant channel: float32 [N, H, W, C] -> [N, H, W, C + 1] with the last channel ``flag`` (0 real,
    1 generated; test images get 0)."""
    x = np.asarray(images, np.float32)
    return np.concatenate([x, np.full((*x.shape[:-1], 1), flag, np.float32)], axis=-1)


@dataclass
class MixState:
    """The mix while blocks build it. ``x``/``y``/``idx``: the real draw (float32, int32, int64); ``real``: lists of
    (images, labels, groups) parts (the draw first); ``generated``: (images, labels) of generated rows;
    ``per_class``: the count rule's ``{class: n}``; ``generator``: the draw's generator or None;
    ``generated_targets``: float32 [G, K] soft targets of the generated rows (``soft``), or None."""

    draw: Draw
    counts: Counts
    resources: object
    x: np.ndarray
    y: np.ndarray
    idx: np.ndarray
    per_class: dict
    generator: object
    real: list
    generated: tuple
    n_duplicates: int = 0
    n_extra_real: int = 0
    n_rejected: int = 0
    generated_targets: np.ndarray | None = None

    def real_part(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The real rows so far: float32 images, int32 labels, int64 groups."""
        xs, ys, gs = zip(*self.real)
        return (np.concatenate(xs).astype(np.float32, copy=False), np.concatenate(ys).astype(np.int32),
                np.concatenate(gs).astype(np.int64))


def build(strategy: Strategy, draw: Draw, counts=None, resources: Resources | None = None) -> TrainingMix:
    """Build the training set of ``strategy`` from ``draw`` (count rules: ``tfaug.synthesis.strategies``).

    Args:
        strategy: a parsed strategy without ``method`` (S3 classifiers need no mix).
        draw: the real images (and, for ``extra-real``, the pool).
        counts: the setting's :class:`Counts` (or anything with ``kind`` and ``synthetic``); None = per_class.
        resources: the draw's generator / judge / encoder / teacher (needed by generative strategies, some filters
            and blocks that declare a teacher).

    Raises:
        TfaugError: a method strategy, mismatched inputs, or a generator needed without ``resources``.
    """
    if strategy.method:
        raise TfaugError(f"strategy {strategy.name!r} is a classifier of its own and builds no training mix")
    counts = counts or Counts()
    x = as_float_images(draw.x)
    y = np.asarray(draw.y, np.int32).reshape(-1)
    idx = np.arange(len(y), dtype=np.int64) if draw.idx is None else np.asarray(draw.idx, np.int64).reshape(-1)
    if not len(x) == len(y) == len(idx):
        raise TfaugError(f"the real draw has {len(x)} images, {len(y)} labels and {len(idx)} indices; give one each")
    per_class = synthetic_counts(strategy, counts, y, draw.num_classes)
    generator = None
    if strategy.generator and sum(per_class.values()) > 0:
        if resources is None:
            raise TfaugError(f"strategy {strategy.name!r} needs a generator but no resources were given")
        generator = resources.generator(strategy.generator)
    if x.ndim != 4:  # an empty draw given without its image shape (grid real=0)
        if generator is None:
            raise TfaugError("the real draw must be images [N, H, W, C]; got an array of shape " + str(x.shape))
        x = np.zeros((0, *generator.image_shape), np.float32)
    state = MixState(draw=draw, counts=counts, resources=resources, x=x, y=y, idx=idx, per_class=per_class,
                     generator=generator, real=[(x, y, idx)],
                     generated=(np.zeros((0, *x.shape[1:]), np.float32), np.zeros(0, np.int32)))
    present = strategy._blocks()
    stages = {b.stage: b.order for b in present if b.stage is not None}  # a family's stage runs once
    for stage in sorted(stages, key=stages.get):
        stage(strategy, state)
    for finish in dict.fromkeys(b.finish for b in present if b.finish is not None):
        mix = finish(strategy, state)
        if mix is not None:
            return _with_targets(mix, state)
    real_x, real_y, real_g = state.real_part()
    gen_x, gen_y = state.generated
    return _with_targets(TrainingMix(images=np.concatenate([real_x, gen_x]), labels=np.concatenate([real_y, gen_y]),
                       groups=np.concatenate([real_g, generated_groups(len(gen_y))]),
                       synthetic=np.concatenate([np.zeros(len(real_y), bool), np.ones(len(gen_y), bool)]),
                       **common(strategy, state)), state)


def _with_targets(mix: TrainingMix, state: MixState) -> TrainingMix:
    """Set ``mix.targets`` (one-hot rows, generated rows in generation order from the state's soft targets)."""
    soft = state.generated_targets
    if soft is None or mix.pretrain is not None:
        return mix
    if int(mix.synthetic.sum()) != len(soft):
        raise TfaugError(f"the mix holds {int(mix.synthetic.sum())} generated rows but {len(soft)} soft targets")
    targets = np.eye(state.draw.num_classes, dtype=np.float32)[mix.labels]
    targets[mix.synthetic] = soft
    mix.targets = targets
    return mix


def generated_groups(n: int) -> np.ndarray:
    """Groups of ``n`` generated rows: -1, -2, ... (each its own group, never a dataset index)."""
    return -1 - np.arange(n, dtype=np.int64)


def common(strategy: Strategy, state: MixState) -> dict:
    """The TrainingMix fields shared by every assembly (augment, counts, flag)."""
    return dict(augment=strategy.augment, train_options=dict(strategy.train_options), pretrain=None,
                n_real=len(state.y), n_duplicates=state.n_duplicates,
                n_extra_real=state.n_extra_real, n_synthetic=len(state.generated[1]), n_rejected=state.n_rejected,
                source_flag=strategy.source_flag)
