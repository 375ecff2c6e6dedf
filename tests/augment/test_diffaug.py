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


# -- ADA ---------------------------------------------------------------------------------------------------

def test_ada_update_rule_by_hand():
    from tfaug.augment.diffaug import ada_update

    # Overconfident D (r_t 0.9 > 0.6): p grows by batch * interval / (kimg * 1000) = 64 * 4 / 100000.
    assert ada_update(0.1, 0.9, 0.6, 256, ada_kimg=100.0) == pytest.approx(0.1 + 256 / 100000)
    assert ada_update(0.1, 0.2, 0.6, 256, ada_kimg=100.0) == pytest.approx(0.1 - 256 / 100000)
    assert ada_update(0.0, -1.0, 0.6, 10_000, ada_kimg=1.0) == 0.0  # clamped at 0
    assert ada_update(0.99, 1.0, 0.6, 10_000, ada_kimg=1.0) == 1.0  # clamped at 1
    t = ada_update(tf.constant(0.5), tf.constant(0.9), 0.6, tf.constant(1000.0), ada_kimg=10.0)
    assert float(t) == pytest.approx(0.6)


def test_ada_controller_moves_p_toward_target():
    """Synthetic D whose real-logit sign rate falls as p rises: r_t = 1 - 2p (so r_t = target at p = 0.2)."""
    from tfaug.augment.diffaug import AdaController

    ada = AdaController(target=0.6, interval=2, ada_kimg=0.5)
    observe = tf.function(ada.observe)
    rng = np.random.default_rng(0)
    trace = []
    for _ in range(400):
        p = float(ada.p.numpy())
        positive = rng.uniform(size=32) < (1.0 + (1.0 - 2.0 * p)) / 2.0  # P(logit > 0) so E[sign] = 1 - 2p
        trace.append(float(observe(tf.constant(np.where(positive, 1.0, -1.0), tf.float32))))
    assert trace[0] == 0.0 and trace[1] > 0.0  # first adjustment after `interval` steps, upward (r_t ~ 1 > 0.6)
    assert max(trace[:40]) > 0.1
    assert abs(np.mean(trace[-100:]) - 0.2) < 0.06  # settles where r_t = target
    assert int(ada.steps.numpy()) == 400


def test_ada_controller_validation():
    from tfaug.augment.diffaug import AdaController

    with pytest.raises(TfaugError, match="target"):
        AdaController(target=1.0)
    with pytest.raises(TfaugError, match="interval"):
        AdaController(interval=0)


def test_adaptive_augment_probability_and_gradient():
    from tfaug.augment.diffaug import adaptive_augment

    x = _images(1, n=64)
    gen = keras.random.SeedGenerator(3)
    np.testing.assert_array_equal(adaptive_augment(x, "translation,cutout", 0.0, seed_generator=gen).numpy(), x.numpy())
    full = adaptive_augment(x, "cutout", 1.0, seed_generator=gen).numpy()
    assert np.all(np.any(full.reshape(64, -1) != x.numpy().reshape(64, -1), axis=1))  # every image cut
    half = adaptive_augment(x, "cutout", 0.5, seed_generator=gen).numpy()
    changed = np.any(half.reshape(64, -1) != x.numpy().reshape(64, -1), axis=1).mean()
    assert 0.25 < changed < 0.75
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = adaptive_augment(x, "color,translation,cutout", 0.7, seed_generator=gen)
        loss = tf.reduce_sum(y * y)
    g = tape.gradient(loss, x)
    assert g is not None and np.all(np.isfinite(g.numpy())) and float(tf.reduce_sum(tf.abs(g))) > 0
