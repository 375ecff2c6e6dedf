"""Shared helpers of the network builders: image-shape validation, resolution planning, DCGAN initialisers.

Every builder is sized from the image shape instead of hard-coding 28x28 or 64x64, so the same code serves
8x8 digits, 25x25 faces, 28x28 MNIST, 32x32 CIFAR and 64x64 coins (any H, W in [8, 128], square or not).
"""
from __future__ import annotations

import math

import keras

from tfaug.errors import TfaugError

# Smallest side of the generator's start grid / the discriminator's last feature map, in pixels.
MIN_GRID = 4


def check_image_shape(image_shape) -> tuple[int, int, int]:
    """Validate ``(H, W, C)`` and return it as a tuple of Python ints.

    Args:
        image_shape: ``(height, width, channels)``; height and width >= ``MIN_GRID`` (the builders are
            designed and tested for 8..128), channels >= 1.

    Raises:
        TfaugError: the shape is not three positive integers of usable size.
    """
    try:
        h, w, c = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise TfaugError(f"image_shape must be (height, width, channels), got {image_shape!r}") from None
    if h < MIN_GRID or w < MIN_GRID or c < 1:
        raise TfaugError(f"image_shape {image_shape!r} is too small; height and width must be >= {MIN_GRID} "
                         "and channels >= 1")
    return h, w, c


def check_num_classes(num_classes) -> int:
    """Validate a class count (>= 1) and return it as an int."""
    if int(num_classes) != num_classes or int(num_classes) < 1:
        raise TfaugError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


def num_resamplings(height: int, width: int) -> int:
    """How many 2x up/down-samplings take the smaller side from ``[MIN_GRID, 2*MIN_GRID)`` to the image.

    8 -> 1, 25 -> 2, 28 -> 2, 32 -> 3, 64 -> 4, 128 -> 5. The same count is used for both sides so that
    non-square images keep their aspect ratio in the start grid.
    """
    return max(0, int(math.floor(math.log2(min(height, width) / MIN_GRID))))


def plan_generator(height: int, width: int) -> tuple[int, int, int]:
    """Start grid and upsampling count of a generator for an ``height x width`` image.

    Returns:
        ``(start_h, start_w, n_up)`` with ``start * 2**n_up >= side`` for both sides; the generator
        produces ``start_h * 2**n_up x start_w * 2**n_up`` pixels and center-crops to ``height x width``
        (e.g. 25 -> start 7, n_up 2 -> 28 -> crop 3).
    """
    n = num_resamplings(height, width)
    return math.ceil(height / 2**n), math.ceil(width / 2**n), n


def channel_plan(width: int, steps: int, *, widest: int = 4, grow: bool = False) -> list[int]:
    """Channel counts of ``steps`` successive blocks, between ``width`` and ``widest * width``.

    Args:
        width: base channel count (>= 1).
        steps: number of blocks.
        widest: multiplier of the widest block.
        grow: ``False`` for generators (``4w, 2w, w, w ...``: wide at the coarse start grid), ``True`` for
            discriminators and classifiers (``w, 2w, 4w, 4w ...``: doubling as resolution halves).
    """
    if grow:
        return [min(widest * width, width * 2**i) for i in range(steps)]
    return [max(width, (widest * width) // 2**i) for i in range(steps)]


def dcgan_init(mean: float = 0.0) -> keras.initializers.Initializer:
    """N(mean, 0.02) initialiser (Radford et al. 2016); a fresh instance per layer so each draws its own values.

    Unseeded: reproducibility comes from ``keras.utils.set_random_seed`` before the network is built.
    """
    return keras.initializers.RandomNormal(mean=mean, stddev=0.02)


__all__ = ["MIN_GRID", "check_image_shape", "check_num_classes", "num_resamplings", "plan_generator",
           "channel_plan", "dcgan_init"]
