"""Image conversions at the library's edges and image grids.

Inside the library images are float32 NHWC in [-1, 1]; at the edges (files, serving, reports) uint8 NHWC in
[0, 255]. These helpers are numpy-only so that reports and tests do not need TensorFlow.
"""
from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np

from tfaug.utils.io import atomic_write_bytes


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return np.asarray(images, dtype=np.float32) / 127.5 - 1.0


def as_float_images(images) -> np.ndarray:
    """uint8 [0, 255] or float [-1, 1] images (any shape) -> float32 [-1, 1]; the one copy of this helper."""
    images = np.asarray(images)
    return to_float(images) if images.dtype == np.uint8 else images.astype(np.float32)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """float [-1, 1] (values outside are clipped) -> uint8 [0, 255], rounded."""
    x = np.clip((np.asarray(images, dtype=np.float32) + 1.0) * 127.5, 0.0, 255.0)
    return np.rint(x).astype(np.uint8)


def png_bytes(image: np.ndarray) -> bytes:
    """Encode one uint8 image [H, W, C] (C in {1, 3, 4}) or [H, W] as PNG bytes."""
    from PIL import Image

    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write one uint8 image as PNG, atomically."""
    atomic_write_bytes(path, png_bytes(image))


def make_grid(images: np.ndarray, ncols: int | None = None, pad: int = 1, pad_value: int = 255) -> np.ndarray:
    """Tile uint8 images [N, H, W, C] into one uint8 image [rows*(H+pad)+pad, cols*(W+pad)+pad, C]."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    n, h, w, c = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(max(n, 1))))
    nrows = int(np.ceil(n / ncols)) if n else 1
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        y, x = pad + r * (h + pad), pad + col * (w + pad)
        grid[y : y + h, x : x + w] = images[i]
    return grid


def upscale(image: np.ndarray, min_size: int = 256) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor so the short side is at least ``min_size`` pixels."""
    factor = max(1, int(np.ceil(min_size / max(1, min(image.shape[:2])))))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def save_class_grid(
    path: str | os.PathLike,
    images_per_class: Sequence[np.ndarray],
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Save a grid with one row per class (uint8 images [n, H, W, C] per row), labelled, as a PNG.

    Uses matplotlib (Agg backend) so that rows carry class names; written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [np.asarray(r) for r in images_per_class]
    ncols = max((len(r) for r in rows), default=1)
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(max(4.0, 0.6 * ncols + 1.5), 0.7 * len(rows) + (0.6 if title else 0.2)), squeeze=False
    )
    for i, row in enumerate(rows):
        ax = axes[i, 0]
        grid = make_grid(row, ncols=ncols) if len(row) else np.full((8, 8, 1), 255, np.uint8)
        ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        label = class_names[i] if class_names is not None and i < len(class_names) else str(i)
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
