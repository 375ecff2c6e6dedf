"""GAN losses against hand-computed numpy binary cross-entropy."""
import numpy as np
import pytest
import tensorflow as tf

from tfaug.models.losses import d_loss_nonsaturating, g_loss_nonsaturating, mode_seeking_loss


def _bce(target, logits):
    p = 1.0 / (1.0 + np.exp(-logits))
    return -(target * np.log(p) + (1.0 - target) * np.log(1.0 - p))


REAL = np.array([2.0, -1.0, 0.0, 0.5], np.float32)
FAKE = np.array([-3.0, 1.5, 0.2, -0.1], np.float32)


@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_d_loss_matches_numpy(real_label):
    got = d_loss_nonsaturating(REAL, FAKE, real_label=real_label).numpy()
    want = _bce(real_label, REAL.astype(np.float64)) + _bce(0.0, FAKE.astype(np.float64))
    assert got.shape == (4,)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_label_smoothing_changes_only_the_real_term():
    real = tf.constant(REAL)
    smooth = d_loss_nonsaturating(REAL, FAKE, real_label=0.9).numpy()
    plain = d_loss_nonsaturating(REAL, FAKE, real_label=1.0).numpy()
    diff = smooth - plain
    np.testing.assert_allclose(diff, _bce(0.9, REAL.astype(np.float64)) - _bce(1.0, REAL.astype(np.float64)),
                               rtol=1e-4, atol=1e-6)
    # Changing the fake logits shifts both variants by the same amount: the fake term ignores real_label.
    other_fake = FAKE + 1.0
    d_smooth = d_loss_nonsaturating(real, other_fake, 0.9).numpy() - smooth
    d_plain = d_loss_nonsaturating(real, other_fake, 1.0).numpy() - plain
    np.testing.assert_allclose(d_smooth, d_plain, rtol=1e-5)


def test_g_loss_matches_numpy_and_is_nonsaturating():
    got = g_loss_nonsaturating(FAKE).numpy()
    np.testing.assert_allclose(got, -np.log(1.0 / (1.0 + np.exp(-FAKE.astype(np.float64)))), rtol=1e-5)
    # Far-rejected fakes still get a strong gradient (slope ~ -1), unlike log(1 - sigmoid).
    x = tf.constant([-20.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = g_loss_nonsaturating(x)
    assert tape.gradient(loss, x).numpy()[0] == pytest.approx(-1.0, abs=1e-6)


def test_per_example_shapes_accept_column_logits():
    real = tf.constant(REAL[:, None])
    fake = tf.constant(FAKE[:, None])
    assert d_loss_nonsaturating(real, fake).shape == (4,)
    assert g_loss_nonsaturating(fake).shape == (4,)
    np.testing.assert_allclose(d_loss_nonsaturating(real, fake).numpy(), d_loss_nonsaturating(REAL, FAKE).numpy())


def test_extreme_logits_are_finite():
    big = np.array([80.0, -80.0], np.float32)
    assert np.all(np.isfinite(d_loss_nonsaturating(big, -big, 0.9).numpy()))
    assert np.all(np.isfinite(g_loss_nonsaturating(big).numpy()))


def test_mode_seeking_loss_matches_numpy_and_rewards_diversity():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, 4)).astype(np.float32)
    ids = np.array([0, 0, 1, 1, 1, 2], np.int32)
    images = rng.normal(size=(6, 3, 3, 1)).astype(np.float32)
    got = float(mode_seeking_loss(images, z, ids))
    ratios = [np.sqrt(np.mean((images[i] - images[j]) ** 2)) / np.sqrt(np.mean((z[i] - z[j]) ** 2))
              for i in range(6) for j in range(6) if i != j and ids[i] == ids[j]]
    assert got == pytest.approx(1.0 / (np.mean(ratios) + 1e-5), rel=1e-4)
    # Spreading the images apart (same latents) lowers the loss; a collapsed generator gets a large one.
    assert float(mode_seeking_loss(images * 3.0, z, ids)) < got
    collapsed = float(mode_seeking_loss(np.zeros_like(images), z, ids))
    assert collapsed > 100 * got and np.isfinite(collapsed)


def test_mode_seeking_loss_without_same_class_pairs_is_zero():
    z = np.eye(3, dtype=np.float32)
    assert float(mode_seeking_loss(np.ones((3, 2, 2, 1), np.float32), z, [0, 1, 2])) == 0.0


def test_mode_seeking_loss_gradient_is_finite_for_collapsed_images():
    images = tf.zeros((4, 2, 2, 1))
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = mode_seeking_loss(images, tf.random.normal((4, 3)), tf.constant([0, 0, 1, 1]))
    assert np.all(np.isfinite(tape.gradient(loss, images).numpy()))


def test_r1_penalty_matches_the_formula_for_a_linear_critic():
    """D(x) = sum(w * x_i) + b has gradient w for every image: R1_i = gamma / 2 * ||w||^2."""
    from tfaug.models.losses import r1_penalty

    rng = np.random.default_rng(0)
    w = tf.constant(rng.normal(size=(1, 4, 4, 1)).astype(np.float32))
    x = tf.constant(rng.normal(size=(3, 4, 4, 1)).astype(np.float32))
    out = r1_penalty(x, lambda v: tf.reduce_sum(v * w, axis=[1, 2, 3]) + 0.3, gamma=10.0).numpy()
    np.testing.assert_allclose(out, np.full(3, 5.0 * np.sum(w.numpy() ** 2)), rtol=1e-5)


def test_r1_penalty_is_per_example_and_differentiable():
    """Quadratic D(x) = sum(x^2): grad 2x, R1_i = gamma/2 * 4 ||x_i||^2; its gradient w.r.t. a D weight exists."""
    from tfaug.models.losses import r1_penalty

    x = tf.constant(np.arange(8, dtype=np.float32).reshape(2, 2, 2, 1) / 8.0)
    a = tf.Variable(1.5)
    with tf.GradientTape() as tape:
        out = r1_penalty(x, lambda v: a * tf.reduce_sum(v * v, axis=[1, 2, 3]), gamma=2.0)
        total = tf.reduce_sum(out)
    expect = 4.0 * 1.5**2 * np.sum(x.numpy().reshape(2, -1) ** 2, axis=1)
    np.testing.assert_allclose(out.numpy(), expect, rtol=1e-5)
    # d/da of sum(4 a^2 ||x||^2) = 8 a sum ||x||^2 (second-order path through the inner tape).
    np.testing.assert_allclose(float(tape.gradient(total, a)), 8 * 1.5 * np.sum(x.numpy() ** 2), rtol=1e-5)
