"""The candidates of an enrich run and THE adapter that trains one of them.

:func:`fit_candidate` is the only place in ``tfaug.enrich`` that turns a strategy text into a training mix and a
classifier; it asks the strategy object (``tfaug.synthesis.strategies``) like the study runner does. A bare
``classic`` takes the data kind's preset (``tfaug.augment.kinds``): the selection itself validates it against
``baseline``.

The candidate list is data-driven (:func:`default_candidates`): the controls ``baseline`` and ``classic``, the
long-tail controls :data:`LONG_TAIL` when the training side is imbalanced and the installed strategy code knows
them (their names are simply tried), then the generative candidates :data:`GENERATIVE`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError

CONTROLS = ("baseline", "classic")
LONG_TAIL = ("reweight", "logit-adjust", "balanced")
GENERATIVE = ("cdcgan", "cdcgan+classic")
REFERENCE = "classic"  # every candidate is reported as a paired difference to this control


def parse(text: str):
    """The parsed strategy (a ``TfaugError`` naming the known blocks when ``text`` is unknown, or refusing a block
    that needs a teacher classifier: enrich trains none)."""
    from tfaug.synthesis.strategies import parse as parse_strategy

    strategy = parse_strategy(text)
    if strategy.needs.teacher:
        raise TfaugError(f"candidate {text!r} needs a teacher classifier (soft, filter:teacher), which only "
                         "`tfaug study` trains; leave it out of --strategies")
    return strategy


def known(text: str) -> bool:
    """True when the installed strategy code parses ``text``."""
    try:
        parse(text)
    except TfaugError:
        return False
    return True


def is_generative(text: str) -> bool:
    """True when ``text`` samples a generator."""
    return parse(text).generator is not None


def generator_model(text: str) -> str | None:
    """The zoo model a strategy samples, or None."""
    return parse(text).generator


def default_candidates(imbalanced: bool) -> list[str]:
    """Controls first (long-tail ones only for imbalanced data, and only those the strategy code knows), then the
    generative candidates."""
    longtail = [s for s in LONG_TAIL if imbalanced and known(s)]
    return list(CONTROLS) + longtail + list(GENERATIVE)


def candidate_list(given, imbalanced: bool) -> list[str]:
    """The user's ``--strategies`` (validated; ``classic`` added first when missing: it is the reference), or
    the default list."""
    if not given:
        return default_candidates(imbalanced)
    out = []
    for text in given:
        parse(text)  # one sentence naming the known blocks when unknown
        if text not in out:
            out.append(text)
    if REFERENCE not in out:
        out.insert(0, REFERENCE)
    return out


class _GanPlan:
    """What ``CellResources`` asks of a study config, for enrich's one generator config."""

    def __init__(self, gan, runtime=None):
        self.gan, self.runtime, self.generator_metrics, self.filters = gan, runtime, (), {}

    def generator_config(self, model: str, seed: int):
        return dataclasses.replace(self.gan, model=model, seed=seed)


def draw_resources(root: Path, images, labels, indices, class_names, gan_cfg, seed: int, progress: bool = False):
    """Generators trained only on ``images`` (one draw), in ``root/<model>``; finished runs are reused on resume."""
    from tfaug.studies.resources import CellResources

    return CellResources(_GanPlan(gan_cfg), images=images, labels=labels, indices=indices, class_names=class_names,
                         root=root, seed=seed, progress=progress)


@dataclass
class Fit:
    """A trained candidate: the Keras classifier (float32 [-1, 1] images -> logits) and, when validation images
    were given, their probabilities float32 [V, K]."""

    model: object
    probabilities: np.ndarray | None
    n_synthetic: int


def fit_candidate(strategy_text: str, x_train, y_train, x_val, y_val, resources, cfg, seed: int, *,
                  num_classes: int, progress: bool | str = False) -> Fit:
    """Train the classifier of strategy ``strategy_text`` on one draw and predict ``x_val``.

    Args:
        strategy_text: e.g. ``classic``, ``cdcgan+classic``.
        x_train: uint8 [N, H, W, C] real training images of the draw; y_train: int [N] in [0, K).
        x_val: uint8 [V, H, W, C] images to predict, or None; y_val: their labels (unused here; the caller scores).
        resources: ``generator(model)`` -> a generator trained on this draw only (see :func:`draw_resources`).
        cfg: the ``ClassifierConfig``; its seed is replaced by ``seed``.
        seed: seed of the mix and the classifier (>= 0).
        num_classes: K >= 2.
        progress: show the classifier's step bar.
    """
    from tfaug.enrich.protocol import is_imbalanced
    from tfaug.synthesis.strategies import Counts, Draw
    from tfaug.training.classifier import train_classifier
    from tfaug.utils.images import as_float_images
    from tfaug.training.mixing import mix_kwargs

    strategy = parse(strategy_text)
    y_train = np.asarray(y_train, np.int32).reshape(-1)
    have = np.bincount(y_train, minlength=num_classes)
    # an imbalanced draw is topped up to its majority class (the rule of studies, train-classifier and fill)
    kind = "imbalance" if is_imbalanced(have) else "per_class"
    mix = strategy.build(Draw(x=x_train, y=y_train, num_classes=num_classes, seed=seed), Counts(kind=kind), resources)
    res = train_classifier(mix.images, mix.labels, num_classes=num_classes, cfg=dataclasses.replace(cfg, seed=seed),
                           augment=mix.augment, budget_images=mix.n_real, progress=progress,
                           **mix_kwargs(mix, num_classes))
    probs = None
    if x_val is not None:
        import tensorflow as tf

        x = as_float_images(x_val)
        probs = np.concatenate([tf.nn.softmax(res.model(x[i:i + 512], training=False)).numpy()
                                for i in range(0, len(x), 512)])
    return Fit(res.model, probs, int(mix.n_synthetic))
