"""Choose a draw's classic augmentation on a validation split of that draw (never on test data).

Augmentation that suits digits can cost points on other data (on one 28x28 greyscale set of objects every affine,
flip and erasing variant scored 3-4 points below none). So a bare ``classic`` is decided per training draw: the
data kind's preset, its milder fallback and no augmentation are each trained on part of the draw and scored on
the rest, over a few stratified repeats, and the best mean validation accuracy wins (ties go to the stronger
augmentation). A draw with fewer than 2 images in some class has nothing to validate on; it keeps the kind's
preset, and the choice says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from tfaug.augment.kinds import detect_kind, is_auto, kind_candidates
from tfaug.config import ClassifierConfig
from tfaug.errors import TfaugError


@dataclass(frozen=True)
class AugmentChoice:
    """The outcome of :func:`choose_augment`.

    Attributes:
        spec: the chosen augmentation spec (``classic:KIND``, ``classic:KIND-mild`` or ``none``).
        kind: the data kind (named or guessed).
        protocol: ``validation`` (chosen on held-out parts of the draw) or ``default`` (too few images per class
            to hold any out: the kind's preset, unvalidated) or ``named`` (the spec named a preset).
        scores: candidate spec -> mean validation accuracy in [0, 1] (empty unless ``protocol == validation``).
    """

    spec: str
    kind: str
    protocol: str
    scores: dict = field(default_factory=dict)


def validation_splits(labels: np.ndarray, repeats: int, seed: int, fraction: float = 0.2) -> list[tuple]:
    """Stratified (train, validation) index splits of a draw: per class ``max(1, round(fraction * n_c))``
    images held out (at most ``n_c - 1``), ``repeats`` >= 1 times with different seeds. Empty when a class has
    fewer than 2 images."""
    labels = np.asarray(labels).reshape(-1)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) == 0 or counts.min() < 2:
        return []
    splits = []
    for r in range(repeats):
        rng = np.random.default_rng([seed, r])
        val = []
        for c, n in zip(classes, counts):
            idx = np.flatnonzero(labels == c)
            val.append(rng.choice(idx, min(n - 1, max(1, round(fraction * n))), replace=False))
        val = np.sort(np.concatenate(val))
        splits.append((np.setdiff1d(np.arange(len(labels)), val), val))
    return splits


def choose_augment(images: np.ndarray, labels: np.ndarray, *, num_classes: int, cfg: ClassifierConfig,
                   spec: str = "classic", kind: str | None = None, repeats: int = 2, budget_scale: float = 0.5,
                   progress: bool = False) -> AugmentChoice:
    """Pick the classic augmentation for one training draw by validation on that draw.

    Args:
        images: the draw, uint8 [N, H, W, C] or float32 in [-1, 1].
        labels: int [N] in [0, num_classes).
        num_classes: K >= 2.
        cfg: the classifier configuration of the cells that will use the choice; each candidate trains
            ``budget_scale`` of its budget (seeded from ``cfg.seed``).
        spec: a bare ``classic`` (choose) or a named spec (returned as is, protocol ``named``).
        kind: the data kind, or None to guess it from ``images``.
        repeats: stratified validation repeats >= 1.
        budget_scale: fraction in (0, 1] of the classifier's step budget each candidate trains.
        progress: show a progress bar per candidate training.

    Returns:
        An :class:`AugmentChoice`.
    """
    from tfaug.training.classifier import train_classifier
    from tfaug.utils.images import as_float_images

    if not is_auto(spec):
        return AugmentChoice(spec=spec, kind=kind or "", protocol="named")
    if not 0.0 < budget_scale <= 1.0:
        raise TfaugError(f"budget_scale must be in (0, 1], got {budget_scale!r}")
    kind = kind or detect_kind(images)
    candidates = kind_candidates(kind)
    labels = np.asarray(labels).reshape(-1)
    splits = validation_splits(labels, repeats, cfg.seed)
    if not splits:
        return AugmentChoice(spec=candidates[0], kind=kind, protocol="default")
    x = as_float_images(images)
    steps = max(1, int(round(budget_scale * cfg.budget(len(splits[0][0])))))
    small = replace(cfg, steps=steps, min_epochs=0.0, max_steps=0, ensemble=1)
    scores = {}

    def score(cand: str) -> float:
        accs = []
        for r, (tr, va) in enumerate(splits):
            res = train_classifier(x[tr], labels[tr], num_classes=num_classes, cfg=replace(small, seed=cfg.seed + r),
                                   x_test=x[va], y_test=labels[va], augment=None if cand == "none" else cand,
                                   progress=progress)
            accs.append(res.metrics["accuracy"])
        return float(np.mean(accs))

    # The kind's preset against none first; the milder preset is tried only when none wins (saves a third).
    strong, mild, none = candidates
    scores[strong], scores[none] = score(strong), score(none)
    if scores[none] > scores[strong]:
        scores[mild] = score(mild)
    ranked = [c for c in candidates if c in scores]
    best = max(ranked, key=lambda c: (round(scores[c], 6), -candidates.index(c)))
    return AugmentChoice(spec=best, kind=kind, protocol="validation", scores=scores)


__all__ = ["AugmentChoice", "choose_augment", "validation_splits"]
