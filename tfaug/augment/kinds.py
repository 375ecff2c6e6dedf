"""Data kinds and their classic-augmentation presets; the kind of a dataset guessed from its pixels.

A bare ``classic`` means "the strongest classic augmentation for this kind of data" (:func:`resolve_augment`):
the dataset's kind is named or guessed, and each kind has a preset and a milder fallback (their ranges are stated
in ``tfaug.augment.classic.PRESETS``). Whether augmentation helps at all is decided per training draw on its own
validation split (``tfaug.training.augment_choice``), never on test data; this module only holds the names and
the guess, and imports no TensorFlow.

Kinds:
    ``glyphs``   digits, characters, symbols, sketches: mostly one flat background with strokes on it; no flips.
    ``photos``   natural images of objects and scenes: horizontal flips, colour and geometry jitter.
    ``faces``    aligned faces: horizontal flips, small geometry and lighting changes.
    ``textures`` orientation-free patterns: every flip and any rotation.
"""
from __future__ import annotations

import numpy as np

from tfaug.errors import TfaugError

KINDS = ("glyphs", "photos", "faces", "textures")
# kind -> (preset, milder preset); the candidates of the validation choice are these two and no augmentation.
KIND_PRESETS = {kind: (kind, f"{kind}-mild") for kind in KINDS}
AUTO = "classic:auto"
_AUTO_TEXTS = frozenset({"classic", "classic:auto", "auto"})


def is_auto(spec) -> bool:
    """True for a bare ``classic`` (or ``classic:auto``): a preset still to be chosen from the data."""
    return isinstance(spec, str) and spec.strip().lower() in _AUTO_TEXTS


def detect_kind(images: np.ndarray) -> str:
    """Guess ``glyphs`` or ``photos`` from pixels (faces and textures are only ever named, never guessed).

    Glyph images have one flat background that covers most of the border and about half of the image or more:
    here, over up to 200 images, at least 70 % of the border pixels and 45 % of all pixels lie within 10 % of
    the value range of each image's median border value, and the images are greyscale (or colour with equal
    channels). MNIST (1.00 / 0.83) and scikit-learn's 8x8 digits (0.77 / 0.52) are glyphs; the LFW crops
    (0.52 / 0.49) are photos.

    Args:
        images: [N, H, W, C] uint8 in [0, 255] or float in [-1, 1]; N >= 1.

    Returns:
        ``glyphs`` or ``photos``.
    """
    x = np.asarray(images)
    if x.ndim != 4 or len(x) == 0:
        raise TfaugError(f"cannot guess the data kind of images with shape {x.shape}; expected [N, H, W, C]")
    x = x[np.linspace(0, len(x) - 1, min(len(x), 200)).astype(int)]
    x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else (x.astype(np.float32) + 1.0) / 2.0
    if x.shape[-1] == 3:
        if np.mean(np.abs(x[..., 0] - x[..., 1]) + np.abs(x[..., 1] - x[..., 2])) > 0.02:
            return "photos"
        x = x[..., :1]
    grey = x[..., 0]
    border = np.concatenate([grey[:, 0, :], grey[:, -1, :], grey[:, :, 0], grey[:, :, -1]], axis=1)
    background = np.median(border, axis=1)[:, None, None]
    flat_border = np.mean(np.abs(border - background[:, :, 0]) < 0.1)
    flat_image = np.mean(np.abs(grey - background) < 0.1)
    return "glyphs" if flat_border >= 0.7 and flat_image >= 0.45 else "photos"


def kind_candidates(kind: str) -> tuple[str, str, str]:
    """The validation choice's candidates for ``kind``: ``(classic:KIND, classic:KIND-mild, none)``."""
    if kind not in KIND_PRESETS:
        raise TfaugError(f"unknown data kind {kind!r}; known kinds: {', '.join(KINDS)}")
    strong, mild = KIND_PRESETS[kind]
    return f"classic:{strong}", f"classic:{mild}", "none"


def resolve_augment(spec, images=None, kind: str | None = None):
    """A concrete augmentation spec: a bare ``classic`` becomes the preset of the (named or guessed) kind.

    Args:
        spec: an augmentation spec (see ``tfaug.augment.classic.parse_augment``), a bare ``classic`` /
            ``classic:auto``, or None.
        images: the training images the kind is guessed from (needed for a bare ``classic`` without ``kind``).
        kind: one of :data:`KINDS`, or None to guess it.

    Returns:
        ``spec`` unchanged unless it is a bare ``classic``; then ``classic:KIND``.
    """
    if not is_auto(spec):
        return spec
    if kind is None:
        if images is None:
            raise TfaugError("a bare 'classic' picks its preset from the data; give the images or a data kind "
                             f"({', '.join(KINDS)}), or name a preset such as classic:glyphs")
        kind = detect_kind(images)
    return kind_candidates(kind)[0]


__all__ = ["AUTO", "KINDS", "KIND_PRESETS", "detect_kind", "is_auto", "kind_candidates", "resolve_augment"]
