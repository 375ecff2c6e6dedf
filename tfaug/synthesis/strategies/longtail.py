"""Long-tail training blocks: ``reweight[:beta]``, ``logit-adjust[:tau|posthoc[=tau]]``, ``balanced``.

They change how the classifier trains on the mix, not the mix: each sets ``Strategy.train_options`` (carried to
``TrainingMix.train_options``), and ``tfaug.training.longtail.train_kwargs`` turns them into ``train_classifier``
arguments. Every block composes with ``classic``, ``bootstrap``, the generators and with each other.

- ``reweight[:beta]``     class-balanced loss weights from the effective number of samples of each class in the
                          training mix, ``(1 - beta) / (1 - beta^n_c)`` normalised to sum K (Cui et al., CVPR 2019);
                          beta in [0, 1), default 0.999;
- ``logit-adjust[:tau]``  the logit-adjusted softmax cross-entropy on the training mix's class prior (Menon et al.,
                          ICLR 2021, eq. 10); tau >= 0, default 1;
- ``logit-adjust:posthoc[=tau]`` the post-hoc variant: train plainly, predict with ``logits - tau * log(prior)``
                          (Menon et al. 2021, eq. 9);
- ``balanced``            class-balanced sampling: every class equally likely in each batch (seeded).
"""
from __future__ import annotations

from tfaug.errors import TfaugError
from tfaug.synthesis.strategies.base import Block, number, register, train_option

__all__ = ["BALANCED", "LOGIT_ADJUST", "REWEIGHT"]


def _parse_reweight(fields: dict, head: str, arg: str, text: str) -> None:
    beta = number(arg, 0.999, text, minimum=0.0)
    if beta >= 1.0:
        raise TfaugError(f"reweight's beta must be in [0, 1), got {arg} in strategy {text!r}")
    train_option(fields, "reweight", beta, text)


def _parse_logit_adjust(fields: dict, head: str, arg: str, text: str) -> None:
    mode, sep, tau = arg.partition("=")
    posthoc = mode == "posthoc"
    if not posthoc and sep:
        raise TfaugError(f"logit-adjust takes tau, posthoc or posthoc=tau, got {arg!r} in strategy {text!r}")
    train_option(fields, "logit_adjust", number(tau if posthoc else arg, 1.0, text, minimum=0.0), text)
    fields["train_options"]["posthoc"] = posthoc


def _parse_balanced(fields: dict, head: str, arg: str, text: str) -> None:
    if arg:
        raise TfaugError(f"balanced takes no argument, got {arg!r} in strategy {text!r}")
    train_option(fields, "balanced", True, text)


REWEIGHT = register(Block(names=("reweight",), parse=_parse_reweight))
LOGIT_ADJUST = register(Block(names=("logit-adjust",), parse=_parse_logit_adjust))
BALANCED = register(Block(names=("balanced",), parse=_parse_balanced))
