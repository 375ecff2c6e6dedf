"""Index subsets of a labelled dataset: k-shot draws, induced imbalance (minority/keep and the exponential long-tail
profile) and stratified (group-aware) splits.

Every draw takes integer class labels [N] and returns sorted int64 index arrays into them, so the same
indices select images, labels and any side information (``exponential_counts`` only computes the long-tail
profile's per-class counts). Results depend only on the labels and ``seed``
(numpy ``default_rng``). Each class draws from its own generator keyed by ``(seed, class)``, so one class's
draw does not change when another class changes, and a k-shot draw is nested in any larger one with the
same seed (the 5-per-class images are the first 5 of the 10-per-class images).

Draws take optional ``synthetic`` flags (bool [N], e.g. ``Dataset.synthetic`` of a dataset topped up by
``tfaug fill``): a class then draws its real images first (in their seeded random order) and its synthetic images
only after every real one; without flags (or with none set) the draws are exactly the unflagged ones.
"""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np

from tfaug.errors import TfaugError


def _as_labels(labels) -> np.ndarray:
    """Validate class labels: a 1-D array of non-negative integers -> int64 [N]."""
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise TfaugError(f"labels must be a 1-D array of class ids, got shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.rint(y))):
            raise TfaugError(f"labels must be integer class ids, got {y.dtype}")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise TfaugError(f"labels must be class ids >= 0, found {y.min()}")
    return y


def _class_rng(seed: int, c: int) -> np.random.Generator:
    """The generator for class ``c``: independent of every other class, fixed by ``seed``."""
    return np.random.default_rng([int(seed), int(c)])


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_float(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, numbers.Integral))


def _as_flags(synthetic, n: int) -> np.ndarray:
    """bool [n] synthetic flags (all False for None)."""
    if synthetic is None:
        return np.zeros(n, bool)
    flags = np.asarray(synthetic).reshape(-1)
    if len(flags) != n:
        raise TfaugError(f"synthetic flags must be {n} booleans, one per label, got {len(flags)}")
    return flags.astype(bool)


def _real_first(rng: np.random.Generator, idx: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """``idx`` in draw order: its real indices permuted, then its synthetic ones permuted (same rng)."""
    syn = flags[idx]
    return np.concatenate([rng.permutation(idx[~syn]), rng.permutation(idx[syn])])


def _sorted(parts) -> np.ndarray:
    parts = [np.asarray(p, np.int64) for p in parts]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def per_class_subset(labels, k: int, seed: int = 0, num_classes: int | None = None, synthetic=None) -> np.ndarray:
    """Exactly ``k`` images of every class, drawn without replacement.

    Args:
        labels: int [N] class ids in [0, K).
        k: images per class, >= 1.
        seed: draw seed (>= 0); same seed and labels give the same indices.
        num_classes: K; defaults to ``max(labels) + 1``. Every class in [0, K) must have >= k images.
        synthetic: optional bool [N]; a class's real images are drawn before any of its synthetic ones.

    Returns:
        Sorted int64 [K * k] indices into ``labels``.

    Raises:
        TfaugError: k < 1, or a class has fewer than k images.
    """
    y = _as_labels(labels)
    flags = _as_flags(synthetic, len(y))
    if not _is_int(k) or k < 1:
        raise TfaugError(f"images per class must be an integer >= 1, got {k!r}")
    K = int(num_classes) if num_classes is not None else int(y.max()) + 1 if y.size else 0
    if K < 1:
        raise TfaugError("cannot draw images per class from an empty label set; load a non-empty dataset")
    parts = []
    for c in range(K):
        idx = np.flatnonzero(y == c)
        if len(idx) < k:
            raise TfaugError(f"class {c} has only {len(idx)} images, fewer than the {k} per class requested")
        parts.append(_real_first(_class_rng(seed, c), idx, flags)[:k])
    return _sorted(parts)


def imbalance_subset(labels, minority, keep, seed: int = 0, synthetic=None) -> np.ndarray:
    """Induce imbalance: keep only part of each minority class, all of every other class.

    Args:
        labels: int [N] class ids.
        minority: a class id or a sequence of class ids, each present in ``labels``.
        keep: a float in (0, 1] = fraction of each minority class kept (rounded half up, at least 1 image),
            or an int >= 1 = number of images kept per minority class.
        seed: draw seed (>= 0).
        synthetic: optional bool [N]; a minority class keeps its real images before any of its synthetic ones.

    Returns:
        Sorted int64 indices into ``labels``.

    Raises:
        TfaugError: unknown class id, keep out of range, or keep larger than a minority class.
    """
    y = _as_labels(labels)
    flags = _as_flags(synthetic, len(y))
    classes = np.atleast_1d(np.asarray(minority)).reshape(-1)
    if classes.size == 0 or not all(_is_int(c) for c in classes.tolist()):
        raise TfaugError(f"minority must be a class id or a list of class ids, got {minority!r}")
    present = np.unique(y)
    for c in classes.tolist():
        if c not in present:
            raise TfaugError(f"minority class {c} has no images; choose among the classes {present.tolist()}")
    if _is_float(keep) and not 0.0 < keep <= 1.0:
        raise TfaugError(f"keep fraction must be in (0, 1], got {keep}; or give a count >= 1")
    if not (_is_float(keep) or (_is_int(keep) and keep >= 1)):
        raise TfaugError(f"keep must be a fraction in (0, 1] or an image count >= 1, got {keep!r}")
    minority_set = set(classes.tolist())
    parts = [np.flatnonzero(~np.isin(y, list(minority_set)))]
    for c in sorted(minority_set):
        idx = np.flatnonzero(y == c)
        n = max(1, int(np.floor(keep * len(idx) + 0.5))) if _is_float(keep) else int(keep)
        if n > len(idx):
            raise TfaugError(f"class {c} has only {len(idx)} images, fewer than the {n} to keep; lower keep")
        parts.append(_real_first(_class_rng(seed, c), idx, flags)[:n])
    return _sorted(parts)


def exponential_counts(n_max: int, num_classes: int, ratio: float) -> list[int]:
    """Per-class image counts of the exponential long-tail profile (CIFAR-10-LT; Cui et al., CVPR 2019).

    Class c keeps ``n_max * ratio ** (-c / (K - 1))`` images, rounded DOWN (as the reference code of Cui et al. 2019
    and Cao et al. 2019 does, ``int(...)``) and at least 1: class 0 is the head with ``n_max`` images, class K - 1 the
    tail with ``floor(n_max / ratio)``. CIFAR-10-LT (n_max 5000, ratio 100) gives 5000, 2997, 1796, 1077, 645, 387,
    232, 139, 83, 50.

    Args:
        n_max: images of the head class (class 0), >= 1.
        num_classes: K >= 2.
        ratio: imbalance ratio n_max / n_min, >= 1 (1 = balanced).

    Returns:
        K ints, non-increasing in the class id, each in [1, n_max].

    Raises:
        TfaugError: n_max < 1, K < 2 or ratio < 1 (or not a finite number).
    """
    if not _is_int(n_max) or n_max < 1:
        raise TfaugError(f"the head class count n_max must be an integer >= 1, got {n_max!r}")
    if not _is_int(num_classes) or num_classes < 2:
        raise TfaugError(f"the exponential profile needs at least 2 classes, got {num_classes!r}")
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not np.isfinite(ratio) or ratio < 1:
        raise TfaugError(f"the imbalance ratio must be a number >= 1 (n_max / n_min), got {ratio!r}")
    k = int(num_classes)
    # the tiny tolerance keeps exact products (5000 / 100 = 50) from flooring to 49 through float error
    raw = [int(n_max) * float(ratio) ** (-c / (k - 1)) for c in range(k)]
    return [max(1, min(int(n_max), int(np.floor(v + 1e-9)))) for v in raw]


def long_tail_subset(labels, ratio: float, n_max: int | None = None, seed: int = 0, num_classes: int | None = None,
                     synthetic=None) -> np.ndarray:
    """Draw an exponential long-tail subset: class c keeps :func:`exponential_counts` ``[c]`` images.

    Class 0 is the head and class K - 1 the tail (the class-id order, as in CIFAR-10-LT). Each class takes a prefix
    of its own seeded permutation, so a class's draw at ratio 100 is inside its draw at ratio 10 (same seed).

    Args:
        labels: int [N] class ids in [0, K).
        ratio: imbalance ratio >= 1 (head count / tail count).
        n_max: head class count >= 1; None takes the smallest class's size (so every class can give its count).
        seed: draw seed (>= 0).
        num_classes: K >= 2; defaults to ``max(labels) + 1``.
        synthetic: optional bool [N]; a class draws its real images before its synthetic ones.

    Returns:
        Sorted int64 indices into ``labels``.

    Raises:
        TfaugError: bad ratio/n_max, an empty class, or a class with fewer images than its count.
    """
    y = _as_labels(labels)
    flags = _as_flags(synthetic, len(y))
    K = int(num_classes) if num_classes is not None else int(y.max()) + 1 if y.size else 0
    sizes = np.bincount(y, minlength=K)[:K] if y.size else np.zeros(K, np.int64)
    if K >= 1 and sizes.min() == 0:
        raise TfaugError(f"class {int(np.argmin(sizes))} has no images; the long-tail profile needs every class")
    head = int(sizes.min()) if n_max is None and K else n_max
    counts = exponential_counts(head, K, ratio)
    parts = []
    for c, n in enumerate(counts):
        idx = np.flatnonzero(y == c)
        if n > len(idx):
            raise TfaugError(f"class {c} has only {len(idx)} images, fewer than the {n} the long-tail profile keeps; "
                             "lower n_max")
        parts.append(_real_first(_class_rng(seed, c), idx, flags)[:n])
    return _sorted(parts)


def _split_sizes(c: int, n: int, test, val) -> tuple[int, int]:
    """(test, val) image counts for a class of n images; counts are exact, fractions leave >= 1 training image."""
    sizes = []
    for name, v in (("test", test), ("val", val)):
        if _is_float(v):
            if not 0.0 <= v < 1.0:
                raise TfaugError(f"{name} fraction must be in [0, 1), got {v}; or give an image count per class")
            sizes.append(int(np.floor(v * n + 0.5)))
        elif _is_int(v) and v >= 0:
            sizes.append(int(v))
        else:
            raise TfaugError(f"{name} must be a fraction in [0, 1) or an image count >= 0, got {v!r}")
    n_test, n_val = sizes
    if n_test + n_val <= n - 1:
        return n_test, n_val
    if _is_int(test) and n_test or _is_int(val) and n_val:
        raise TfaugError(
            f"class {c} has only {n} images, too few for {n_test} test + {n_val} val images and 1 training image; "
            "lower test/val"
        )
    n_test = min(n_test, n - 1)  # fractions are soft: shrink val, then test, to keep one training image
    return n_test, min(n_val, n - 1 - n_test)


def stratified_split(
    labels, test, val=0, seed: int = 0, groups: Sequence[int] | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split every class into train / val / test, optionally keeping groups whole.

    Args:
        labels: int [N] class ids.
        test: per class, a float fraction in [0, 1) (rounded half up) or an int image count.
        val: same form as ``test``; 0 means no validation split.
        seed: split seed (>= 0).
        groups: optional int [N] group ids (e.g. the source image of each copy or augmentation). Whole groups
            go to one split, stratified by each group's majority label (ties: the smaller class id), so no
            group ever spans two splits; sizes then approximate the request at group granularity.

    Returns:
        (train, val, test): sorted, disjoint int64 index arrays that together cover every index.

    Raises:
        TfaugError: bad test/val, a class that cannot keep one training image, or malformed groups.
    """
    y = _as_labels(labels)
    if groups is None:
        g = np.arange(len(y))
    else:
        g = np.asarray(groups).reshape(-1)
        if len(g) != len(y) or (g.size and not np.issubdtype(g.dtype, np.integer)):
            raise TfaugError(f"groups must be {len(y)} integer ids, one per label, got {g.dtype} {g.shape}")
    _, inverse = np.unique(g, return_inverse=True)
    n_groups = int(inverse.max()) + 1 if y.size else 0
    sizes = np.bincount(inverse, minlength=n_groups)
    table = np.zeros((n_groups, int(y.max()) + 1 if y.size else 1), np.int64)
    np.add.at(table, (inverse, y), 1)
    major = table.argmax(axis=1)  # argmax picks the smaller class id on ties
    split_of_group = np.zeros(n_groups, np.int8)  # 0 train, 1 val, 2 test
    for c in np.unique(major).tolist():
        gids = _class_rng(seed, c).permutation(np.flatnonzero(major == c))
        n_test, n_val = _split_sizes(c, int(sizes[gids].sum()), test, val)
        cum = np.cumsum(sizes[gids])
        # the shortest prefix reaching n_test images goes to test, the next one reaching n_val more to val
        t = int(np.searchsorted(cum, n_test)) + 1 if n_test else 0
        v = int(np.searchsorted(cum, cum[t - 1] + n_val if t else n_val)) + 1 if n_val else t
        t, v = min(t, len(gids)), min(max(v, t), len(gids))
        if v >= len(gids):  # whole groups overshot: hand the last val (else test) group back to train
            if v > t:
                v -= 1
            else:
                t = v = t - 1
        split_of_group[gids[:t]] = 2
        split_of_group[gids[t:v]] = 1
    where = split_of_group[inverse]
    train, val_idx, test_idx = (np.flatnonzero(where == s).astype(np.int64) for s in (0, 1, 2))
    return train, val_idx, test_idx


def subset_draw(labels, per_class: int | None = None, minority=None, keep=None, seed: int = 0,
                synthetic=None) -> np.ndarray:
    """The CLI's training draw: first ``per_class`` images per class, then induced imbalance on that draw.

    Args:
        labels: int [N] class ids.
        per_class: k images per class (see :func:`per_class_subset`); None keeps every image.
        minority, keep: see :func:`imbalance_subset`; both or neither must be given.
        seed: draw seed (>= 0).
        synthetic: optional bool [N]: real images are drawn before synthetic ones within each class.

    Returns:
        Sorted int64 indices into ``labels`` (all of them when nothing is requested).
    """
    y = _as_labels(labels)
    flags = _as_flags(synthetic, len(y))
    if (minority is None) != (keep is None):
        raise TfaugError("give both minority classes and keep (a fraction or count), or neither")
    idx = np.arange(len(y), dtype=np.int64)
    if per_class is not None:
        idx = per_class_subset(y, per_class, seed=seed, synthetic=flags)
    if minority is not None:
        idx = idx[imbalance_subset(y[idx], minority, keep, seed=seed, synthetic=flags[idx])]
    return np.sort(idx)
