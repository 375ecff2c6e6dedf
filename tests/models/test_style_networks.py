"""Style networks: modulated convolution statistics, noise injection, class truncation, builders' shapes, configs."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.networks.style import (ClassTruncation, ConstantInput, ModulatedConv2D, NoiseInjection, PixelNorm,
                                         build_mapping, build_resnet_discriminator, build_synthesis)


def _interior_variance(y, border):
    """Per (example, channel) variance over pixels away from the zero-padded border: [N, C]."""
    inner = y[:, border:-border, border:-border, :]
    return inner.reshape(inner.shape[0], -1, inner.shape[-1]).var(axis=1)


def test_demodulation_gives_unit_output_variance_for_unit_input():
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 24, 24, 12)).astype(np.float32)
    w = (rng.standard_normal((6, 10)) * 3.0).astype(np.float32)  # strong, uneven styles
    demod = ModulatedConv2D(8, 3, use_bias=False)
    y = demod([x, w]).numpy()
    var = _interior_variance(y, 1)
    # Each (example, channel) has expected variance exactly 1; 484 correlated pixels estimate it to ~10%.
    assert var.shape == (6, 8) and abs(var.mean() - 1.0) < 0.06 and 0.6 < var.min() and var.max() < 1.5
    plain = ModulatedConv2D(8, 3, demodulate=False, use_bias=False)
    plain([x, w])
    plain.set_weights(demod.get_weights())
    var_plain = _interior_variance(plain([x, w]).numpy(), 1)
    assert var_plain.mean() > 2.0 or var_plain.mean() < 0.5  # without demodulation the style scale passes through


def test_modulated_conv_equals_per_example_kernel():
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    w = rng.standard_normal((2, 4)).astype(np.float32)
    layer = ModulatedConv2D(2, 3)
    y = layer([x, w]).numpy()
    s = layer.styles(w).numpy()
    for i in range(2):
        k = layer.kernel.numpy() * s[i][None, None, :, None]
        k = k / np.sqrt((k ** 2).sum(axis=(0, 1, 2), keepdims=True) + 1e-8)
        ref = tf.nn.conv2d(x[i:i + 1], k, 1, "SAME").numpy()[0] + layer.bias.numpy()
        np.testing.assert_allclose(y[i], ref, rtol=1e-4, atol=1e-5)


def test_noise_injection_random_in_training_buffer_at_inference():
    layer = NoiseInjection(seed=3)
    x = np.zeros((3, 4, 5, 2), np.float32)
    layer.build(x.shape)
    layer.strength.assign([1.0, 2.0])
    a, b = layer(x, training=False).numpy(), layer(x, training=False).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0], a[2])  # the same buffer for every example
    np.testing.assert_allclose(a[..., 1], 2.0 * a[..., 0])
    np.testing.assert_array_equal(a[0, :, :, 0], layer.noise_buffer.numpy()[:, :, 0])
    t1, t2 = layer(x, training=True).numpy(), layer(x, training=True).numpy()
    assert not np.allclose(t1, t2) and not np.allclose(t1[0], t1[1]) and not np.allclose(t1[0], a[0])
    # The buffer is a function of the seed.
    twin = NoiseInjection(seed=3)
    twin.build(x.shape)
    np.testing.assert_array_equal(twin.noise_buffer.numpy(), layer.noise_buffer.numpy())


def test_class_truncation_interpolates_towards_the_class_centre():
    layer = ClassTruncation(3, 4)
    centres = np.arange(12, dtype=np.float32).reshape(3, 4)
    layer.w_avg.assign(centres)
    assert not layer.w_avg.trainable
    w = np.ones((3, 4), np.float32) * 10
    c = np.array([2, 0, 1], np.int32)
    np.testing.assert_allclose(layer([w, c, np.ones(3, np.float32)]).numpy(), w)
    np.testing.assert_allclose(layer([w, c, np.zeros(3, np.float32)]).numpy(), centres[c])
    half = layer([w, c, np.array([0.5, 0.5, 0.25], np.float32)]).numpy()
    np.testing.assert_allclose(half[:2], 0.5 * (w[:2] + centres[c[:2]]))
    np.testing.assert_allclose(half[2], centres[1] + 0.25 * (w[2] - centres[1]))
    with pytest.raises(TfaugError):
        ClassTruncation(0, 4)


@pytest.mark.parametrize("shape,features", [((8, 8, 1), 8), ((16, 16, 3), 16), ((28, 28, 1), 16)])
def test_synthesis_and_discriminator_shapes(shape, features):
    keras.utils.set_random_seed(0)
    synth = build_synthesis(shape, w_dim=8, width=4)
    d = build_resnet_discriminator(shape, num_classes=3, width=4)
    w = tf.random.normal((2, 8)) * 4.0
    for training in (False, True):
        images = synth(w, training=training).numpy()
        assert images.shape == (2, *shape) and images.dtype == np.float32
        assert np.isfinite(images).all() and images.min() >= -1.0 and images.max() <= 1.0
    c = tf.constant([0, 2], tf.int32)
    logits = d([tf.constant(images), c])
    feats = keras.Model(d.inputs, d.get_layer("d_features").output)([tf.constant(images), c])
    assert logits.shape == (2, 1) and feats.shape == (2, features)  # min(4, 2**downsamplings) * width
    assert d.get_layer("d_class_embedding").input_dim == 3


def test_mapping_normalises_inputs_and_has_class_embedding():
    keras.utils.set_random_seed(0)
    mapping = build_mapping(4, z_dim=6, w_dim=5, n_layers=2)
    z = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    c = np.array([0, 1, 3], np.int32)
    w = mapping([z, c]).numpy()
    assert w.shape == (3, 5)
    np.testing.assert_allclose(mapping([10.0 * z, c]).numpy(), w, rtol=1e-5, atol=1e-6)  # PixelNorm on z
    assert not np.allclose(mapping([z, np.array([1, 1, 1], np.int32)]).numpy()[0], w[0])  # the class matters
    assert mapping.get_layer("class_embedding").input_dim == 4
    with pytest.raises(TfaugError):
        build_mapping(4, z_dim=6, w_dim=5, n_layers=0)


@pytest.mark.parametrize("layer", [PixelNorm(epsilon=1e-6), ConstantInput(2, 3, 4), ModulatedConv2D(5, 1, False),
                                   NoiseInjection(seed=7), ClassTruncation(3, 2)])
def test_layer_configs_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(TfaugError):
        ModulatedConv2D(4, 2)
