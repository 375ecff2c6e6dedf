"""The enrich protocol: what is held out as the test set, how candidates are validated, and the settings.

Test set first: before anything is trained, a stratified real test set is set aside (``test_fraction`` of every
class, rounded half up). It is only reachable through :class:`SealedTest`, whose single :meth:`SealedTest.read`
happens after the choice. When a class is too small to spare test images (fewer than ``MIN_TEST_PER_CLASS`` test
images or fewer than ``MIN_TRAIN_PER_CLASS`` training images would remain), there is no test set: the protocol is
``repeated-cv`` and the reported estimate is the chosen strategy's repeated validation on the training side (say so
in every output, because it is the same data the choice was made on).

Validation: repeat ``r`` splits the training side into a stratified validation part (``val_fraction`` per class,
at least one image) and the rest, with seed ``seed + 1000 + r``; every candidate of a repeat sees the same split
and classifier seed, so differences are paired.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from tfaug.config import FEWSHOT, ClassifierConfig, GANConfig, preset
from tfaug.errors import TfaugError

MIN_IMAGES = 3            # per class: 2 to train on and 1 to validate
MIN_TEST_PER_CLASS = 2    # a held-out test set needs this many images of every class ...
MIN_TRAIN_PER_CLASS = 4   # ... and must leave this many to train and validate on
SPLIT_SEED = 1000         # validation splits use seeds apart from the test split's


@dataclass(frozen=True)
class EnrichConfig:
    """Everything that decides an enrich run (recorded in ``protocol.json``; a resumed run must match).

    Attributes:
        classifier: the classifier every candidate trains (default ``classifier/fewshot``).
        gan: the generator config of generative candidates (default ``gan/digits``; its ``model`` is replaced by
            the candidate's zoo model).
        test_fraction: share of every class held out as the test set, in (0, 1).
        val_fraction: share of the training side used for validation in each repeat, in (0, 1).
        max_repeats: validation repeats per candidate, >= 1 (fewer when the budget runs out).
        min_repeats: repeats before a candidate may be stopped early, >= 2.
        strategies: candidate strategy texts in order, or empty for the data-driven default
            (:func:`tfaug.enrich.candidates.default_candidates`).
        min_per_class: images per class of the enriched dataset when a generator wins (>= 1), or 0 for twice the
            largest training class.
        seed: seed of the test split, the validation splits and every model (>= 0).
    """

    classifier: ClassifierConfig = FEWSHOT
    gan: GANConfig = field(default_factory=lambda: preset("gan/digits"))
    test_fraction: float = 0.3
    val_fraction: float = 0.25
    max_repeats: int = 10
    min_repeats: int = 3
    strategies: tuple = ()
    min_per_class: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.test_fraction < 1.0:
            raise TfaugError(f"--test-fraction must be in (0, 1), got {self.test_fraction}")
        if not 0.0 < self.val_fraction < 1.0:
            raise TfaugError(f"the validation fraction must be in (0, 1), got {self.val_fraction}")
        if self.max_repeats < 1 or self.min_repeats < 2:
            raise TfaugError("max_repeats must be >= 1 and min_repeats >= 2")
        if self.min_per_class < 0:
            raise TfaugError(f"--min-per-class must be >= 1, got {self.min_per_class}")


@dataclass
class Protocol:
    """The split of a dataset (indices into the loaded dataset's real images).

    Attributes:
        name: ``holdout`` (a real test set exists) or ``repeated-cv`` (classes too small: no test set).
        train: int64 indices of the training side (everything selection and final training may see).
        test: int64 indices of the test set (empty under ``repeated-cv``).
        reason: one sentence saying why ``repeated-cv`` was used (empty for ``holdout``).
        imbalanced: the training side's largest class has at least 1.5 times the images of its smallest.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    reason: str = ""
    imbalanced: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "train": self.train.tolist(), "test": self.test.tolist(), "reason": self.reason,
                "imbalanced": self.imbalanced}


def check_classes(labels: np.ndarray, class_names) -> None:
    """One clear sentence when a class has fewer than :data:`MIN_IMAGES` images."""
    counts = np.bincount(labels, minlength=len(class_names))
    small = [(class_names[c], int(n)) for c, n in enumerate(counts) if n < MIN_IMAGES]
    if small:
        name, n = small[0]
        more = f" (and {len(small) - 1} more classes)" if len(small) > 1 else ""
        raise TfaugError(f"class '{name}' has only {n} image{'s' if n != 1 else ''}{more}; enrich needs at least "
                         f"{MIN_IMAGES} real images per class (2 to train on and 1 to validate), so add images or "
                         "remove that class folder")


def make_protocol(labels, class_names, cfg: EnrichConfig) -> Protocol:
    """Hold out the stratified test set, or choose ``repeated-cv`` when a class cannot spare one.

    Args:
        labels: int [N] class ids of the real images, every class with >= :data:`MIN_IMAGES` images.
        class_names: K names.
        cfg: the run's settings (``test_fraction``, ``seed``).
    """
    from tfaug.data.subsets import stratified_split

    y = np.asarray(labels, np.int64)
    check_classes(y, list(class_names))
    counts = np.bincount(y, minlength=len(class_names))
    n_test = np.floor(cfg.test_fraction * counts + 0.5).astype(int)
    short = [c for c in range(len(counts)) if n_test[c] < MIN_TEST_PER_CLASS
             or counts[c] - n_test[c] < MIN_TRAIN_PER_CLASS]
    if short:
        c = short[0]
        reason = (f"class '{class_names[c]}' has only {int(counts[c])} images, too few to spare "
                  f"{MIN_TEST_PER_CLASS} for a test set and keep {MIN_TRAIN_PER_CLASS} to train on, so there is no "
                  "test set and the estimate is repeated validation on all images (the same data the choice was made "
                  "on: optimistic)")
        train, test = np.arange(len(y), dtype=np.int64), np.zeros(0, np.int64)
        name = "repeated-cv"
    else:
        train, _, test = stratified_split(y, test=float(cfg.test_fraction), seed=cfg.seed)
        reason, name = "", "holdout"
    tc = np.bincount(y[train], minlength=len(class_names))
    return Protocol(name, train, test, reason, imbalanced=is_imbalanced(tc))


def validation_split(y_train, repeat: int, cfg: EnrichConfig) -> tuple[np.ndarray, np.ndarray]:
    """(fit, val) positions into the training side for ``repeat`` >= 0 (stratified; >= 1 val image per class)."""
    from tfaug.data.subsets import stratified_split

    y = np.asarray(y_train, np.int64)
    counts = np.bincount(y)
    n_val = {c: max(1, int(np.floor(cfg.val_fraction * n + 0.5))) for c, n in enumerate(counts) if n}
    fit, _, val = stratified_split(y, test=max(cfg.val_fraction, 1e-9), seed=cfg.seed + SPLIT_SEED + repeat)
    # a class whose rounded share is 0 still needs one validation image: move its first training image over
    extra = [np.flatnonzero(y[fit] == c)[:1] for c, n in n_val.items() if not np.any(y[val] == c)]
    if extra:
        moved = fit[np.concatenate(extra)]
        fit, val = np.setdiff1d(fit, moved), np.sort(np.concatenate([val, moved]))
    return fit, val


class SealedTest:
    """The test images, readable once: :meth:`read` counts its calls (the instrumented single test read).

    Args:
        images: uint8 [T, H, W, C]; labels: int [T]; indices: int64 [T] dataset indices.
    """

    reads = 0  # class-wide count of test reads (tests reset and inspect it)

    def __init__(self, images, labels, indices):
        self._images, self._labels, self.indices = images, np.asarray(labels, np.int32), np.asarray(indices)

    def __len__(self) -> int:
        return int(len(self.indices))

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """The test images and labels; call once, after the choice."""
        type(self).reads += 1
        return self._images, self._labels


def config_record(cfg: EnrichConfig) -> dict:
    """JSON form of ``cfg`` (for protocol.json)."""
    from tfaug.config import to_dict

    d = dataclasses.asdict(cfg)
    d["classifier"], d["gan"], d["strategies"] = to_dict(cfg.classifier), to_dict(cfg.gan), list(cfg.strategies)
    return d


IMBALANCED_RATIO = 1.5  # a training side whose largest class has this many times its smallest's images is imbalanced


def is_imbalanced(class_counts) -> bool:
    """True when the largest of ``class_counts`` (ints >= 0) is at least ``IMBALANCED_RATIO`` times the smallest."""
    counts = np.asarray(class_counts)
    return bool(counts.max() >= IMBALANCED_RATIO * max(1, counts.min()))
