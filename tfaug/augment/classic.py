"""Classic augmentation: Keras 3 preprocessing layers behind explicit, named specs.

An :class:`AugmentSpec` states every range in documented units; :data:`PRESETS` names the useful ones: one
preset and a milder one per data kind (``glyphs``, ``photos``, ``faces``, ``textures`` and ``*-mild``; see
``tfaug.augment.kinds``), the first wave's ``default``/``digits``/``objects``, and ``s1`` for study S1.
:func:`build_augmenter` turns a spec into a ``keras.Sequential`` that runs eagerly or inside
``tf.data.Dataset.map`` on float32 NHWC batches in [-1, 1] and returns the same shape and dtype, clipped
to [-1, 1]. Call it with ``training=True``.

Spec strings (CLI, configs): ``none``; ``classic`` (a bare ``classic`` is resolved from the data by
``tfaug.augment.kinds.resolve_augment``; here it means ``default``); ``classic:objects`` or ``objects``;
``classic:rotation=0.1,zoom=0.2,flip=horizontal`` (explicit ranges, every unnamed range 0);
``classic:objects,contrast=0.3`` (a preset with overrides). A range is a number ``v`` (meaning
``-v..v``) or ``lo:hi`` / ``lo..hi``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import keras

from tfaug.augment.affine import RandomAffine
from tfaug.errors import TfaugError

FLIPS = ("", "horizontal", "vertical", "horizontal_and_vertical")
FILLS = ("reflect", "constant", "nearest", "wrap")
_RANGE_KEYS = ("rotation", "zoom")
_SCALAR_KEYS = ("translation", "contrast", "brightness", "noise", "shear", "erasing", "saturation")


def _as_range(name: str, value, bound: float, open_low: bool = False):
    """Validate a symmetric magnitude ``v`` (meaning -v..v) or an ordered ``(lo, hi)`` pair within ±bound.

    ``open_low`` excludes ``-bound`` itself (keras' zoom factor must stay above -1).
    """
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise TfaugError(f"augmentation {name} must be a number or a (lo, hi) pair, got {value!r}")
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            lo = hi = float("nan")
        ok = math.isfinite(lo) and math.isfinite(hi) and lo <= hi <= bound and (lo > -bound if open_low else lo >= -bound)
        if not ok:
            low_op = "<" if open_low else "<="
            raise TfaugError(f"augmentation {name} range {value!r} must satisfy -{bound:g} {low_op} lo <= hi <= {bound:g}")
        return (lo, hi)
    return _as_scalar(name, value, bound, open_high=open_low)


def _as_scalar(name: str, value, bound: float, open_high: bool = False) -> float:
    """Validate a magnitude in [0, bound] (or [0, bound) with ``open_high``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not (math.isfinite(v) and 0.0 <= v and (v < bound if open_high else v <= bound)):
        high = f"{bound:g})" if open_high else f"{bound:g}]"
        raise TfaugError(f"augmentation {name} must be a number in [0, {high}, got {value!r}")
    return v


def _nonzero(value) -> bool:
    return any(v != 0.0 for v in value) if isinstance(value, tuple) else value != 0.0


@dataclass(frozen=True)
class AugmentSpec:
    """Explicit classic-augmentation ranges; the all-zero spec means no augmentation.

    Attributes:
        flip: ``""`` (none), ``horizontal``, ``vertical`` or ``horizontal_and_vertical``.
        rotation: fraction of a full turn, as ``keras.layers.RandomRotation``'s factor: ``v`` in [0, 1]
            rotates by U(-v, v) turns (0.05 = ±18°); ``(lo, hi)`` with -1 <= lo <= hi <= 1 by U(lo, hi)
            (positive = counter-clockwise).
        zoom: ``keras.layers.RandomZoom`` height_factor (aspect ratio kept). Keras samples a factor
            ``f`` and shows ``1 + f`` times the field of view, so the content scale is ``1 / (1 + f)``:
            negative = zoom in (bigger content), positive = zoom out. ``v`` in [0, 1) means U(-v, v);
            ``(lo, hi)`` with -1 < lo <= hi <= 1.
        translation: shift by U(-v, v) of the height and width, v in [0, 1].
        contrast: ``keras.layers.RandomContrast`` factor in [0, 1]: contrast scaled by U(1 - v, 1 + v).
        brightness: shift by U(-v, v) of the [-1, 1] value range (0.1 = ±0.2 in [-1, 1] units), v in [0, 1].
        noise: additive Gaussian noise std in [-1, 1] units, >= 0.
        shear: ``keras.layers.RandomShear`` x and y factor in [0, 1]: shear by U(-v, v) along each axis.
        erasing: probability in [0, 1] that ``keras.layers.RandomErasing`` blanks one rectangle of 2-20 % of the
            image with noise (Zhong et al. 2020).
        saturation: colour images only: ``keras.layers.RandomSaturation`` factor in [0, 1] (saturation scaled
            around the original by up to ±v; ignored on greyscale batches).
        fill: how rotation/zoom/translation fill pixels that come from outside the image: ``reflect``
            (continues textured backgrounds; photos), ``constant`` (fills with -1, i.e. black: right for
            digits/characters on a black background, where reflecting would mirror strokes into the image),
            ``nearest`` or ``wrap``.
    """

    flip: str = ""
    rotation: float | tuple = 0.0
    zoom: float | tuple = 0.0
    translation: float = 0.0
    contrast: float = 0.0
    brightness: float = 0.0
    noise: float = 0.0
    fill: str = "reflect"
    shear: float = 0.0
    erasing: float = 0.0
    saturation: float = 0.0

    def __post_init__(self) -> None:
        # Normalise (lists from YAML/JSON become tuples, ints floats) so equal specs compare equal.
        flip = "" if self.flip in (None, "none") else str(self.flip)
        if flip not in FLIPS:
            raise TfaugError(f"unknown flip {self.flip!r}; valid flips: none, {', '.join(FLIPS[1:])}")
        object.__setattr__(self, "flip", flip)
        object.__setattr__(self, "rotation", _as_range("rotation", self.rotation, 1.0))
        object.__setattr__(self, "zoom", _as_range("zoom", self.zoom, 1.0, open_low=True))
        for name in ("translation", "contrast", "brightness", "shear", "erasing", "saturation"):
            object.__setattr__(self, name, _as_scalar(name, getattr(self, name), 1.0))
        object.__setattr__(self, "noise", _as_scalar("noise", self.noise, math.inf))
        if self.fill not in FILLS:
            raise TfaugError(f"unknown fill {self.fill!r}; valid fills: {', '.join(FILLS)}")

    @property
    def is_identity(self) -> bool:
        """True when the spec changes nothing (every range is zero and there is no flip)."""
        return not self.flip and not any(_nonzero(getattr(self, k)) for k in _RANGE_KEYS + _SCALAR_KEYS)


PRESETS: dict[str, AugmentSpec] = {
    # Safe for digits/characters: no flip (a mirrored 2 is not a 2); the calibration run's ranges.
    "default": AugmentSpec(rotation=0.05, translation=0.1, zoom=0.1, fill="constant"),
    "digits": AugmentSpec(rotation=0.05, translation=0.1, zoom=0.1, fill="constant"),
    "objects": AugmentSpec(
        flip="horizontal", rotation=0.05, zoom=0.1, translation=0.1, contrast=0.2, brightness=0.1
    ),
    # S1: horizontal flip + rotation in [0, 90] degrees + zoom in [0.8, 1.5] (content scale).
    # Rotation: 90 degrees = 0.25 turn, so (0, 0.25). Zoom: keras shows (1 + f) x the field of view, so a
    # content scale s needs f = 1/s - 1: s = 1.5 -> f = -1/3 (zoom in), s = 0.8 -> f = +0.25 (zoom out).
    "s1": AugmentSpec(flip="horizontal", rotation=(0.0, 0.25), zoom=(1.0 / 1.5 - 1.0, 1.0 / 0.8 - 1.0)),
    "none": AugmentSpec(),
    # Per data kind (tfaug.augment.kinds): what a bare `classic` picks, and a milder fallback each. Ranges:
    # glyphs: rotation ±18°, shift ±10 %, content scale 0.91-1.11x, black fill, no flip (a mirrored 2 is no 2);
    # mild: half of each.
    "glyphs": AugmentSpec(rotation=0.05, translation=0.1, zoom=0.1, fill="constant"),
    "glyphs-mild": AugmentSpec(rotation=0.025, translation=0.05, zoom=0.05, fill="constant"),
    # photos: horizontal flip, rotation ±14°, scale 0.91-1.11x, shift ±10 %, contrast x0.8-1.2, brightness ±10 %
    # of the range, saturation x0.8-1.2 (colour only), random erasing of 2-20 % of the image with p = 0.25;
    # mild: flip, shift ±5 %, contrast x0.9-1.1, brightness ±5 %.
    "photos": AugmentSpec(flip="horizontal", rotation=0.04, zoom=0.1, translation=0.1, contrast=0.2,
                          brightness=0.1, saturation=0.2, erasing=0.25),
    "photos-mild": AugmentSpec(flip="horizontal", translation=0.05, contrast=0.1, brightness=0.05),
    # faces (aligned): horizontal flip, rotation ±11°, scale 0.93-1.09x, shift ±6 %, contrast x0.8-1.2,
    # brightness ±10 %; mild: flip, contrast x0.9-1.1, brightness ±5 %.
    "faces": AugmentSpec(flip="horizontal", rotation=0.03, zoom=0.08, translation=0.06, contrast=0.2,
                         brightness=0.1),
    "faces-mild": AugmentSpec(flip="horizontal", contrast=0.1, brightness=0.05),
    # textures: both flips, any rotation (±180°, reflected fill), contrast x0.8-1.2, brightness ±10 %;
    # mild: both flips only.
    "textures": AugmentSpec(flip="horizontal_and_vertical", rotation=0.5, contrast=0.2, brightness=0.1),
    "textures-mild": AugmentSpec(flip="horizontal_and_vertical"),
}


def _parse_value(key: str, text: str):
    """One ``key=value`` value: a flip name, a number, or a ``lo:hi`` / ``lo..hi`` range."""
    if key in ("flip", "fill"):
        return text
    parts = text.split("..") if ".." in text else text.split(":")
    try:
        nums = tuple(float(p) for p in parts)
    except ValueError:
        nums = ()
    if len(nums) == 1:
        return nums[0]
    if len(nums) == 2 and key in _RANGE_KEYS:
        return nums
    form = "a number or a range lo:hi" if key in _RANGE_KEYS else "a number"
    raise TfaugError(f"bad value {text!r} for augmentation key {key!r}; expected {form}")


def _parse_items(body: str) -> AugmentSpec:
    """``objects`` | ``rotation=0.1,zoom=0.2`` | ``objects,contrast=0.3`` -> spec."""
    items = [s.strip() for s in body.split(",") if s.strip()]
    keys = [f.name for f in dataclasses.fields(AugmentSpec)]
    base, changes = AugmentSpec(), {}
    for i, item in enumerate(items):
        if "=" not in item:
            if i != 0:
                raise TfaugError(f"preset name {item!r} must come first in an augmentation spec, before key=value items")
            if item not in PRESETS:
                raise TfaugError(f"unknown augmentation preset {item!r}; valid presets: {', '.join(sorted(PRESETS))}")
            base = PRESETS[item]
            continue
        key, _, value = (s.strip() for s in item.partition("="))
        if key not in keys:
            raise TfaugError(f"unknown augmentation key {key!r}; valid keys: {', '.join(keys)}")
        changes[key] = _parse_value(key, value)
    return dataclasses.replace(base, **changes)


def parse_augment(spec: str | AugmentSpec | None) -> AugmentSpec | None:
    """Parse an augmentation spec; ``None`` means no augmentation.

    Args:
        spec: an :class:`AugmentSpec`, ``None``/``""``/``"none"``, ``"classic"``, ``"classic:PRESET"``,
            a bare preset name, or ``"classic:key=value,..."`` (see the module docstring).

    Returns:
        The spec, or ``None`` when it changes nothing.

    Raises:
        TfaugError: unknown preset, key or flip, or a value that is not a valid range.
    """
    if spec is None:
        return None
    if isinstance(spec, AugmentSpec):
        return None if spec.is_identity else spec
    if not isinstance(spec, str):
        raise TfaugError(f"an augmentation spec must be a string or AugmentSpec, got {type(spec).__name__}")
    text = spec.strip().lower()
    if text in ("", "none"):
        return None
    head, sep, body = text.partition(":")
    if sep and head != "classic":
        raise TfaugError(f"unknown augmentation kind {head!r} in {spec!r}; use classic:PRESET or classic:key=value,...")
    if not sep:
        body = head
    if body in ("", "classic"):
        body = "default"
    parsed = _parse_items(body)
    return None if parsed.is_identity else parsed


@keras.saving.register_keras_serializable(package="tfaug")
class ClipRange(keras.layers.Layer):
    """Clip values to ``[low, high]`` (augmentation must not leave the [-1, 1] image range)."""

    def __init__(self, low: float = -1.0, high: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high = float(low), float(high)

    def call(self, inputs):
        return keras.ops.clip(inputs, self.low, self.high)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high}


def build_augmenter(spec: str | AugmentSpec | None, seed: int = 0, channels: int | None = None) -> keras.Sequential | None:
    """Build the augmentation model for a spec.

    Args:
        spec: anything :func:`parse_augment` accepts.
        seed: base seed; layer ``i`` gets ``seed + i``, so two augmenters built with the same seed give the
            same outputs for the same sequence of eager calls.
        channels: channel count of the batches when known; colour-only layers (saturation) are left out for
            greyscale (1) batches. None keeps them.

    Returns:
        ``None`` for no augmentation, else a ``keras.Sequential`` mapping float32 [B, H, W, C] in [-1, 1] to
        the same shape, dtype and range. Call it with ``training=True`` (eagerly or in ``Dataset.map``).
    """
    parsed = parse_augment(spec)
    if parsed is None:
        return None
    L = keras.layers
    geo = {"fill_mode": parsed.fill, "fill_value": -1.0}  # -1 = black in [-1, 1]; used by fill="constant" only
    factories = []
    if parsed.flip:
        factories.append(lambda s: L.RandomFlip(parsed.flip, seed=s))
    if _nonzero(parsed.rotation) or _nonzero(parsed.zoom) or parsed.translation:
        # One composed warp instead of three chained layers: each resampling blurs small images.
        factories.append(lambda s: RandomAffine(parsed.rotation, parsed.zoom, parsed.translation, seed=s, **geo))
    if parsed.contrast:
        factories.append(lambda s: L.RandomContrast(parsed.contrast, value_range=(-1.0, 1.0), seed=s))
    if parsed.brightness:
        factories.append(lambda s: L.RandomBrightness(parsed.brightness, value_range=(-1.0, 1.0), seed=s))
    if parsed.shear:
        factories.append(lambda s: L.RandomShear(parsed.shear, parsed.shear, seed=s, **geo))
    if parsed.saturation and channels in (None, 3):
        factories.append(lambda s: L.RandomSaturation(parsed.saturation, value_range=(-1.0, 1.0), seed=s))
    if parsed.noise:
        factories.append(lambda s: L.GaussianNoise(parsed.noise, seed=s))
    if parsed.erasing:
        factories.append(lambda s: L.RandomErasing(parsed.erasing, scale=(0.02, 0.2), value_range=(-1.0, 1.0),
                                                   seed=s))
    layers = [make(seed + i) for i, make in enumerate(factories)] + [ClipRange(-1.0, 1.0)]
    return keras.Sequential(layers, name="classic_augmenter")


def _fmt_range(value, unit: str = "", scale: float = 1.0) -> str:
    if isinstance(value, tuple):
        return f"{value[0] * scale:g}..{value[1] * scale:g}{unit}"
    return f"±{value * scale:g}{unit}"


def describe(spec: str | AugmentSpec | None) -> str:
    """A one-line, human-readable summary of a spec for reports, e.g. ``classic: rotation ±18°, ...``."""
    parsed = parse_augment(spec)
    if parsed is None:
        return "no augmentation"
    parts = []
    if parsed.flip:
        parts.append(f"{parsed.flip.replace('_', ' ')} flip")
    if _nonzero(parsed.rotation):
        parts.append(f"rotation {_fmt_range(parsed.rotation, '°', 360.0)}")
    if _nonzero(parsed.zoom):
        lo, hi = parsed.zoom if isinstance(parsed.zoom, tuple) else (-parsed.zoom, parsed.zoom)
        parts.append(f"zoom scale {1.0 / (1.0 + hi):.2f}-{1.0 / (1.0 + lo):.2f}x")
    if parsed.translation:
        parts.append(f"translation {_fmt_range(parsed.translation, '%', 100.0)}")
    if parsed.contrast:
        parts.append(f"contrast x{1 - parsed.contrast:g}-{1 + parsed.contrast:g}")
    if parsed.brightness:
        parts.append(f"brightness {_fmt_range(parsed.brightness, '% of range', 100.0)}")
    if parsed.shear:
        parts.append(f"shear ±{parsed.shear:g}")
    if parsed.saturation:
        parts.append(f"saturation x{1 - parsed.saturation:g}-{1 + parsed.saturation:g}")
    if parsed.noise:
        parts.append(f"gaussian noise std {parsed.noise:g}")
    if parsed.erasing:
        parts.append(f"random erasing p={parsed.erasing:g}")
    return "classic: " + ", ".join(parts)
