"""Tests for tfaug.augment.diffaug: policy parsing, each transform's effect, gradients and tf.function use."""
from __future__ import annotations

import numpy as np
import pytest

import tfaug  # noqa: F401  (pins KERAS_BACKEND before keras is imported)
import keras
import tensorflow as tf

from tfaug.augment.diffaug import POLICIES, diff_augment, parse_policy
from tfaug.errors import TfaugError


def _images(channels: int, n: int = 6, low: float = -1.0) -> tf.Tensor:
    rng = np.random.default_rng(channels)
    return tf.constant(rng.uniform(low, 1.0, (n, 8, 8, channels)).astype(np.float32))


def test_parse_policy():
    assert parse_policy("translation,cutout") == ("translation", "cutout")
    assert parse_policy(" color , cutout ,") == ("color", "cutout")
    assert parse_policy("") == () and parse_policy("none") == () and parse_policy(None) == ()
    assert parse_policy(("cutout", "color")) == ("cutout", "color")
    assert parse_policy("cutout,cutout") == ("cutout",)
    assert set(POLICIES) == {"color", "translation", "cutout"}
    with pytest.raises(TfaugError, match="translation"):
        parse_policy("translation,rotate")


def test_empty_policy_is_identity():
    x = _images(3)
    np.testing.assert_array_equal(diff_augment(x, "").numpy(), x.numpy())
    np.testing.assert_array_equal(diff_augment(x, ()).numpy(), x.numpy())


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_each_policy_changes_input_keeps_shape_and_gradient_flows(policy, channels):
    x = _images(channels)
    gen = keras.random.SeedGenerator(0)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = diff_augment(x, policy, gen)
        loss = tf.reduce_sum(tf.square(y))
    grad = tape.gradient(loss, x)
    assert y.shape == x.shape and y.dtype == tf.float32
    assert float(tf.reduce_mean(tf.abs(y - x))) > 1e-3
    assert grad is not None and bool(tf.reduce_all(tf.math.is_finite(grad)))
    assert float(tf.reduce_sum(tf.abs(grad))) > 0.0


@pytest.mark.parametrize("channels", [1, 3])
def test_color_range_sanity(channels):
    x = _images(channels, n=32)
    y = diff_augment(x, "color", keras.random.SeedGenerator(1)).numpy()
    assert np.all(np.isfinite(y)) and np.abs(y).max() < 6.0
    # Saturation and contrast keep each image's mean; only brightness moves it, by at most 0.5.
    shift = y.mean(axis=(1, 2, 3)) - x.numpy().mean(axis=(1, 2, 3))
    assert np.abs(shift).max() <= 0.5 + 1e-5 and np.abs(shift).max() > 0.05


def _np_shift(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[i, j] = img[i + dy, j + dx], zero outside."""
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            if 0 <= i + dy < h and 0 <= j + dx < w:
                out[i, j] = img[i + dy, j + dx]
    return out


def test_translation_is_an_integer_shift_of_at_most_one_eighth():
    x = _images(1, n=16).numpy()
    y = diff_augment(x, "translation", keras.random.SeedGenerator(2)).numpy()
    assert y.min() >= -1.0 and y.max() <= 1.0
    shifts = set()
    for xi, yi in zip(x, y):
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if np.array_equal(yi, _np_shift(xi, dy, dx))]
        assert matches, "each output must be the input shifted by at most 1 pixel (8 / 8) per axis"
        shifts.add(matches[0])
    assert len(shifts) > 2  # shifts differ between images


def test_cutout_zeroes_one_half_size_square_per_image():
    x = _images(3, n=16, low=0.1)  # no zeros in the input, so zeros mark the cut-out exactly
    y = diff_augment(x, "cutout", keras.random.SeedGenerator(3)).numpy()
    zero = np.all(y == 0.0, axis=-1)
    np.testing.assert_array_equal(y[~zero], x.numpy()[~zero])
    for z in zero:
        rows, cols = np.flatnonzero(z.any(axis=1)), np.flatnonzero(z.any(axis=0))
        assert 2 <= len(rows) <= 4 and 2 <= len(cols) <= 4  # a 4x4 square, possibly cut by the border
        assert z.sum() == len(rows) * len(cols)  # one solid rectangle
        assert rows[-1] - rows[0] == len(rows) - 1 and cols[-1] - cols[0] == len(cols) - 1
    assert len({z.tobytes() for z in zero}) > 2  # positions differ between images


def test_seeded_and_fresh_per_call():
    x = _images(3)
    a = diff_augment(x, "color,translation,cutout", keras.random.SeedGenerator(5)).numpy()
    gen = keras.random.SeedGenerator(5)
    b = diff_augment(x, "color,translation,cutout", gen).numpy()
    c = diff_augment(x, "color,translation,cutout", gen).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(b - c).mean() > 1e-3


@pytest.mark.parametrize("channels", [1, 3])
def test_inside_tf_function_with_unknown_batch(channels):
    gen = keras.random.SeedGenerator(0)

    @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, channels], tf.float32)])
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = diff_augment(x, "color,translation,cutout", gen)
            loss = tf.reduce_mean(y)
        return y, tape.gradient(loss, x)

    for n in (5, 2):
        y, grad = step(_images(channels, n=n))
        assert y.shape == (n, 8, 8, channels)
        assert bool(tf.reduce_all(tf.math.is_finite(grad)))
    y1, _ = step(_images(channels, n=5))
    y2, _ = step(_images(channels, n=5))
    assert float(tf.reduce_mean(tf.abs(y1 - y2))) > 1e-3  # the seed generator advances inside the graph


def test_rejects_non_batched_input():
    with pytest.raises(TfaugError, match="B, H, W, C"):
        diff_augment(tf.zeros((8, 8, 1)), "cutout")
