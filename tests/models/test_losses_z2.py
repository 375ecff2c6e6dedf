"""WGAN-GP, AC-GAN and VAE losses against values hand-computed from their papers' formulas."""
import math

import numpy as np
import pytest
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.losses import (auxiliary_class_loss, gradient_penalty, kl_normal, reconstruction_loss,
                                 wgan_critic_loss, wgan_generator_loss)


def test_wgan_losses_are_score_differences():
    # Critic: D(G(z)) - D(x) per example; generator: -D(G(z)).
    real = tf.constant([[2.0], [-1.0], [0.5]])
    fake = tf.constant([0.5, 1.0, 0.5])
    np.testing.assert_allclose(wgan_critic_loss(real, fake).numpy(), [-1.5, 2.0, 0.0])
    np.testing.assert_allclose(wgan_generator_loss(fake).numpy(), [-0.5, -1.0, -0.5])


def test_gradient_penalty_of_a_linear_critic_is_known_for_any_interpolation():
    # D(x) = w . x has gradient w everywhere: penalty (||w|| - 1)^2 = (3 - 1)^2 = 4 whatever eps is drawn.
    w = tf.reshape(tf.constant([2.0, 1.0, 2.0, 0.0]), [1, 2, 2, 1])  # ||w|| = 3
    rng = np.random.default_rng(0)
    real = tf.constant(rng.normal(size=(5, 2, 2, 1)).astype(np.float32))
    fake = tf.constant(rng.normal(size=(5, 2, 2, 1)).astype(np.float32))
    gp = gradient_penalty(lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3]), real, fake, seed=3)
    assert gp.shape == (5,)
    np.testing.assert_allclose(gp.numpy(), 4.0, rtol=1e-5)
    # A unit-norm gradient is not penalised.
    gp1 = gradient_penalty(lambda x: tf.reduce_sum(x * w / 3.0, axis=[1, 2, 3]), real, fake, seed=3)
    np.testing.assert_allclose(gp1.numpy(), 0.0, atol=1e-5)


def test_gradient_penalty_interpolates_eps_real_plus_one_minus_eps_fake():
    # D(x) = ||x||^2 / 2 has gradient x: the penalty is (||x_hat|| - 1)^2 with x_hat = eps real + (1 - eps) fake.
    real = tf.fill([3, 1, 1, 4], 1.0)   # ||real|| = 2
    fake = tf.fill([3, 1, 1, 4], 0.5)   # ||fake|| = 1
    eps = tf.constant([1.0, 0.0, 0.5])
    gp = gradient_penalty(lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3]), real, fake, eps=eps)
    # eps 1: x_hat = real, (2 - 1)^2 = 1; eps 0: x_hat = fake, 0; eps 0.5: 0.75 per pixel, (1.5 - 1)^2 = 0.25.
    np.testing.assert_allclose(gp.numpy(), [1.0, 0.0, 0.25], atol=1e-5)


def test_gradient_penalty_draws_eps_uniformly_per_example():
    n = 400
    real = tf.fill([n, 1, 1, 1], 1.0)
    fake = tf.fill([n, 1, 1, 1], 0.0)
    # D(x) = x^2 / 2: gradient x_hat = eps, so the penalty is (eps - 1)^2 and eps = 1 - sqrt(penalty).
    gp = gradient_penalty(lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3]), real, fake, seed=7).numpy()
    eps = 1.0 - np.sqrt(gp)
    assert eps.min() >= -1e-5 and eps.max() <= 1.0 + 1e-5
    assert abs(eps.mean() - 0.5) < 0.05 and abs(eps.var() - 1 / 12) < 0.02  # U[0, 1]: mean 1/2, var 1/12
    assert len(np.unique(np.round(eps, 5))) > n // 2


def test_auxiliary_class_loss_is_the_class_negative_log_likelihood():
    logits = tf.constant([[0.0, math.log(3.0)], [2.0, 2.0]])
    # softmax([0, ln 3]) = [1/4, 3/4]; softmax([2, 2]) = [1/2, 1/2].
    np.testing.assert_allclose(auxiliary_class_loss(logits, [1, 0]).numpy(), [-math.log(0.75), math.log(2.0)],
                               rtol=1e-6)
    # One class: the loss is identically 0.
    np.testing.assert_allclose(auxiliary_class_loss(tf.constant([[5.0], [-3.0]]), [0, 0]).numpy(), [0.0, 0.0])


def test_kl_normal_of_known_gaussians():
    # KL(N(mu, s^2) || N(0, 1)) = (s^2 + mu^2 - 1 - ln s^2) / 2 per dimension.
    mean = tf.constant([[1.0, 2.0], [0.0, 0.0]])
    log_var = tf.constant([[0.0, math.log(4.0)], [0.0, 0.0]])
    expected = 0.5 * ((1 + 1 - 1 - 0) + (4 + 4 - 1 - math.log(4.0)))  # = 4 - ln 2
    np.testing.assert_allclose(kl_normal(mean, log_var).numpy(), [expected, 0.0], rtol=1e-6, atol=1e-7)
    assert expected == pytest.approx(4.0 - math.log(2.0))


def test_reconstruction_losses_sum_per_image():
    x = tf.constant([[[[1.0], [-1.0]]], [[[0.0], [0.0]]]])      # [2, 1, 2, 1]
    y = tf.constant([[[[0.0], [-1.0]]], [[[0.0], [0.5]]]])
    np.testing.assert_allclose(reconstruction_loss(x, y, "mse").numpy(), [1.0, 0.25])
    # Bernoulli on [0, 1]: image 0 targets (1, 0), probabilities (0.5, ~0) -> ln 2 + ~0; image 1 targets (0.5, 0.5),
    # probabilities (0.5, 0.75) -> ln 2 + (-(0.5 ln 0.75 + 0.5 ln 0.25)).
    bce = reconstruction_loss(x, y, "bce").numpy()
    np.testing.assert_allclose(bce, [math.log(2.0), math.log(2.0) - 0.5 * math.log(0.75 * 0.25)], rtol=1e-4)
    with pytest.raises(TfaugError, match="reconstruction"):
        reconstruction_loss(x, y, "l1")
