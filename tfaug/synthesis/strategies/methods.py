"""S3's classifiers built from per-class generators instead of a trained CNN: ``disc-bank``, ``m1``..``m4``.

Each is a strategy of its own (never combined with another block); ``m1:m=100,L=3`` overrides the study's
``methods`` parameters (keys ``m``, ``L``, ``N`` integers >= 1, ``mu`` >= 0). They build no training mix: the study
runs them through ``tfaug.studies.methods`` with what :attr:`Strategy.needs` lists (the discriminator bank of
``gan-bank``, or the ``methods.model`` generator, plus a VAE encoder for m2 and m4).
"""
from __future__ import annotations

from tfaug.errors import TfaugError
from tfaug.synthesis.strategies.base import Block, Needs, Strategy, number, once, register

METHODS = ("disc-bank", "m1", "m2", "m3", "m4")
METHOD_KEYS = ("m", "L", "N", "mu")


def method_args(arg: str, text: str) -> dict:
    """``m=100,L=5`` -> ``{"m": 100, "L": 5}`` (one sentence naming the strategy on a bad item)."""
    out: dict = {}
    for item in [a.strip() for a in arg.split(",") if a.strip()]:
        key, sep, value = item.partition("=")
        if not sep or key not in METHOD_KEYS:
            raise TfaugError(f"bad method parameter {item!r} in {text!r}; write e.g. m1:m=100,L=5 "
                             f"(keys {', '.join(METHOD_KEYS)})")
        out[key] = number(value, 0.0, text, minimum=0.0) if key == "mu" else int(number(value, 1, text, minimum=1))
    return out


def _parse(fields: dict, head: str, arg: str, text: str) -> None:
    once(fields, "method", head, text)
    fields["method_args"] = method_args(arg, text)


def _needs(strategy: Strategy) -> Needs:
    return Needs(generators=(strategy.method_model,), encoder=strategy.method in ("m2", "m4"))


METHOD_BLOCKS = register(Block(names=METHODS, parse=_parse, needs=_needs))
