"""Bring images of mixed sizes and channel counts to one shape: the stated resize and colour policy.

Resize policy (every source, the same rule): an image of another size is scaled **keeping its aspect ratio**
until it covers the target, then **centre-cropped** to it (``PIL.ImageOps.fit``, bilinear); nothing is padded
and nothing is stretched. The target is ``image_size`` when given, else the folder's most common size (so a
folder whose images all have one size, 300x400 say, is used at that full size).

Colour policy: ``channels`` 1 turns colour images to greyscale (ITU-R 601 luma, PIL's ``convert("L")``);
``channels`` 3 repeats a greyscale image into R, G and B; ``None`` keeps greyscale when every image is
greyscale and makes everything RGB otherwise. Each load warns at most once per kind of change (colour,
size), with counts, so a user is told but not flooded.
"""
from __future__ import annotations

import warnings
from collections import Counter

import numpy as np

from tfaug.errors import TfaugError

__all__ = ["MIN_SIDE", "MAX_SIDE", "RESIZE_POLICY", "conform_images", "fit_image", "parse_image_size"]

MIN_SIDE, MAX_SIDE = 8, 4096  # accepted --image-size sides, in pixels
RESIZE_POLICY = "aspect ratio kept, then centre-cropped"


def parse_image_size(text) -> tuple[int, int]:
    """``"HxW"`` (or ``"N"`` for N x N, or a pair) -> ``(H, W)``, each side in [MIN_SIDE, MAX_SIDE].

    Raises:
        TfaugError: not of that form or out of range.
    """
    if isinstance(text, (tuple, list)) and len(text) == 2:
        parts = [str(v) for v in text]
    else:
        parts = str(text).lower().replace(" ", "").split("x")
        parts = parts * 2 if len(parts) == 1 else parts
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise TfaugError(f"image size must be HEIGHTxWIDTH in pixels, e.g. 64x64 or 300x400, got {text!r}")
    h, w = int(parts[0]), int(parts[1])
    if not (MIN_SIDE <= h <= MAX_SIDE and MIN_SIDE <= w <= MAX_SIDE):
        raise TfaugError(f"image size {h}x{w} is out of range; each side must be in [{MIN_SIDE}, {MAX_SIDE}]")
    return h, w


def fit_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [H, W] or [H, W, C] -> uint8 [height, width(, C)]: aspect ratio kept, then centre-cropped."""
    from PIL import Image, ImageOps

    if image.shape[:2] == (height, width):
        return image
    squeeze = image.ndim == 3 and image.shape[-1] == 1
    im = Image.fromarray(image[..., 0] if squeeze else image)
    out = np.asarray(ImageOps.fit(im, (width, height), method=Image.Resampling.BILINEAR, centering=(0.5, 0.5)),
                     np.uint8)
    return out[..., None] if squeeze else out


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """uint8 [H, W] / [H, W, 1] / [H, W, 3] -> [H, W, channels] (channels 1 or 3)."""
    from PIL import Image

    grey = image.ndim == 2 or image.shape[-1] == 1
    if channels == 1:
        if grey:
            return image.reshape(*image.shape[:2], 1)
        return np.asarray(Image.fromarray(image).convert("L"), np.uint8)[..., None]
    if grey:
        return np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=-1)
    return image


def conform_images(images, image_size=None, channels: int | None = None, where: str = "the dataset",
                   stacklevel: int = 3) -> np.ndarray:
    """Stack uint8 images of any sizes and channel counts into uint8 [N, H, W, C] (the module's policies).

    Args:
        images: a sequence (or array) of uint8 [H, W] / [H, W, 1] / [H, W, 3] images; N >= 1.
        image_size: ``(H, W)`` or ``"HxW"``; None = the most common size among ``images``.
        channels: 1, 3, or None (greyscale only if every image is greyscale, else RGB).
        where: how warnings name the images' origin.
        stacklevel: passed to ``warnings.warn``.

    Raises:
        TfaugError: no images, or ``channels``/``image_size`` out of range.
    """
    images = list(images)
    if not images:
        raise TfaugError(f"{where} has no images")
    if channels not in (None, 1, 3):
        raise TfaugError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
    grey = [a.ndim == 2 or a.shape[-1] == 1 for a in images]
    target_c = channels or (1 if all(grey) else 3)
    n_grey_to_rgb = sum(grey) if target_c == 3 else 0
    n_rgb_to_grey = (len(images) - sum(grey)) if target_c == 1 else 0
    if image_size is None:
        (h, w), _ = Counter(a.shape[:2] for a in images).most_common(1)[0]
        how = "the most common size; choose another with --image-size HxW"
    else:
        (h, w), how = parse_image_size(image_size), "--image-size"
    n_resized = sum(a.shape[:2] != (h, w) for a in images)
    out = np.stack([fit_image(_to_channels(a, target_c), h, w) for a in images])
    if n_grey_to_rgb:
        warnings.warn(f"{n_grey_to_rgb} of {len(images)} greyscale images in {where} became RGB (grey copied to R, "
                      "G and B); pass --channels 1 to keep greyscale", stacklevel=stacklevel)
    if n_rgb_to_grey:
        warnings.warn(f"{n_rgb_to_grey} of {len(images)} colour images in {where} became greyscale (--channels 1)",
                      stacklevel=stacklevel)
    if n_resized:
        warnings.warn(f"resized {n_resized} of {len(images)} images in {where} to {h}x{w} ({how}; "
                      f"{RESIZE_POLICY})", stacklevel=stacklevel)
    return out
