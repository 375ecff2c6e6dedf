"""Sample images per class from any :class:`~tfaug.synthesis.loader.Generator`, reproducibly.

Seed rule (documented, so served and in-process requests agree): image ``j`` of a request
``(class c, n, seed s)`` is the pair ``(c, s + j)``. When several classes are sampled together
(:func:`sample_per_class`), class ``c`` starts at ``s + CLASS_SEED_STRIDE * c`` so that classes never share
latents. Images are float32 [-1, 1] in the library; :func:`write_samples` writes uint8 PNGs.

Every function takes an optional ``truncation`` psi in [0, 1] (one number for every image; None = none), passed
to ``generator.sample(..., truncation=)`` (see :mod:`tfaug.synthesis.loader`); without it the generator is
called exactly as before, so generators that do not know truncation keep working.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from tfaug.errors import TfaugError
from tfaug.utils.images import make_grid, save_png, to_uint8

__all__ = ["CLASS_SEED_STRIDE", "class_seeds", "sample_class", "sample_per_class", "write_samples"]

# A prime larger than any sensible per-class request, so per-class seed ranges do not overlap.
CLASS_SEED_STRIDE = 1_000_003


def class_seeds(n: int, seed: int) -> np.ndarray:
    """Seeds ``seed, seed + 1, ..., seed + n - 1`` as int64 [n]: image j of a request uses ``seed + j``."""
    if int(n) < 0:
        raise TfaugError(f"The number of images must be >= 0, got {n}.")
    return np.arange(int(seed), int(seed) + int(n), dtype=np.int64)


def _check_class(generator, class_id: int) -> int:
    if not 0 <= int(class_id) < generator.num_classes:
        raise TfaugError(f"Class id {class_id} is out of range; this generator has classes 0..{generator.num_classes - 1}.")
    return int(class_id)


def _sample(generator, labels: np.ndarray, seeds: np.ndarray, truncation) -> np.ndarray:
    if truncation is None:
        return np.asarray(generator.sample(labels, seeds), np.float32)
    if getattr(generator, "supports_truncation", True) is False:
        raise TfaugError(f"{generator!r} cannot truncate; sample it without a truncation (or re-export it).")
    return np.asarray(generator.sample(labels, seeds, truncation=truncation), np.float32)


def sample_class(generator, class_id: int, n: int, seed: int = 0, truncation: float | None = None) -> np.ndarray:
    """``n`` images of one class: float32 [n, H, W, C] in [-1, 1], image j from ``(class_id, seed + j)``,
    truncated with psi ``truncation`` in [0, 1] when given."""
    class_id = _check_class(generator, class_id)
    seeds = class_seeds(n, seed)
    return _sample(generator, np.full(len(seeds), class_id, np.int32), seeds, truncation)


def _counts(generator, n_per_class: int | Sequence[int] | Mapping[int, int]) -> dict[int, int]:
    """Normalise the three request forms to ``{class_id: count}`` in class order."""
    k = generator.num_classes
    if isinstance(n_per_class, Mapping):
        counts = {_check_class(generator, c): int(n) for c, n in n_per_class.items()}
    elif isinstance(n_per_class, (int, np.integer)):
        counts = {c: int(n_per_class) for c in range(k)}
    else:
        seq = list(n_per_class)
        if len(seq) != k:
            raise TfaugError(f"n_per_class lists {len(seq)} counts but the generator has {k} classes.")
        counts = {c: int(n) for c, n in enumerate(seq)}
    if any(n < 0 for n in counts.values()):
        raise TfaugError(f"Per-class counts must be >= 0, got {counts}.")
    return dict(sorted(counts.items()))


def sample_per_class(
    generator, n_per_class: int | Sequence[int] | Mapping[int, int], seed: int = 0, truncation: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Images for several classes in one call.

    Args:
        generator: any Generator.
        n_per_class: one count for every class, a list with one count per class, or ``{class_id: count}``.
        seed: base seed; class c uses seeds ``seed + CLASS_SEED_STRIDE * c + j``.
        truncation: optional psi in [0, 1] for every image (None = no truncation).

    Returns:
        ``(images float32 [N, H, W, C] in [-1, 1], labels int32 [N])``, grouped by class in ascending order.
    """
    counts = _counts(generator, n_per_class)
    labels = np.concatenate([np.full(n, c, np.int32) for c, n in counts.items()] or [np.zeros(0, np.int32)])
    seeds = np.concatenate(
        [class_seeds(n, int(seed) + CLASS_SEED_STRIDE * c) for c, n in counts.items()] or [np.zeros(0, np.int64)]
    )
    if len(labels) == 0:
        return np.zeros((0, *generator.image_shape), np.float32), labels
    return _sample(generator, labels, seeds, truncation), labels


def write_samples(generator, class_id: int, n: int, seed: int, out_dir: str | os.PathLike,
                  truncation: float | None = None) -> list[Path]:
    """Write ``n`` images of one class as uint8 PNGs ``class{c}_seed{s}.png`` plus ``grid.png`` (atomic writes),
    truncated with psi ``truncation`` when given.

    Returns:
        The image paths in request order, then the grid path.
    """
    images = to_uint8(sample_class(generator, class_id, n, seed, truncation))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for s, image in zip(class_seeds(n, seed), images):
        path = out / f"class{int(class_id)}_seed{int(s)}.png"
        save_png(path, image)
        paths.append(path)
    grid = out / "grid.png"
    save_png(grid, make_grid(images))
    return paths + [grid]
