"""tfaug's BatchNorm: Keras' BatchNormalization in float32, TensorFlow's fused kernel under mixed precision."""
import numpy as np
import pytest


@pytest.fixture
def policy():
    import keras

    before = keras.mixed_precision.global_policy()
    yield keras.mixed_precision.set_global_policy
    keras.mixed_precision.set_global_policy(before)


def _pair(dtype, shape, momentum=0.9):
    import keras

    from tfaug.models.networks.batchnorm import BatchNormalization as BatchNorm

    ours, ref = BatchNorm(momentum=momentum, dtype=dtype), keras.layers.BatchNormalization(momentum=momentum,
                                                                                          dtype=dtype)
    ours.build(shape), ref.build(shape)
    rng = np.random.default_rng(0)
    weights = [rng.normal(1, 0.2, shape[-1]), rng.normal(0, 0.2, shape[-1]), rng.normal(0, 0.5, shape[-1]),
               rng.uniform(0.5, 2, shape[-1])]
    for layer in (ours, ref):
        layer.set_weights([w.astype(np.float32) for w in weights])
    return ours, ref


def _run(layer, x, training):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=training)
        loss = tf.reduce_sum(tf.cast(y, tf.float32) * tf.random.stateless_normal(y.shape, seed=(5, 6)))
    return y, tape.gradient(loss, [x] + layer.trainable_variables)


def test_float32_is_keras_bit_for_bit():
    import tensorflow as tf

    shape = (8, 5, 5, 6)
    ours, ref = _pair("float32", shape)
    x = tf.random.stateless_normal(shape, seed=(1, 2)) * 3 + 1
    for training in (True, False, True):
        (y1, g1), (y2, g2) = _run(ours, x, training), _run(ref, x, training)
        np.testing.assert_array_equal(y1.numpy(), y2.numpy())
        for a, b in zip(g1, g2):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_takes_the_fused_kernel_and_matches_keras(dtype):
    """Same outputs, gradients and (biased-variance) moving statistics as Keras, within the half type's rounding;
    statistics stay float32."""
    import tensorflow as tf

    shape = (16, 6, 6, 4)
    ours, ref = _pair(dtype, shape, momentum=0.5)
    assert ours._fused(tf.zeros(shape), None) and not ours._fused(tf.zeros(shape[:2]), None)
    x = tf.cast(tf.random.stateless_normal(shape, seed=(3, 4)) * 2 - 1, ours.compute_dtype)
    tol = 2e-2 if dtype == "mixed_bfloat16" else 2e-3
    for training in (True, True, False):
        (y1, g1), (y2, g2) = _run(ours, x, training), _run(ref, x, training)
        assert y1.dtype == y2.dtype == ours.compute_dtype
        np.testing.assert_allclose(tf.cast(y1, tf.float32).numpy(), tf.cast(y2, tf.float32).numpy(),
                                   atol=tol * 4, rtol=tol)
        for a, b in zip(g1, g2):
            a, b = tf.cast(a, tf.float32).numpy(), tf.cast(b, tf.float32).numpy()
            np.testing.assert_allclose(a, b, atol=tol * np.abs(b).max(), rtol=tol)
    assert ours.moving_variance.dtype == "float32"
    for a, b in zip(ours.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=5e-3, atol=1e-3)
    # by hand: after two training calls with momentum 0.5 from (m0, v0): m = 0.25 m0 + 0.75 mean (biased variance)
    xs = tf.cast(x, tf.float32).numpy()
    mean, var = xs.mean(axis=(0, 1, 2)), xs.var(axis=(0, 1, 2))
    m0, v0 = _pair(dtype, shape)[1].get_weights()[2:]
    np.testing.assert_allclose(ours.moving_mean.numpy(), 0.25 * m0 + 0.75 * mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.moving_variance.numpy(), 0.25 * v0 + 0.75 * var, rtol=1e-4, atol=1e-5)


def test_unfusable_cases_fall_back_to_keras(policy):
    import tensorflow as tf

    from tfaug.models.networks.batchnorm import BatchNormalization as BatchNorm

    policy("mixed_bfloat16")
    assert not BatchNorm(synchronized=True)._fused(tf.zeros((2, 3, 3, 4)), None)
    assert not BatchNorm(axis=1)._fused(tf.zeros((2, 3, 3, 4)), None)
    assert not BatchNorm()._fused(tf.zeros((2, 3, 3, 4)), tf.ones((2, 3, 3)))
    assert not BatchNorm(epsilon=1e-6)._fused(tf.zeros((2, 3, 3, 4)), None)
    assert BatchNorm()._fused(tf.zeros((2, 3, 3, 4)), None)
    policy("float32")
    assert not BatchNorm()._fused(tf.zeros((2, 3, 3, 4)), None)


def test_saved_model_file_round_trip(tmp_path, policy):
    import keras

    import tfaug.models.networks.layers  # noqa: F401 - what loaders import
    from tfaug.models.networks.batchnorm import BatchNormalization as BatchNorm

    policy("mixed_bfloat16")
    inp = keras.Input((4, 4, 3))
    model = keras.Model(inp, BatchNorm(name="bn")(keras.layers.Conv2D(3, 1)(inp)))
    x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    assert type(loaded.get_layer("bn")) is BatchNorm and BatchNorm.__name__ == "BatchNormalization"
    np.testing.assert_array_equal(np.asarray(model(x), np.float32), np.asarray(loaded(x), np.float32))


def test_weights_written_with_keras_batchnorm_load_and_back(tmp_path):
    """Keras 3 names weight paths after layer classes: a checkpoint of a network built with Keras'
    BatchNormalization (every run before this layer) loads into tfaug's, and the other way round."""
    import keras

    from tfaug.models.networks.batchnorm import BatchNormalization

    def net(bn):
        inp = keras.Input((4, 4, 2))
        x = bn(name="bn1")(keras.layers.Conv2D(3, 1, name="c")(inp))
        return keras.Model(inp, bn(name="bn2")(x))

    rng = np.random.default_rng(0)
    old, new = net(keras.layers.BatchNormalization), net(BatchNormalization)
    old.set_weights([rng.normal(size=w.shape).astype(np.float32) ** 2 for w in old.get_weights()])
    old.save_weights(tmp_path / "old.weights.h5")
    new.load_weights(tmp_path / "old.weights.h5")
    for a, b in zip(old.get_weights(), new.get_weights()):
        np.testing.assert_array_equal(a, b)
    new.save_weights(tmp_path / "new.weights.h5")
    back = net(keras.layers.BatchNormalization)
    back.load_weights(tmp_path / "new.weights.h5")
    for a, b in zip(old.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(a, b)
