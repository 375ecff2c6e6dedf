"""Leakage-safe splits of one study cell: the real test set, the training draw, the pool and the generator's data.

Order of operations (the issue's leakage rules):

1. The real test set is held out first, from the WHOLE dataset, with the study seed ``cfg.seed``: ``test.per_class``
   images of every class or ``test.fraction`` of each class (``tfaug.data.subsets.stratified_split``). It is the same
   in every repeat and setting. With ``test.large_per_class`` M, M per class are held out (``test_large``) and
   ``test`` is the first N of each class's held-out images (a fixed subset: the same seeded per-class order).
2. The training draw comes from what remains, with the repeat seed ``cfg.seed + repeat``. Every (repeat, class) has
   one permutation of its remaining images and every regime takes a prefix of it, so the draws of one repeat nest:
   k=1 is a subset of k=5, keep=0.25 of keep=0.5, and every grid ``real`` draw of the draw of the largest ``real``.

   - ``per_class``: k images of every class.
   - ``imbalance``: every class keeps its base draw (``per_class`` K, else everything that remains); each minority
     class keeps ``keep`` of it (``keep <= 1`` a fraction, rounded half up and at least 1; ``keep > 1`` a count).
     With ``profile: exponential`` class c keeps ``tfaug.data.subsets.exponential_counts(n_max, K, ratio)[c]``, n_max
     = ``per_class`` K, else the smallest number any class has left after the test set.
   - ``grid``: ``real`` images in total spread as evenly as possible over the classes (the remainder goes to the
     lowest class ids); ``real`` may be 0.
3. ``pool`` is every real image in neither the training draw nor any test set (extra-real controls draw from it).
4. ``generator_train`` is what the cell's generator may train on: the training draw, except in the grid regime where
   one generator per repeat serves every setting and trains on the draw of the grid's largest ``real``.

Labels here are the study's labels: after :func:`relabel` when the study is one-vs-rest (original labels are accepted
too and relabelled on the fly when they are not binary yet). Numpy only, no TensorFlow.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tfaug.data.subsets import exponential_counts, stratified_split
from tfaug.errors import TfaugError
from tfaug.studies.config import Setting, StudyConfig

__all__ = ["CellSplit", "relabel", "check_feasible", "cell_split", "class_quota"]


@dataclass(frozen=True)
class CellSplit:
    """Indices into the whole dataset for one (setting, repeat); all int64.

    Attributes:
        train: sorted, the cell's real training draw.
        test: sorted, the published-size real test set (the same in every repeat and setting).
        test_large: sorted superset of ``test`` when the study asks for ``large_per_class``, else None.
        pool: sorted, real images in neither ``train`` nor any test set.
        generator_train: sorted, what this cell's generator may train on (``train``; in the grid regime the repeat's
            draw of the largest ``real``, of which ``train`` is a subset).
        validation: sorted, ``test.validation_per_class`` real images per class held out after the test set (the
            same in every repeat and setting; in neither ``train``, ``pool`` nor a test set), else None.
    """

    train: np.ndarray
    test: np.ndarray
    test_large: np.ndarray | None
    pool: np.ndarray
    generator_train: np.ndarray
    validation: np.ndarray | None = None

    def to_dict(self) -> dict:
        """Plain index lists (for ``OUT/splits/*.json``)."""
        return {"train": self.train.tolist(), "test": self.test.tolist(),
                "test_large": None if self.test_large is None else self.test_large.tolist(),
                "pool": self.pool.tolist(), "generator_train": self.generator_train.tolist(),
                **({} if self.validation is None else {"validation": self.validation.tolist()})}


def relabel(labels, class_names: Sequence[str] | None, one_vs_rest: int | None) -> tuple[np.ndarray, list[str]]:
    """Binary labels for a one-vs-rest study: class C -> 1 (named after C), every other class -> 0 ("rest").

    Args:
        labels: int [N] class ids in [0, K).
        class_names: the K class names (None: ``"0" .. "K-1"`` with K = max label + 1).
        one_vs_rest: C in [0, K), or None to keep the labels as they are.

    Returns:
        ``(labels int32 [N], class_names)``; with C: values in {0, 1} and names ``["rest", name of C]``.

    Raises:
        TfaugError: C is not a class id of the dataset.
    """
    y = np.asarray(labels).reshape(-1).astype(np.int32)
    k = len(class_names) if class_names is not None else (int(y.max()) + 1 if y.size else 0)
    names = [str(n) for n in class_names] if class_names is not None else [str(c) for c in range(k)]
    if one_vs_rest is None:
        return y, names
    if not 0 <= int(one_vs_rest) < k:
        raise TfaugError(f"dataset.one_vs_rest {one_vs_rest} is not a class of the dataset; choose a class id in "
                         f"0..{k - 1}")
    return (y == int(one_vs_rest)).astype(np.int32), ["rest", names[int(one_vs_rest)]]


def _study_labels(cfg: StudyConfig, labels) -> np.ndarray:
    """int64 labels as the study sees them (relabelled when one-vs-rest labels are not binary yet)."""
    y = np.asarray(labels).reshape(-1)
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0):
        raise TfaugError("dataset labels must be non-negative integer class ids")
    if cfg.one_vs_rest is not None and y.size and y.max() > 1:
        y = relabel(y, None, cfg.one_vs_rest)[0]
    return y.astype(np.int64)


def _name(c: int, class_names) -> str:
    return str(class_names[c]) if class_names is not None and c < len(class_names) else str(c)


def _held_out(cfg: StudyConfig, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """(test, test_large or None, remaining): the study-seeded real test split of the whole dataset."""
    t = cfg.test
    if "fraction" in t:
        remaining, _, test = stratified_split(y, test=float(t["fraction"]), seed=cfg.seed)
        return np.sort(test), None, np.sort(remaining)
    _, _, test = stratified_split(y, test=int(t["per_class"]), seed=cfg.seed)
    large = None
    if "large_per_class" in t:
        # same seed: each class's held-out order is one permutation, so the N-prefix is inside the M-prefix
        remaining, _, large = stratified_split(y, test=int(t["large_per_class"]), seed=cfg.seed)
        large = np.sort(large)
    else:
        remaining = np.setdiff1d(np.arange(len(y)), test)
    return np.sort(test), large, np.sort(remaining)


def _test_need(cfg: StudyConfig, n: int) -> int:
    """Images of a class of ``n`` that the test set(s) and the validation set take."""
    t = cfg.test
    val = int(t.get("validation_per_class", 0))
    if "fraction" in t:
        return min(int(np.floor(t["fraction"] * n + 0.5)), n - 1) + val  # fractions are soft (stratified_split)
    return int(t.get("large_per_class", t["per_class"])) + val


def _validation(cfg: StudyConfig, y: np.ndarray, remaining: np.ndarray, k: int) -> tuple:
    """(validation or None, remaining without it): ``test.validation_per_class`` images of each class, seeded by
    the study seed only (the same set in every repeat), taken from what the test set left."""
    n = int(cfg.test.get("validation_per_class", 0))
    if not n:
        return None, remaining
    parts = [np.random.default_rng([int(cfg.seed), c, 1]).permutation(remaining[y[remaining] == c])[:n]
             for c in range(k)]
    validation = np.sort(np.concatenate(parts).astype(np.int64))
    return validation, np.setdiff1d(remaining, validation)


def class_quota(setting: Setting, num_classes: int, available: Sequence[int]) -> list[int]:
    """Training images each class takes in ``setting`` (class c may have ``available[c]`` after the test set).

    per_class: k each; imbalance: base (k or all) with each minority class cut to ``keep``, or the exponential
    profile from n_max = k (else the smallest ``available``); grid: ``real`` spread evenly, remainder to the lowest
    class ids. Numbers larger than ``available`` are returned as they are (:func:`check_feasible` reports them).
    """
    if setting.kind == "imbalance" and setting.profile == "exponential":
        n_max = int(setting.per_class) if setting.per_class else max(1, min(int(a) for a in available))
        return exponential_counts(n_max, num_classes, float(setting.ratio))
    if setting.kind == "grid":
        base, rest = divmod(int(setting.real or 0), num_classes)
        return [base + (c < rest) for c in range(num_classes)]
    if setting.kind == "per_class":
        return [int(setting.per_class)] * num_classes
    quota = [int(setting.per_class) if setting.per_class else int(a) for a in available]
    for c in setting.minority:
        if 0 <= c < num_classes:
            keep = float(setting.keep)
            quota[c] = max(1, int(np.floor(keep * quota[c] + 0.5))) if keep <= 1 else int(keep)
    return quota


def _what(setting: Setting, c: int, need: int) -> str:
    if setting.kind == "per_class":
        return f"k={need}"
    if setting.kind == "grid":
        return f"real={setting.real} ({need} per class)"
    if c in setting.minority and setting.keep > 1:
        return f"keep={setting.keep:g}"
    return f"per_class={setting.per_class}"


def check_feasible(cfg: StudyConfig, labels, class_names: Sequence[str] | None = None) -> None:
    """Raise one TfaugError sentence if some setting of ``cfg`` cannot be drawn from ``labels``; run it before training.

    Checks: one_vs_rest is a class id; every class has images; every class can give its test images and keep one
    training image; every draw (k, imbalance base or count, grid real per class) fits in what a class has left after
    the test set; minority ids are classes; a grid has some real > 0 (its generator trains on the largest draw).

    Args:
        cfg: the study.
        labels: int [N] labels of the whole dataset (study labels, or original ones for a one-vs-rest study).
        class_names: optional names used in messages; their count also fixes the number of classes K.
    """
    y = np.asarray(labels).reshape(-1)
    if y.size == 0:
        raise TfaugError("the dataset has no images; check the dataset spec")
    if cfg.one_vs_rest is not None:
        k_orig = len(class_names) if class_names is not None else int(np.max(y)) + 1
        if y.max() > 1 and not 0 <= cfg.one_vs_rest < k_orig:
            raise TfaugError(f"dataset.one_vs_rest {cfg.one_vs_rest} is not a class of the dataset; choose a class "
                             f"id in 0..{k_orig - 1}")
        if y.max() > 1:
            y, class_names = relabel(y, class_names, cfg.one_vs_rest)
    y = _study_labels(cfg, y)
    k = max(len(class_names) if class_names is not None else 0, int(y.max()) + 1)
    counts = np.bincount(y, minlength=k)
    for c in range(k):
        if counts[c] == 0:
            raise TfaugError(f"class '{_name(c, class_names)}' has no images; remove it or use another dataset")
    for c in range(k):
        need = _test_need(cfg, int(counts[c]))
        if need > counts[c] - 1:
            what = "test and validation" if cfg.test.get("validation_per_class") else "test"
            raise TfaugError(f"class '{_name(c, class_names)}' has {counts[c]} images, too few for {need} {what} "
                             "images and 1 training image; lower test.per_class (or large_per_class, "
                             "validation_per_class)")
    available = [int(counts[c]) - _test_need(cfg, int(counts[c])) for c in range(k)]
    settings = list(cfg.settings)
    if settings and settings[0].kind == "grid":
        top = max(int(s.real or 0) for s in settings)
        if top == 0:
            raise TfaugError("every grid.real is 0, so no real images exist to train the generator on; "
                             "add a real count > 0 to the grid")
        settings = [max(settings, key=lambda s: int(s.real or 0))]
    for s in settings:
        for c in s.minority:
            if not 0 <= c < k:
                raise TfaugError(f"imbalance.minority {c} is not a class id; the study has classes 0..{k - 1}")
        if s.kind == "imbalance" and s.per_class:
            for c in range(k):
                if s.per_class > available[c]:
                    raise TfaugError(f"per_class={s.per_class} needs {s.per_class} images of class "
                                     f"'{_name(c, class_names)}' but only {available[c]} remain after the test set")
        for c, need in enumerate(class_quota(s, k, available)):
            if need > available[c]:
                raise TfaugError(f"{_what(s, c, need)} needs {need} images of class '{_name(c, class_names)}' "
                                 f"but only {available[c]} remain after the test set")


def _permutations(y: np.ndarray, remaining: np.ndarray, seed: int, k: int) -> list[np.ndarray]:
    """Per class, one seeded permutation of its remaining images (keyed by (seed, class): classes independent)."""
    return [np.random.default_rng([int(seed), c]).permutation(remaining[y[remaining] == c]) for c in range(k)]


def _draw(perms: list[np.ndarray], quota: list[int]) -> np.ndarray:
    parts = [p[:q] for p, q in zip(perms, quota)]
    return np.sort(np.concatenate(parts).astype(np.int64)) if parts else np.zeros(0, np.int64)


def cell_split(cfg: StudyConfig, labels, setting: Setting, repeat: int) -> CellSplit:
    """The leakage-safe split of one (setting, repeat); see the module docstring for the rules.

    Args:
        cfg: the study (test spec, seed, the grid's settings).
        labels: int [N] labels of the whole dataset (study labels; original ones are relabelled for one-vs-rest).
        setting: one of ``cfg.settings``.
        repeat: repeat number >= 0 (draw seed ``cfg.seed + repeat``).

    Returns:
        A :class:`CellSplit` of sorted int64 dataset indices.

    Raises:
        TfaugError: the setting cannot be drawn (the :func:`check_feasible` sentence).
    """
    check_feasible(cfg, labels)
    y = _study_labels(cfg, labels)
    k = int(y.max()) + 1
    test, large, remaining = _held_out(cfg, y)
    validation, remaining = _validation(cfg, y, remaining, k)
    perms = _permutations(y, remaining, cfg.seed + int(repeat), k)
    available = [len(p) for p in perms]
    train = _draw(perms, class_quota(setting, k, available))
    generator_train = train
    if setting.kind == "grid":
        top = max((s for s in cfg.settings if s.kind == "grid"), key=lambda s: int(s.real or 0))
        generator_train = _draw(perms, class_quota(top, k, available))
    pool = np.setdiff1d(remaining, train).astype(np.int64)
    return CellSplit(train=train, test=test.astype(np.int64), test_large=large, pool=pool,
                     generator_train=generator_train, validation=validation)
