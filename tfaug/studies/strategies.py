"""Enrichment strategies: how a training set is built from the real draw before a classifier sees it.

A strategy is a ``+``-joined list of building blocks:

- ``baseline``            the real images only;
- ``bootstrap[:F]``       duplicate randomly chosen originals until the set is F times its size (default 4, S1);
- ``classic[:PRESET]``    classic augmentation on the fly (presets in ``tfaug.augment.classic``);
- ``cdcgan[:R]``          add R generated images per real image (default 1.0), per class, from a conditional
                          GAN trained on this same draw only.

e.g. ``cdcgan+classic``, ``bootstrap:2+classic:objects``. Later issues add more blocks; unknown ones are errors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from tfaug.errors import TfaugError

GENERATIVE = ("cdcgan",)
BLOCKS = ("baseline", "bootstrap", "classic") + GENERATIVE


@dataclass(frozen=True)
class Strategy:
    """A parsed strategy.

    Attributes:
        name: the canonical text (as given).
        bootstrap: duplication factor >= 1, or None.
        augment: classic augmentation spec (``classic`` / ``classic:PRESET``), or None.
        generator: generative model name, or None.
        ratio: generated images per real image (>= 0) when ``generator`` is set.
    """

    name: str
    bootstrap: float | None = None
    augment: str | None = None
    generator: str | None = None
    ratio: float = 1.0


def parse_strategy(text: str) -> Strategy:
    """Parse ``cdcgan:0.5+classic`` style text into a :class:`Strategy` (unknown blocks are errors)."""
    fields: dict = {}
    for part in [p.strip() for p in text.split("+") if p.strip()]:
        head, _, arg = part.partition(":")
        if head not in BLOCKS:
            raise TfaugError(f"unknown strategy block {head!r} in {text!r}; known blocks: {', '.join(BLOCKS)}")
        if head == "baseline":
            continue
        if head == "classic":
            fields["augment"] = part
        elif head == "bootstrap":
            fields["bootstrap"] = _number(arg, 4.0, text, minimum=1.0)
        else:
            fields["generator"] = head
            fields["ratio"] = _number(arg, 1.0, text, minimum=0.0)
    if not text.strip():
        raise TfaugError("empty strategy")
    return Strategy(name=text, **fields)


@dataclass
class TrainingMix:
    """Images float32 [-1, 1] [M, H, W, C], labels int32 [M], and how they were made."""

    images: np.ndarray
    labels: np.ndarray
    augment: str | None
    n_real: int
    n_duplicates: int
    n_synthetic: int


def build_mix(
    strategy: Strategy,
    x_real: np.ndarray,
    y_real: np.ndarray,
    *,
    seed: int,
    generator_fn: Callable[[], object] | None = None,
) -> TrainingMix:
    """Build the training set of ``strategy`` from the real draw.

    Args:
        strategy: a parsed strategy.
        x_real: uint8 [N, H, W, C] real training images (the repeat's draw).
        y_real: int [N] their labels.
        seed: seed for duplication and generation.
        generator_fn: returns a generator (``sample(class_ids, seeds)``) trained on this draw only; called only
            when the strategy needs one.
    """
    from tfaug.augment.bootstrap import bootstrap
    from tfaug.synthesis.sample import sample_per_class
    from tfaug.training.classifier import as_float_images

    x = as_float_images(x_real)
    y = np.asarray(y_real, np.int32)
    n_real, n_dup, n_syn = len(x), 0, 0
    if strategy.bootstrap:
        x, y, _ = bootstrap(x, y, strategy.bootstrap, seed=seed)
        n_dup = len(x) - n_real
    if strategy.generator and strategy.ratio > 0:
        if generator_fn is None:
            raise TfaugError(f"strategy {strategy.name!r} needs a generator")
        classes, counts = np.unique(np.asarray(y_real), return_counts=True)
        per_class = {int(c): int(round(strategy.ratio * n)) for c, n in zip(classes, counts)}
        xs, ys = sample_per_class(generator_fn(), per_class, seed=seed)
        x = np.concatenate([x, xs.astype(np.float32)])
        y = np.concatenate([y, np.asarray(ys, np.int32)])
        n_syn = len(xs)
    return TrainingMix(images=x, labels=y, augment=strategy.augment, n_real=n_real, n_duplicates=n_dup,
                       n_synthetic=n_syn)


def _number(arg: str, default: float, text: str, minimum: float) -> float:
    if not arg:
        return default
    try:
        value = float(arg)
    except ValueError:
        raise TfaugError(f"bad number {arg!r} in strategy {text!r}") from None
    if value < minimum:
        raise TfaugError(f"{arg} in strategy {text!r} must be >= {minimum}")
    return value
