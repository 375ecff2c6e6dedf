"""Enrichment strategies: how a training set is built from the real draw before a classifier sees it.

A strategy is a ``+``-joined list of building blocks:

- ``baseline``              the real images only;
- ``bootstrap[:F]``         duplicate randomly chosen originals until the set is F times its size (default 4, S1);
                            in an imbalance regime without F: duplicate every class up to the majority count;
- ``classic[:PRESET]``      classic augmentation on the fly (presets in ``tfaug.augment.classic``);
- ``extra-real[:R]``        the control: R more *real* images per real image (default 1) from the unused pool; in an
                            imbalance regime without R: real images of each class up to the majority (S5's
                            "balanced original"); in a grid: as many real images as the grid's synthetic count;
- ``MODEL[:R]``             any zoo model (``cdcgan``, ``bagan``, ``cvae`` ...): R generated images per real image,
                            per class (default 1; imbalance regime without R: top every class up to the majority;
                            grid: the grid's synthetic count), from a generator trained on this draw only;
- ``filter:NAME``           filter the generated images (a named filter of the study, or a filter spec such as
                            ``variance`` or ``consistency:0.9``); generation over-samples to keep the count;
- ``synthetic-only[:MODEL]`` train on generated images only (classification accuracy score, CAS);
- ``curriculum[:MODEL]``    pre-train on generated images, then fine-tune on the real ones (S4);
- ``source-flag[:MODEL]``   real + generated with an extra input channel flagging generated images (S4; test
                            images carry flag 0);
- ``disc-bank``, ``m1``..``m4`` S3's classifiers built from per-class generators instead of a trained CNN
                            (``m1:m=100,L=3`` overrides the study's ``methods`` parameters); alone only.

e.g. ``cdcgan+classic``, ``bootstrap:2+classic:objects``, ``bagan+filter:consistency``. Unknown blocks are
errors that name the block and list the known ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from tfaug.errors import TfaugError

METHODS = ("disc-bank", "m1", "m2", "m3", "m4")
FLAGS = ("synthetic-only", "curriculum", "source-flag")
BLOCKS = ("baseline", "bootstrap", "classic", "extra-real", "filter") + FLAGS + METHODS
METHOD_KEYS = ("m", "L", "N", "mu")


def model_names() -> tuple[str, ...]:
    """Zoo model names usable as strategy blocks (no TensorFlow import)."""
    from tfaug.models.zoo import model_names as names

    return tuple(names())


@dataclass(frozen=True)
class Strategy:
    """A parsed strategy.

    Attributes:
        name: the canonical text (as given).
        bootstrap: duplication factor >= 1, or None; ``bootstrap_given`` is False when the factor was defaulted.
        augment: classic augmentation spec (``classic`` / ``classic:PRESET``), or None.
        generator: zoo model name, or None.
        ratio: generated (or extra real) images per real image, >= 0; ``ratio_given`` False when defaulted.
        extra_real: add unused real images (the control).
        filters: filter names/specs applied to generated images, in order.
        synthetic_only, curriculum, source_flag: the S4 / CAS training variants.
        method: one of METHODS (S3 classifiers) or None; ``method_args`` their inline parameter overrides.
    """

    name: str
    bootstrap: float | None = None
    bootstrap_given: bool = False
    augment: str | None = None
    generator: str | None = None
    ratio: float = 1.0
    ratio_given: bool = False
    extra_real: bool = False
    filters: tuple = ()
    synthetic_only: bool = False
    curriculum: bool = False
    source_flag: bool = False
    method: str | None = None
    method_args: dict = field(default_factory=dict)

    @property
    def generative(self) -> bool:
        """True when the strategy samples a generator (so the cell needs one trained on its draw)."""
        return self.generator is not None


def parse_strategy(text: str, default_model: str = "cdcgan") -> Strategy:
    """Parse ``cdcgan:0.5+classic`` style text into a :class:`Strategy` (unknown blocks are errors).

    Args:
        text: the strategy text.
        default_model: generator of ``synthetic-only``, ``curriculum`` and ``source-flag`` when neither the block
            nor a ``MODEL`` block names one.
    """
    if not isinstance(text, str) or not text.strip():
        raise TfaugError("empty strategy")
    models = model_names()
    fields: dict = {}
    filters: list[str] = []
    flag_models: list[str] = []
    for part in [p.strip() for p in text.split("+")]:
        if not part:
            raise TfaugError(f"empty block in strategy {text!r}")
        head, _, arg = part.partition(":")
        if head in models:
            _once(fields, "generator", head, text)
            fields["ratio"] = _number(arg, 1.0, text, minimum=0.0)
            fields["ratio_given"] = bool(arg)
            continue
        if head not in BLOCKS:
            raise TfaugError(f"unknown strategy block {head!r} in {text!r}; known blocks: "
                             f"{', '.join(BLOCKS)} and the zoo models {', '.join(models)}")
        if head == "baseline":
            continue
        if head == "classic":
            _once(fields, "augment", part, text)
        elif head == "bootstrap":
            _once(fields, "bootstrap", _number(arg, 4.0, text, minimum=1.0), text)
            fields["bootstrap_given"] = bool(arg)
        elif head == "extra-real":
            _once(fields, "extra_real", True, text)
            if arg:
                fields["ratio"] = _number(arg, 1.0, text, minimum=0.0)
                fields["ratio_given"] = True
        elif head == "filter":
            if not arg:
                raise TfaugError(f"'filter' needs a name in {text!r}, e.g. filter:variance")
            filters.append(arg)
        elif head in FLAGS:
            _once(fields, head.replace("-", "_"), True, text)
            if arg:
                if arg not in models:
                    raise TfaugError(f"unknown model {arg!r} in {text!r}; zoo models: {', '.join(models)}")
                flag_models.append(arg)
        else:
            _once(fields, "method", head, text)
            fields["method_args"] = _method_args(arg, text)
    return _assemble(text, fields, filters, flag_models, default_model)


def _assemble(text: str, fields: dict, filters: list, flag_models: list, default_model: str) -> Strategy:
    flags = [f for f in ("synthetic_only", "curriculum", "source_flag") if fields.get(f)]
    if len(flags) > 1:
        raise TfaugError(f"strategy {text!r} combines {' and '.join(f.replace('_', '-') for f in flags)}; use one of them")
    if fields.get("method"):
        others = sorted(set(fields) - {"method", "method_args"}) + (["filter"] if filters else [])
        if others:
            raise TfaugError(f"{fields['method']!r} is a classifier of its own and cannot be combined "
                             f"(got {', '.join(others)} in {text!r})")
    named = {fields.get("generator"), *flag_models} - {None}
    if len(named) > 1:
        raise TfaugError(f"strategy {text!r} names two generators ({', '.join(sorted(named))}); use one")
    if flags and not named:
        fields["generator"] = default_model
    elif named:
        fields["generator"] = named.pop()
    if filters and not fields.get("generator"):
        raise TfaugError(f"strategy {text!r} filters generated images but has no generator (add e.g. cdcgan)")
    if fields.get("extra_real") and fields.get("generator") and not flags:
        raise TfaugError(f"strategy {text!r}: extra-real is the control for a generator; list them as two strategies")
    return Strategy(name=text, filters=tuple(filters), **fields)


def _once(fields: dict, key: str, value, text: str) -> None:
    if key in fields:
        raise TfaugError(f"strategy {text!r} gives {key.replace('_', '-')} twice")
    fields[key] = value


def _method_args(arg: str, text: str) -> dict:
    out: dict = {}
    for item in [a.strip() for a in arg.split(",") if a.strip()]:
        key, sep, value = item.partition("=")
        if not sep or key not in METHOD_KEYS:
            raise TfaugError(f"bad method parameter {item!r} in {text!r}; write e.g. m1:m=100,L=5 "
                             f"(keys {', '.join(METHOD_KEYS)})")
        out[key] = _number(value, 0.0, text, minimum=0.0) if key == "mu" else int(_number(value, 1, text, minimum=1))
    return out


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
