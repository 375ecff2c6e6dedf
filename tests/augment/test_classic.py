"""Tests for tfaug.augment.classic: spec parsing, presets, and the Keras augmenter eagerly and in tf.data."""
from __future__ import annotations

import numpy as np
import pytest

import tfaug  # noqa: F401  (pins KERAS_BACKEND before keras is imported)
import keras
import tensorflow as tf

from tfaug.augment.classic import PRESETS, AugmentSpec, build_augmenter, describe, parse_augment
from tfaug.errors import TfaugError
from tfaug.utils.images import to_float


def _batch(toy, channels: int = 1) -> np.ndarray:
    images, _ = toy
    x = to_float(images[:16])
    return np.repeat(x, channels, axis=-1) if channels != 1 else x


def test_parse_named_presets():
    assert parse_augment("none") is None
    assert parse_augment("") is None
    assert parse_augment(None) is None
    assert parse_augment("classic") == PRESETS["default"]
    assert parse_augment("digits") == PRESETS["default"]
    assert PRESETS["default"] == AugmentSpec(rotation=0.05, translation=0.1, zoom=0.1, fill="constant")
    assert not PRESETS["default"].flip
    assert parse_augment("classic:objects") == parse_augment("objects") == PRESETS["objects"]
    assert PRESETS["objects"].flip == "horizontal" and PRESETS["objects"].contrast == 0.2
    assert parse_augment("  Classic:S1 ") == PRESETS["s1"]
    assert parse_augment(PRESETS["objects"]) is PRESETS["objects"]
    assert parse_augment(AugmentSpec()) is None


def test_parse_explicit_ranges_and_overrides():
    spec = parse_augment("classic:rotation=0.1,zoom=0.2,flip=horizontal")
    assert spec == AugmentSpec(flip="horizontal", rotation=0.1, zoom=0.2)
    assert spec.translation == spec.contrast == spec.brightness == spec.noise == 0.0
    assert parse_augment("classic:zoom=-0.2:0.3").zoom == (-0.2, 0.3)
    assert parse_augment("classic:rotation=0..0.25").rotation == (0.0, 0.25)
    over = parse_augment("classic:objects,contrast=0.3,noise=0.05")
    assert over.contrast == 0.3 and over.noise == 0.05 and over.flip == "horizontal"
    # Lists (from YAML/JSON) normalise to tuples so equal specs compare equal.
    assert AugmentSpec(rotation=[0, 0.25]) == AugmentSpec(rotation=(0.0, 0.25))


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("sparkle", "objects"),  # unknown preset lists the valid ones
        ("classic:sparkle", "s1"),
        ("classic:rot=0.1", "rotation"),  # unknown key lists the valid keys
        ("classic:rotation=abc", "rotation"),
        ("classic:translation=0:1", "translation"),  # scalar keys take no range
        ("classic:flip=diagonal", "horizontal_and_vertical"),
        ("classic:zoom=1", "zoom"),  # keras needs zoom factors above -1
        ("classic:rotation=0.3:0.1", "lo <= hi"),
        ("classic:contrast=1.5", "contrast"),
        ("classic:noise=-1", "noise"),
        ("classic:rotation=0.1,objects", "first"),
        ("gan:objects", "classic"),
    ],
)
def test_parse_errors_name_the_problem(spec, needle):
    with pytest.raises(TfaugError, match=needle):
        parse_augment(spec)


def test_s1_preset_maps_to_keras_conventions():
    s1 = PRESETS["s1"]
    assert s1.flip == "horizontal"
    assert s1.rotation == (0.0, 0.25)  # 0..90 degrees as a fraction of a full turn
    lo, hi = s1.zoom
    # Keras shows (1 + f) x the field of view, so content scale = 1 / (1 + f) must span 0.8..1.5.
    assert 1.0 / (1.0 + hi) == pytest.approx(0.8)
    assert 1.0 / (1.0 + lo) == pytest.approx(1.5)
    # Behavioural check of the convention: f = lo enlarges a centred square, f = hi shrinks it.
    img = -np.ones((1, 16, 16, 1), np.float32)
    img[:, 6:10, 6:10] = 1.0
    bright = lambda f: int((np.asarray(keras.layers.RandomZoom((f, f), seed=0)(img, training=True)) > 0).sum())
    assert bright(lo) > 16 > bright(hi)


def test_describe():
    assert describe("none") == "no augmentation"
    text = describe("s1")
    assert "horizontal flip" in text and "0..90°" in text and "0.80-1.50x" in text
    assert "±18°" in describe("classic")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("spec", ["classic", "objects", "s1", "classic:brightness=0.3,contrast=0.5,noise=0.2"])
def test_augmenter_preserves_shape_dtype_range_and_changes_images(toy, spec, channels):
    x = _batch(toy, channels)
    aug = build_augmenter(spec, seed=3)
    y = aug(x, training=True)
    assert tuple(y.shape) == x.shape and y.dtype == tf.float32
    y = np.asarray(y)
    assert y.min() >= -1.0 and y.max() <= 1.0
    assert np.abs(y - x).mean() > 1e-3


def test_none_builds_nothing():
    assert build_augmenter("none") is None
    assert build_augmenter(AugmentSpec()) is None
    assert build_augmenter("classic:rotation=0,zoom=0:0") is None


def test_augmenter_is_deterministic_given_seed(toy):
    x = _batch(toy)
    a = np.asarray(build_augmenter("objects", seed=7)(x, training=True))
    b = np.asarray(build_augmenter("objects", seed=7)(x, training=True))
    c = np.asarray(build_augmenter("objects", seed=8)(x, training=True))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


@pytest.mark.parametrize("channels", [1, 3])
def test_augmenter_runs_inside_tf_data_map(toy, channels):
    x = np.concatenate([_batch(toy, channels)] * 2)
    aug = build_augmenter("objects", seed=0)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(5).map(lambda b: aug(b, training=True))
    assert ds.element_spec.shape.as_list() == [None, 8, 8, channels]
    assert ds.element_spec.dtype == tf.float32
    out = np.concatenate(list(ds.as_numpy_iterator()))
    assert out.shape == x.shape
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert np.abs(out - x).mean() > 1e-3


def test_s1_preset_flips_horizontally():
    aug = build_augmenter("s1", seed=0)
    flip = aug.layers[0]
    assert isinstance(flip, keras.layers.RandomFlip) and flip.mode == "horizontal"
    x = np.tile(np.linspace(-1, 1, 8, dtype=np.float32)[None, None, :, None], (64, 8, 1, 1))  # left-right ramp
    y = np.asarray(flip(x, training=True))
    flipped = np.all(np.isclose(y, x[:, :, ::-1]), axis=(1, 2, 3))
    kept = np.all(np.isclose(y, x), axis=(1, 2, 3))
    assert np.all(flipped | kept) and 10 < flipped.sum() < 54


def test_augmenter_config_round_trips():
    aug = build_augmenter("classic:objects,noise=0.1", seed=1)
    clone = keras.Sequential.from_config(aug.get_config())
    assert [type(layer).__name__ for layer in clone.layers] == [type(layer).__name__ for layer in aug.layers]
    assert type(clone.layers[-1]).__name__ == "ClipRange"
