"""S3's fully connected per-class GAN networks (one small unconditional GAN per class, see docs/studies.md S3).

* :func:`build_generator_bank` — K generators ``z -> images [H, W, C]`` in [-1, 1]: Dense blocks
  (S3: 100 -> 256 -> 512 -> 1024) each with BatchNorm and LeakyReLU 0.2, then Dense(H*W*C) + tanh.
* :func:`build_discriminator_bank` — K discriminators ``images -> logit``: flatten, Dense blocks
  (S3: 512 -> 256 -> 128) with LeakyReLU 0.2 (no BatchNorm), then Dense(1).

The K networks of each kind live in one :class:`~tfaug.models.networks.latent_layers.MLPBank` (weights stacked
on a class axis), so building, tracing and exporting cost the same for 2 or 100 classes.

Sizes come from the image shape, so any H, W >= 4 and any channel count work.
"""
from __future__ import annotations

import keras
from keras import layers

from tfaug.errors import TfaugError
from tfaug.models.networks.common import check_image_shape, check_num_classes
from tfaug.models.networks.latent_layers import MLPBank

# S3's layer sizes.
S3_GENERATOR_UNITS = (256, 512, 1024)
S3_DISCRIMINATOR_UNITS = (512, 256, 128)
# Same reason as the DCGAN generator: moving statistics must follow a generator that changes every step.
BN_MOMENTUM = 0.9


def parse_units(units, what: str) -> tuple[int, ...]:
    """``"256,512,1024"`` or a sequence of ints -> a tuple of positive ints.

    Raises:
        TfaugError: empty, non-integer or non-positive sizes.
    """
    if isinstance(units, str):
        parts = [p.strip() for p in units.split(",") if p.strip()]
    else:
        parts = list(units)
    try:
        out = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise TfaugError(f"{what} must be comma-separated positive integers, got {units!r}") from None
    if not out or min(out) < 1:
        raise TfaugError(f"{what} must be comma-separated positive integers, got {units!r}")
    return out


def build_generator_bank(image_shape: tuple[int, int, int], num_classes: int, z_dim: int = 100,
                         units=S3_GENERATOR_UNITS, name: str = "generators") -> keras.Model:
    """Build K fully connected generators, one per class, as one model (weights stacked by class).

    Generator k: ``z -> [Dense(u) -> BatchNorm -> LeakyReLU 0.2] for u in units -> Dense(H*W*C) -> tanh``.

    Args:
        image_shape: ``(H, W, C)``; H, W >= 4, any C >= 1.
        num_classes: K >= 1.
        z_dim: latent size (S3: 100).
        units: hidden layer sizes (S3: 256, 512, 1024).
        name: model name.

    Returns:
        Functional model ``[z float32 [N, z_dim], class_id int32 [N]] -> images float32 [N, H, W, C]`` in [-1, 1]
        where row i comes from generator ``class_id[i]``; its layer ``bank`` is the :class:`MLPBank`.
    """
    h, w, c = check_image_shape(image_shape)
    z = keras.Input(shape=(int(z_dim),), dtype="float32", name="z")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    bank = MLPBank(check_num_classes(num_classes), int(z_dim), parse_units(units, "generator units"), h * w * c,
                   batch_norm=True, activation="tanh", momentum=BN_MOMENTUM, name="bank")
    images = layers.Reshape((h, w, c), name="images")(bank([z, class_id]))
    return keras.Model([z, class_id], images, name=name)


def build_discriminator_bank(image_shape: tuple[int, int, int], num_classes: int, units=S3_DISCRIMINATOR_UNITS,
                             name: str = "discriminators") -> keras.Model:
    """Build K fully connected discriminators, one per class, as one model (weights stacked by class).

    Discriminator k: ``flatten -> [Dense(u) -> LeakyReLU 0.2] for u in units -> Dense(1)`` (no BatchNorm, so a
    logit depends only on its own image).

    Args:
        image_shape: ``(H, W, C)``; H, W >= 4, any C >= 1.
        num_classes: K >= 1.
        units: hidden layer sizes (S3: 512, 256, 128).
        name: model name.

    Returns:
        Functional model ``[images float32 [N, H, W, C] in [-1, 1], class_id int32 [N]] -> logit float32 [N, 1]``
        of discriminator ``class_id[i]`` (real > 0; S3's sigmoid output is ``sigmoid(logit)``); layer ``bank``.
    """
    h, w, c = check_image_shape(image_shape)
    images = keras.Input(shape=(h, w, c), dtype="float32", name="images")
    class_id = keras.Input(shape=(), dtype="int32", name="class_id")
    flat = layers.Flatten(name="flatten")(images)
    bank = MLPBank(check_num_classes(num_classes), h * w * c, parse_units(units, "discriminator units"), 1,
                   name="bank")
    return keras.Model([images, class_id], bank([flat, class_id]), name=name)


__all__ = ["S3_DISCRIMINATOR_UNITS", "S3_GENERATOR_UNITS", "build_discriminator_bank", "build_generator_bank",
           "parse_units"]
