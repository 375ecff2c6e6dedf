"""Blocks that change how generated images enter training: ``soft[:T]``, ``weight:W``, ``swap:P``, ``sepbn``.

- ``soft[:T]``  the draw's teacher (the study's control classifier, ``Needs(teacher=True)``) relabels every generated
                image with its probabilities softened by temperature T > 0 (default 1): ``softmax(log p / T)``;
                generated rows train against these soft targets (``TrainingMix.targets``), real rows against their
                one-hot labels (the classifier's label smoothing applies to every row alike). T -> infinity flattens
                the targets to uniform; T -> 0 sharpens them to the teacher's argmax (Hinton et al. 2015,
                "Distilling the knowledge in a neural network").
- ``weight:W``  generated images carry loss weight W >= 0 (real ones 1); every batch holds the real batch of the
                real-only classifier plus ``round(B * n_generated / n_real)`` generated images (the proportion of the
                mix), from two separately shuffled and augmented streams; the loss is the weighted mean over the
                batch, so ``weight:0`` trains like the real-only classifier (exactly so on a network without
                BatchNorm or with ``sepbn``; with shared BatchNorm the generated rows still shift batch statistics).
- ``swap:P``    the mix keeps one stream of real images; each real image of a batch is replaced with probability P in
                [0, 1] by a generated image of its class (DA-Fusion, Trabucco et al. 2023); ``swap:0`` is the
                real-only classifier.
- ``sepbn``     generated images pass through BatchNorm layers of their own (own statistics and affine parameters;
                convolutions and dense layers are shared) in a batch of their own; test images use the real ones
                (Xie et al. 2020, "Adversarial examples improve image recognition": auxiliary BatchNorm).

Each sets ``Strategy.train_options`` (``soft_temperature``, ``generated_weight``, ``swap``, ``sepbn``), carried to
``TrainingMix.train_options``; ``tfaug.training.mixing.mix_kwargs`` turns them into ``train_classifier`` arguments.
``soft`` also runs a stage after generation (and filtering) that fills the mix's soft targets.
"""
from __future__ import annotations

import numpy as np

from tfaug.errors import TfaugError
from tfaug.synthesis.strategies.base import Block, Needs, Strategy, number, register, train_option
from tfaug.synthesis.strategies.mix import MixState

__all__ = ["SEPBN", "SOFT", "SWAP", "WEIGHT", "soften"]


def soften(probabilities, temperature: float = 1.0) -> np.ndarray:
    """Teacher probabilities softened by temperature: ``softmax(log(p) / T)`` (T applied to the log-probabilities,
    then renormalised; Hinton et al. 2015).

    Args:
        probabilities: float [N, K] rows of probabilities >= 0 (a softmax output).
        temperature: T > 0; 1 returns the renormalised probabilities, larger flattens, smaller sharpens.

    Returns:
        float32 [N, K] rows >= 0 summing to 1, with the same argmax as ``probabilities``.
    """
    p = np.asarray(probabilities, np.float64)
    if p.ndim != 2 or np.any(~np.isfinite(p)) or np.any(p < 0):
        raise TfaugError(f"teacher probabilities must be finite numbers >= 0 of shape [N, K], got shape {p.shape}")
    if not temperature > 0:
        raise TfaugError(f"the soft-target temperature must be > 0, got {temperature!r}")
    logp = np.log(np.maximum(p, 1e-12)) / float(temperature)
    logp -= logp.max(axis=1, keepdims=True)
    q = np.exp(logp)
    return (q / q.sum(axis=1, keepdims=True)).astype(np.float32)


def _parse_soft(fields: dict, head: str, arg: str, text: str) -> None:
    t = number(arg, 1.0, text, minimum=0.0)
    if t <= 0:
        raise TfaugError(f"soft's temperature must be > 0, got {arg} in strategy {text!r}")
    train_option(fields, "soft_temperature", t, text)


def _parse_weight(fields: dict, head: str, arg: str, text: str) -> None:
    if not arg:
        raise TfaugError(f"'weight' needs the generated images' loss weight in {text!r}, e.g. weight:0.5")
    train_option(fields, "generated_weight", number(arg, 1.0, text, minimum=0.0), text)


def _parse_swap(fields: dict, head: str, arg: str, text: str) -> None:
    if not arg:
        raise TfaugError(f"'swap' needs a probability in {text!r}, e.g. swap:0.3")
    p = number(arg, 0.0, text, minimum=0.0)
    if p > 1:
        raise TfaugError(f"swap's probability must be in [0, 1], got {arg} in strategy {text!r}")
    train_option(fields, "swap", p, text)


def _parse_sepbn(fields: dict, head: str, arg: str, text: str) -> None:
    if arg:
        raise TfaugError(f"sepbn takes no argument, got {arg!r} in strategy {text!r}")
    train_option(fields, "sepbn", True, text)


def check(strategy: Strategy) -> None:
    """Refuse combinations these blocks do not support (one sentence naming the strategy)."""
    opts = strategy.train_options
    mine = [k for k in ("soft_temperature", "generated_weight", "swap", "sepbn") if k in opts]
    if not mine:
        return
    text = strategy.name
    if not strategy.generator:
        raise TfaugError(f"strategy {text!r}: soft, weight, swap and sepbn act on generated images; add a generator "
                         "(a zoo model such as cdcgan; train-classifier: --synthetic)")
    if strategy.curriculum or strategy.synthetic_only or strategy.source_flag:
        raise TfaugError(f"strategy {text!r}: soft, weight, swap and sepbn do not combine with curriculum, "
                         "synthetic-only or source-flag")
    if "swap" in opts and ("generated_weight" in opts or "sepbn" in opts):
        raise TfaugError(f"strategy {text!r}: swap puts generated images into the real batches; weight and sepbn "
                         "give them batches of their own; use one of the two")
    # reweight and logit-adjust take target rows (tfaug.training.longtail.target_loss); class-balanced sampling
    # draws by class from one stream, so it has no place for soft targets or a second (generated) stream
    if opts.get("balanced"):
        raise TfaugError(f"strategy {text!r}: balanced does not combine with "
                         f"{', '.join(k.replace('_temperature', '').replace('generated_', '') for k in mine)}; "
                         "use reweight or logit-adjust for the classes' balance")


def _stage_soft(strategy: Strategy, state: MixState) -> None:
    gen_x, _ = state.generated
    if "soft_temperature" not in strategy.train_options or len(gen_x) == 0:
        return
    if state.resources is None:
        raise TfaugError(f"strategy {strategy.name!r} relabels with a teacher but no resources were given")
    teacher = state.resources.teacher_fn()
    probs = np.concatenate([np.asarray(teacher(gen_x[i:i + 512]), np.float32) for i in range(0, len(gen_x), 512)])
    if probs.shape != (len(gen_x), state.draw.num_classes):
        raise TfaugError(f"the teacher gave probabilities of shape {probs.shape} for {len(gen_x)} images of "
                         f"{state.draw.num_classes} classes")
    state.generated_targets = soften(probs, strategy.train_options["soft_temperature"])


SOFT = register(Block(names=("soft",), parse=_parse_soft, needs=lambda s: Needs(teacher=True), stage=_stage_soft,
                      order=40, check=check))
WEIGHT = register(Block(names=("weight",), parse=_parse_weight, check=check))
SWAP = register(Block(names=("swap",), parse=_parse_swap, check=check))
SEPBN = register(Block(names=("sepbn",), parse=_parse_sepbn, check=check))
