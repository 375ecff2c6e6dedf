"""Network builders: shapes over the supported image-size range, output ranges, errors."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.models.networks.classifiers import CLASSIFIERS, build_classifier
from tfaug.models.networks.common import channel_plan, num_resamplings, plan_generator
from tfaug.models.networks.discriminators import build_discriminator
from tfaug.models.networks.generators import build_generator

SHAPES = [(8, 8, 1), (25, 25, 1), (28, 28, 1), (32, 32, 3), (64, 64, 3), (24, 32, 3)]


@pytest.mark.parametrize("h,w,start_h,start_w,n", [
    (8, 8, 4, 4, 1), (25, 25, 7, 7, 2), (28, 28, 7, 7, 2), (32, 32, 4, 4, 3), (64, 64, 4, 4, 4),
    (128, 128, 4, 4, 5), (24, 32, 6, 8, 2), (15, 15, 8, 8, 1),
])
def test_plan_generator_start_grid_covers_image(h, w, start_h, start_w, n):
    assert plan_generator(h, w) == (start_h, start_w, n)
    assert num_resamplings(h, w) == n
    assert start_h * 2**n >= h and start_w * 2**n >= w


def test_channel_plan():
    assert channel_plan(32, 4) == [128, 64, 32, 32]
    assert channel_plan(32, 4, grow=True) == [32, 64, 128, 128]


@pytest.mark.parametrize("shape", SHAPES)
def test_generator_and_discriminator_shapes(shape):
    keras.utils.set_random_seed(0)
    g = build_generator(shape, num_classes=4, z_dim=8, width=8)
    d = build_discriminator(shape, num_classes=4, width=8)
    z = tf.random.normal((3, 8)) * 3.0  # large latents push tanh towards its limits
    c = tf.constant([0, 1, 3], tf.int32)
    images = g([z, c], training=False)
    assert images.shape == (3, *shape) and images.dtype == tf.float32
    x = images.numpy()
    assert np.all(x >= -1.0) and np.all(x <= 1.0)
    logits = d([images, c], training=False)
    assert logits.shape == (3, 1) and logits.dtype == tf.float32
    assert np.all(np.isfinite(logits.numpy()))


def test_generator_depends_on_class():
    keras.utils.set_random_seed(0)
    g = build_generator((8, 8, 1), num_classes=3, z_dim=8, width=8)
    z = tf.random.normal((1, 8))
    a = g([z, tf.constant([0])], training=False).numpy()
    b = g([z, tf.constant([2])], training=False).numpy()
    assert not np.allclose(a, b)


def test_discriminator_projection_depends_on_class():
    keras.utils.set_random_seed(0)
    d = build_discriminator((8, 8, 1), num_classes=3, width=8)
    x = tf.random.uniform((1, 8, 8, 1), -1, 1)
    a = d([x, tf.constant([0])]).numpy()
    b = d([x, tf.constant([1])]).numpy()
    assert a != pytest.approx(b)


@pytest.mark.parametrize("shape", [(8, 8, 1), (24, 32, 3)])
def test_discriminator_avg_head(shape):
    d = build_discriminator(shape, num_classes=3, width=8, head="avg")
    assert d([tf.zeros((2, *shape)), tf.constant([0, 2])]).shape == (2, 1)
    with pytest.raises(TfaugError, match="dense, avg"):
        build_discriminator(shape, num_classes=3, head="max")


def test_discriminator_logit_depends_only_on_its_example():
    keras.utils.set_random_seed(0)
    d = build_discriminator((8, 8, 1), num_classes=3, width=8, dropout=0.2)
    x = tf.random.uniform((5, 8, 8, 1), -1, 1)
    c = tf.constant([0, 1, 2, 0, 1])
    full = d([x, c], training=False).numpy()
    np.testing.assert_allclose(d([x[2:3], c[2:3]], training=False).numpy()[0], full[2], atol=1e-5)


def test_discriminator_has_no_batchnorm():
    d = build_discriminator((28, 28, 1), num_classes=10, width=8, dropout=0.2)
    kinds = {type(layer).__name__ for layer in d.layers}
    assert "BatchNormalization" not in kinds and "Dropout" in kinds


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize("shape", SHAPES)
def test_classifier_logits_shape(name, shape):
    model = build_classifier(name, shape, num_classes=5, width=8)
    logits = model(tf.zeros((2, *shape)), training=False)
    assert logits.shape == (2, 5) and logits.dtype == tf.float32


def test_classifier_trains_on_toy(toy):
    keras.utils.set_random_seed(0)
    x, y = toy
    x = x.astype("float32") / 127.5 - 1.0
    model = build_classifier("lenet5", (8, 8, 1), 3)
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=20, epochs=15, verbose=0)
    assert model.evaluate(x, y, verbose=0)[1] >= 0.95


def test_unknown_classifier_lists_names():
    with pytest.raises(TfaugError, match="small_cnn, lenet5"):
        build_classifier("resnet9000", (28, 28, 1), 10)


@pytest.mark.parametrize("bad", [(2, 2, 1), (28, 28), "28x28"])
def test_bad_image_shape(bad):
    with pytest.raises(TfaugError):
        build_generator(bad, 10)


def test_bad_num_classes():
    with pytest.raises(TfaugError):
        build_discriminator((8, 8, 1), 0)
