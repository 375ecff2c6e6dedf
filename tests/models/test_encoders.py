"""Encoder, decoder, critic and AC-GAN discriminator builders: shapes for odd sizes and channel counts, conditioning,
per-example independence, no BatchNorm, clear errors."""
import keras
import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.models.networks.encoders import (build_acgan_discriminator, build_critic, build_decoder,
                                            build_encoder)

SHAPES = [(8, 8, 1), (25, 25, 1), (12, 16, 3)]


def _images(n, shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape)).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_encoder_and_decoder_shapes(shape):
    x = _images(3, shape)
    ids = np.array([0, 1, 1], np.int32)
    mean, log_var = build_encoder(shape, 5, width=4)(x)
    assert mean.shape == (3, 5) and log_var.shape == (3, 5)
    cmean, _ = build_encoder(shape, 5, num_classes=2, width=4)([x, ids])
    assert cmean.shape == (3, 5)
    assert build_encoder(shape, 5, width=4, outputs="features")(x).shape == (3, 16)
    for cond in (None, 2):
        out = np.asarray(build_decoder(shape, 5, num_classes=cond, width=4)([np.ones((3, 5), np.float32), ids]))
        assert out.shape == (3, *shape) and out.min() >= -1.0 and out.max() <= 1.0


def test_decoder_uses_the_class_only_when_conditional():
    keras.utils.set_random_seed(0)
    z = np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32)
    a, b = np.zeros(2, np.int32), np.ones(2, np.int32)
    plain = build_decoder((8, 8, 1), 4, width=4)
    np.testing.assert_array_equal(np.asarray(plain([z, a])), np.asarray(plain([z, b])))
    cond = build_decoder((8, 8, 1), 4, num_classes=2, width=4)
    assert not np.allclose(np.asarray(cond([z, a])), np.asarray(cond([z, b])))


def test_encoder_log_var_starts_near_unit_variance_and_is_per_example():
    keras.utils.set_random_seed(0)
    enc = build_encoder((8, 8, 1), 6, width=4)
    x = _images(4, (8, 8, 1))
    mean, log_var = (np.asarray(t) for t in enc(x))
    assert np.abs(log_var).max() < 0.5
    mean1, _ = enc(x[2:3])
    np.testing.assert_allclose(np.asarray(mean1)[0], mean[2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("conditioning,norm", [("projection", "layer"), ("concat", "none")])
def test_critic_is_per_example_without_batchnorm_and_uses_the_class(conditioning, norm):
    keras.utils.set_random_seed(0)
    critic = build_critic((12, 12, 3), 3, width=4, norm=norm, conditioning=conditioning)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in critic.layers)
    x = _images(4, (12, 12, 3))
    ids = np.array([0, 1, 2, 0], np.int32)
    scores = np.asarray(critic([x, ids]))
    assert scores.shape == (4, 1)
    np.testing.assert_allclose(np.asarray(critic([x[1:2], ids[1:2]])), scores[1:2], rtol=1e-4, atol=1e-5)
    other = np.asarray(critic([x, (ids + 1) % 3]))
    assert not np.allclose(other, scores)


def test_acgan_discriminator_has_source_and_class_heads():
    logit, class_logits = build_acgan_discriminator((8, 8, 2), 4, width=4, dropout=0.5)(_images(3, (8, 8, 2)))
    assert logit.shape == (3, 1) and class_logits.shape == (3, 4)


def test_bad_arguments_are_tfaug_errors():
    with pytest.raises(TfaugError, match="conditioning"):
        build_critic((8, 8, 1), 2, conditioning="film")
    with pytest.raises(TfaugError, match="norm"):
        build_critic((8, 8, 1), 2, norm="batch")
    with pytest.raises(TfaugError, match="latent_dim"):
        build_encoder((8, 8, 1), 0)
    with pytest.raises(TfaugError, match="outputs"):
        build_encoder((8, 8, 1), 4, outputs="logits")
    with pytest.raises(TfaugError, match="image_shape"):
        build_decoder((2, 2, 1), 4)
    with pytest.raises(TfaugError, match="num_classes"):
        build_acgan_discriminator((8, 8, 1), 0)
