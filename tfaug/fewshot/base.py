"""What the few-shot tools share: a trained zoo model rebuilt from its run directory, every network included.

``load_run`` (``tfaug.export``) gives only the sampling network; adaptation also needs the discriminator and the
raw generator, and inversion the discriminator's features, so :func:`load_trained_model` rebuilds the zoo model
from ``config.json`` and restores ``checkpoints/last`` into it.
"""
from __future__ import annotations

import os
from pathlib import Path

from tfaug.errors import TfaugError


def load_trained_model(run_dir: str | os.PathLike, kinds: tuple[str, ...] | None = None):
    """``(zoo model with every network restored, config dict)`` from a finished or interrupted run directory.

    Args:
        run_dir: a directory written by ``tfaug train-gan`` (``config.json`` and ``checkpoints/last``).
        kinds: model kinds the caller supports (None: any); others raise.

    Raises:
        TfaugError: not a run directory, an adapted run (its networks are not a zoo model's), a kind outside
            ``kinds``, or an unreadable checkpoint.
    """
    from tfaug.config import GANConfig
    from tfaug.models.zoo import build_model
    from tfaug.training.gan_runner import restore_checkpoint
    from tfaug.utils.rundir import read_run_config

    run = Path(run_dir)
    config = read_run_config(run)
    if config.get("adapt"):
        raise TfaugError(f"{run} is an adapted run (tfaug adapt); use the run it was adapted from")
    kind = str(config.get("kind") or "")
    if kinds is not None and kind not in kinds:
        raise TfaugError(f"{run} holds a {kind or 'unknown'} model; this needs one of: {', '.join(kinds)}")
    data = config.get("data") or {}
    try:
        cfg = GANConfig(**config["gan"])
        image_shape = tuple(int(v) for v in data["image_shape"])
        num_classes = int(data["num_classes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TfaugError(f"{run}/config.json lacks {exc}; the run directory is corrupt") from None
    import keras

    keras.utils.set_random_seed(cfg.seed)
    model = build_model(kind, image_shape, num_classes, cfg)
    restore_checkpoint(model, run)
    return model, config


__all__ = ["load_trained_model"]
