"""ConditionalGAN: latents, one train step, deterministic sampling, checkpoints, and learning the toy task."""
import importlib.util

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaug.config import GANConfig
from tfaug.errors import TfaugError
from tfaug.models.cgan import ConditionalGAN, build_conditional_gan
from tfaug.models.sampling import latent_from_seeds
from tfaug.models.networks.discriminators import build_discriminator
from tfaug.models.networks.generators import build_generator

HAS_DIFFAUG = importlib.util.find_spec("tfaug.augment.diffaug") is not None


def _float(x):
    return x.astype(np.float32) / 127.5 - 1.0


def _gan(shape=(8, 8, 1), num_classes=3, z_dim=8, width=8, **kwargs):
    g = build_generator(shape, num_classes, z_dim=z_dim, width=width)
    d = build_discriminator(shape, num_classes, width=width)
    gan = ConditionalGAN(g, d, num_classes, z_dim, **kwargs)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    return gan


def _dataset(x, y, batch_size, seed=0):
    ds = tf.data.Dataset.from_tensor_slices((_float(x), y)).shuffle(len(y), seed=seed)
    return ds.repeat().batch(batch_size, drop_remainder=True)


@pytest.fixture(scope="module")
def trained_toy_gan():
    """A small conditional GAN trained on the 3-class toy problem (about 5 s on 2 cores)."""
    from conftest import toy_images

    keras.utils.set_random_seed(0)
    x, y = toy_images()
    gan = _gan(z_dim=16, width=16, ema_decay=0.95, seed=0)
    gan.fit(_dataset(x, y, 32), steps_per_epoch=300, epochs=1, verbose=0, shuffle=False)
    return gan, _float(x), y


# -- latents ----------------------------------------------------------------------------------------------

def test_latent_from_seeds_is_batch_independent():
    alone = latent_from_seeds(np.array([5], np.int64), 16).numpy()
    batch = latent_from_seeds(np.array([9, 1, 2, 3, 5, 11, 12], np.int64), 16).numpy()
    assert alone.shape == (1, 16) and batch.shape == (7, 16) and batch.dtype == np.float32
    np.testing.assert_array_equal(alone[0], batch[4])
    assert not np.allclose(batch[0], batch[1])


def test_latent_from_seeds_in_graph_with_unknown_batch():
    fn = tf.function(lambda s: latent_from_seeds(s, 4), input_signature=[tf.TensorSpec([None], tf.int64)])
    a = fn(tf.constant([3, 2**40], tf.int64)).numpy()
    np.testing.assert_array_equal(a, latent_from_seeds([3, 2**40], 4).numpy())
    many = latent_from_seeds(np.arange(2000), 8).numpy()
    assert abs(many.mean()) < 0.05 and abs(many.std() - 1.0) < 0.05


# -- one step, checkpoints, config -------------------------------------------------------------------------

def test_one_train_step_finite_and_builds_state(toy):
    keras.utils.set_random_seed(1)
    x, y = toy
    gan = _gan()
    assert gan.d_optimizer.variables and gan.g_optimizer.variables  # built at compile time
    history = gan.fit(_dataset(x, y, 16), steps_per_epoch=1, epochs=1, verbose=0, shuffle=False).history
    assert set(history) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v[-1]) for v in history.values())
    assert 0.0 <= history["d_real"][-1] <= 1.0
    assert int(gan.d_optimizer.iterations.numpy()) == 1 and int(gan.g_optimizer.iterations.numpy()) == 1


def test_direct_train_step_returns_metrics(toy):
    keras.utils.set_random_seed(2)
    x, y = toy
    gan = _gan(ema_decay=0.0, mode_seeking=0.0)
    logs = gan.train_step((tf.constant(_float(x[:8])), tf.constant(y[:8])))
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake"}
    # decay 0: the EMA generator is an exact copy of G after the step.
    for a, b in zip(gan.ema_generator.get_weights(), gan.generator.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(not HAS_DIFFAUG, reason="tfaug.augment.diffaug not available")
def test_unknown_diffaugment_policy():
    with pytest.raises(TfaugError):
        _gan(diffaugment="translation,warp")


def test_save_and_load_weights_round_trip(toy, tmp_path):
    keras.utils.set_random_seed(4)
    x, y = toy
    gan = _gan(ema_decay=0.5)
    gan.fit(_dataset(x, y, 16), steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    path = str(tmp_path / "gan.weights.h5")
    gan.save_weights(path)
    keras.utils.set_random_seed(5)
    other = _gan(ema_decay=0.5)
    other.load_weights(path)
    for net in ("generator", "discriminator", "ema_generator"):
        for a, b in zip(getattr(gan, net).get_weights(), getattr(other, net).get_weights()):
            np.testing.assert_array_equal(a, b)
    # The EMA copy is not the generator after training with decay > 0, so the check above is not vacuous.
    assert any(not np.allclose(a, b) for a, b in zip(gan.generator.get_weights(), gan.ema_generator.get_weights()))


def test_config_round_trip_and_properties():
    gan = _gan(shape=(25, 25, 1), num_classes=4, z_dim=6, ema_decay=0.9, real_label=0.8, seed=7, mode_seeking=0.5)
    assert gan.image_shape == (25, 25, 1) and gan.num_classes == 4 and gan.z_dim == 6
    cfg = gan.get_config()
    keys = ("num_classes", "z_dim", "ema_decay", "real_label", "diffaugment", "seed", "mode_seeking")
    assert {k: cfg[k] for k in keys} == {"num_classes": 4, "z_dim": 6, "ema_decay": 0.9, "real_label": 0.8,
                                         "diffaugment": "", "seed": 7, "mode_seeking": 0.5}
    clone = ConditionalGAN.from_config({**cfg, "generator": gan.generator, "discriminator": gan.discriminator})
    assert clone.get_config() == cfg
    with pytest.raises(TfaugError):
        ConditionalGAN.from_config(cfg)


def test_constructor_validation():
    g = build_generator((8, 8, 1), 3, z_dim=8, width=4)
    d = build_discriminator((8, 8, 1), 3, width=4)
    with pytest.raises(TfaugError, match="z_dim"):
        ConditionalGAN(g, d, 3, z_dim=9)
    with pytest.raises(TfaugError, match="ema_decay"):
        ConditionalGAN(g, d, 3, z_dim=8, ema_decay=1.0)
    with pytest.raises(TfaugError, match="mode_seeking"):
        ConditionalGAN(g, d, 3, z_dim=8, mode_seeking=-1.0)


def test_build_conditional_gan_from_config():
    keras.utils.set_random_seed(6)
    cfg = GANConfig(z_dim=12, width=8, diffaugment="", ema_decay=0.9, g_lr=1e-3, d_lr=5e-4)
    gan = build_conditional_gan((28, 28, 1), 10, cfg)
    assert gan.image_shape == (28, 28, 1) and gan.z_dim == 12 and gan.ema_decay == 0.9
    assert float(gan.g_optimizer.learning_rate.numpy()) == pytest.approx(1e-3)
    assert float(gan.d_optimizer.learning_rate.numpy()) == pytest.approx(5e-4)
    assert gan.sample([0, 9], [1, 2]).shape == (2, 28, 28, 1)


# -- sampling --------------------------------------------------------------------------------------------

def test_sample_is_deterministic_and_batch_independent(trained_toy_gan):
    gan, _, _ = trained_toy_gan
    alone = gan.sample([1], [5])
    mixed = gan.sample([0, 2, 1, 1, 0, 2, 2], [3, 5, 5, 6, 5, 7, 8])
    assert alone.dtype == np.float32 and alone.shape == (1, 8, 8, 1)
    np.testing.assert_allclose(alone[0], mixed[2], atol=1e-5)
    np.testing.assert_allclose(gan.sample([1], [5]), alone, atol=0)
    assert not np.allclose(mixed[2], mixed[3])  # another seed, another image
    assert not np.allclose(mixed[1], mixed[2])  # same seed, other class
    assert np.all(np.abs(mixed) <= 1.0)


def test_sample_errors(trained_toy_gan):
    gan, _, _ = trained_toy_gan
    with pytest.raises(TfaugError, match="out of range"):
        gan.sample([0, 3], [1, 2])
    with pytest.raises(TfaugError, match="out of range"):
        gan.sample([-1], [1])
    with pytest.raises(TfaugError, match="same length"):
        gan.sample([0, 1], [1])
    with pytest.raises(TfaugError):
        gan.sample([0.5], [1])
    assert gan.sample([], []).shape == (0, 8, 8, 1)


def test_ema_generator_differs_after_training(trained_toy_gan):
    gan, _, _ = trained_toy_gan
    ema, raw = gan.sample([0, 1, 2], [1, 2, 3]), gan.sample([0, 1, 2], [1, 2, 3], use_ema=False)
    assert not np.allclose(ema, raw, atol=1e-4)


def test_learns_class_conditional_toy_images(trained_toy_gan):
    """Samples of class c light band c: a nearest-centroid classifier fitted on the real images agrees."""
    gan, x, y = trained_toy_gan
    centroids = np.stack([x[y == c].reshape((y == c).sum(), -1).mean(0) for c in range(3)])
    classes = np.repeat(np.arange(3), 40)
    samples = gan.sample(classes, np.arange(len(classes)) + 1000).reshape(len(classes), -1)
    pred = np.argmin(((samples[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (pred == classes).mean() >= 0.9
    for c in range(3):
        assert (pred[classes == c] == c).mean() >= 0.8
    # Not a memorised mean image: different seeds of one class still vary.
    assert samples[classes == 0].std(axis=0).mean() > 0.03  # the real images: ~0.16


# -- S4 variants (zoo options) -------------------------------------------------------------------------------

def test_onehot_conditioning_and_label_smoothing_options(toy, tmp_path):
    keras.utils.set_random_seed(7)
    cfg = GANConfig(z_dim=8, width=8, diffaugment="", options={"conditioning": "onehot", "label_smoothing": "false"})
    gan = build_conditional_gan((8, 8, 1), 3, cfg)
    assert gan.real_label == 1.0  # smoothing off: real target 1
    assert gan.generator.get_layer("z_and_class").output.shape[-1] == 8 + 3  # z ++ one-hot
    assert gan.discriminator.get_layer("image_and_class").output.shape[1:] == (8, 8, 1 + 3)  # tiled class planes
    assert not any(layer.name == "class_projection" for layer in gan.discriminator.layers)
    x, y = toy
    logs = gan.train_step((tf.constant(_float(x[:9])), tf.constant(y[:9])))
    assert all(np.isfinite(float(v)) for v in logs.values())
    # The one-hot sampling network is made of stock layers: it saves and loads as generator.keras does.
    gan.ema_generator.save(str(tmp_path / "g.keras"))
    loaded = keras.models.load_model(str(tmp_path / "g.keras"), compile=False)
    z, c = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32), np.array([0, 1, 2], np.int32)
    np.testing.assert_allclose(loaded([z, c]).numpy(), gan.ema_generator([z, c]).numpy(), atol=1e-6)
    # Default: embedding + projection and smoothing at cfg.real_label.
    default = build_conditional_gan((8, 8, 1), 3, GANConfig(z_dim=8, width=8, real_label=0.8))
    assert default.real_label == 0.8 and default.discriminator.get_layer("class_projection") is not None
    with pytest.raises(TfaugError, match="conditioning"):
        build_conditional_gan((8, 8, 1), 3, GANConfig(z_dim=8, width=8, options={"conditioning": "film"}))
