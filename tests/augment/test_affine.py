import numpy as np
import tensorflow as tf

from tfaug.augment.affine import RandomAffine


def _square():
    x = -np.ones((4, 16, 16, 1), np.float32)
    x[:, 4:12, 4:12] = 1.0
    return x


def test_zero_ranges_are_identity():
    x = _square()
    np.testing.assert_allclose(RandomAffine(0.0, 0.0, 0.0, seed=1)(x, training=True), x, atol=1e-5)
    np.testing.assert_array_equal(RandomAffine(0.2, 0.2, 0.2, seed=1)(x, training=False), x)


def test_translation_shifts_content_and_constant_fill_is_black():
    x = _square()
    y = np.asarray(RandomAffine(translation=(0.25), fill_mode="constant", fill_value=-1.0, seed=0)(x, training=True))
    assert y.shape == x.shape and y.min() >= -1.0001
    assert not np.allclose(y, x)
    # content is moved, not destroyed: the lit area stays about the same size (no reflection copies)
    assert np.all(np.abs((y > 0).sum(axis=(1, 2, 3)) - 64) <= 16)


def test_one_warp_blurs_less_than_three_chained_layers():
    """The reason the layer exists: a composed warp keeps more of the image's sharpness."""
    import keras

    x = _square()
    args = dict(fill_mode="constant", fill_value=-1.0)
    one = np.asarray(RandomAffine(0.05, 0.1, 0.1, seed=3, **args)(x, training=True))
    chain = keras.Sequential([keras.layers.RandomRotation(0.05, seed=3, **args), keras.layers.RandomZoom(0.1, seed=4, **args),
                              keras.layers.RandomTranslation(0.1, 0.1, seed=5, **args)])
    three = np.asarray(chain(x, training=True))
    # share of pixels that are neither background nor full ink: interpolation smear
    smear = lambda im: np.mean((im > -0.9) & (im < 0.9))  # noqa: E731
    assert smear(one) < smear(three)


def test_runs_in_tf_data_and_round_trips_config():
    layer = RandomAffine(0.1, (-0.2, 0.1), 0.1, seed=0)
    ds = tf.data.Dataset.from_tensor_slices(_square()).batch(2).map(lambda b: layer(b, training=True))
    assert [b.shape for b in ds] == [(2, 16, 16, 1)] * 2
    clone = RandomAffine.from_config(layer.get_config())
    assert clone.zoom == (-0.2, 0.1) and clone.translation == 0.1
