"""The model zoo: one name -> builder registry for every generative model (``tfaug train-gan --model NAME``).

Builders are referenced by import path so that listing the zoo (``--help``) never imports TensorFlow, and a model
module is imported only when it is used. Every builder has the signature
``build(image_shape, num_classes, cfg: GANConfig) -> GenerativeModel`` (compiled, optimizer variables built) and
reads its model-specific settings from ``cfg.options`` through :func:`take_options`.
"""
from __future__ import annotations

import importlib
from typing import Any

from tfaug.errors import TfaugError

# name -> "module:function". Kept in zoo order (simplest first).
BUILDERS: dict[str, str] = {
    "dcgan": "tfaug.models.dcgan:build_dcgan",
    "cdcgan": "tfaug.models.cgan:build_conditional_gan",
    "acgan": "tfaug.models.acgan:build_acgan",
    "wgan-gp": "tfaug.models.wgan:build_wgan_gp",
    "vae": "tfaug.models.vae:build_vae",
    "cvae": "tfaug.models.vae:build_cvae",
    "bagan": "tfaug.models.bagan:build_bagan",
    "cvae-gan": "tfaug.models.cvae_gan:build_cvae_gan",
    "gan-bank": "tfaug.models.gan_bank:build_gan_bank",
    "stylegan": "tfaug.models.stylegan:build_stylegan",
}


def model_names() -> tuple[str, ...]:
    """Names accepted by :func:`build_model` and ``--model``."""
    return tuple(BUILDERS)


def build_model(name: str, image_shape: tuple[int, int, int], num_classes: int, cfg) -> Any:
    """Build the zoo model ``name`` for ``image_shape`` and ``num_classes`` from a ``GANConfig``.

    Raises:
        TfaugError: unknown model name (the message lists the valid ones) or invalid options.
    """
    if name not in BUILDERS:
        raise TfaugError(f"unknown model {name!r}; choose one of: {', '.join(BUILDERS)}")
    module, _, fn = BUILDERS[name].partition(":")
    return getattr(importlib.import_module(module), fn)(tuple(int(v) for v in image_shape), int(num_classes), cfg)


def take_options(model: str, options: dict | None, defaults: dict[str, Any]) -> dict[str, Any]:
    """Model-specific options merged over their defaults, each converted to its default's type.

    Args:
        model: model name (for messages).
        options: user options (``cfg.options``), may be None.
        defaults: every accepted option with its default value.

    Raises:
        TfaugError: an option the model does not know (the message lists the known ones) or a value of the
            wrong type.
    """
    out = dict(defaults)
    for key, value in (options or {}).items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise TfaugError(f"model {model!r} has no option {key!r}; its options are: {known}")
        want = type(defaults[key])
        try:
            if want is bool and isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                value = value.lower() in ("true", "1", "yes")
            out[key] = want(value) if defaults[key] is not None else value
        except (TypeError, ValueError):
            raise TfaugError(f"option {key!r} of model {model!r} must be a {want.__name__}, got {value!r}") from None
    return out


__all__ = ["BUILDERS", "build_model", "model_names", "take_options"]
