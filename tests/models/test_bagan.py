"""BAGAN: per-class latent statistics (fitted per class, carried by generator.keras and exports), training
steps, the sampling contract, and the minority class of an imbalanced toy set."""
import keras
import numpy as np
import pytest

from tfaug.config import GANConfig
from tfaug.errors import TfaugError
from tfaug.models.bagan import class_gaussians
from tfaug.models.zoo import build_model
from tests_helpers import toy_images

K = 3


def _imbalanced():
    """Toy bands 8x8: 30 images of classes 0 and 1, only 3 of class 2 (the minority); uint8 images."""
    x, y = toy_images(n_per_class=30, num_classes=K)
    keep = (y != 2) | (np.arange(len(y)) < 63)
    return x[keep], y[keep]


CFG = GANConfig(model="bagan", steps=30, z_dim=8, width=8, batch_size=32, diffaugment="translation",
                mode_seeking=0.0, ema_decay=0.9, sample_every=0, checkpoint_every=0, options={"ae_steps": 150})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 30-step BAGAN run (autoencoder pre-training in prepare) on the imbalanced toy set (~5 s)."""
    from tfaug.training.gan_runner import train_gan

    x, y = _imbalanced()
    run_dir = tmp_path_factory.mktemp("bagan") / "run"
    run = train_gan(x, y, class_names=["a", "b", "minority"], cfg=CFG, out=run_dir, progress=False, log_every=1)
    model = run.model
    stats = (model.latent_stats.means.numpy().copy(), model.latent_stats.covariances())
    return model, x.astype(np.float32) / 127.5 - 1.0, y, stats, run.history, run_dir


# -- class statistics (pure numpy) -------------------------------------------------------------------------

def test_class_gaussians_without_regularisation_are_numpy_mean_and_cov():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(90, 3)) * [1.0, 2.0, 0.5] + [0.0, 5.0, -1.0]
    y = np.repeat([0, 1, 2], 30)
    z[y == 1] += 3.0
    means, covs = class_gaussians(z, y, 3, shrinkage=0.0, ridge=0.0)
    for c in range(3):
        np.testing.assert_allclose(means[c], z[y == c].mean(0), rtol=1e-12)
        np.testing.assert_allclose(covs[c], np.cov(z[y == c], rowvar=False), rtol=1e-12)


def test_class_gaussians_shrinkage_rule_and_tiny_classes():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(43, 8))
    y = np.array([0] * 40 + [1] * 3)  # class 2 has no image
    means, covs = class_gaussians(z, y, 3, shrinkage=8.0, ridge=1e-3)
    pooled = np.cov(z, rowvar=False)
    s2 = np.mean(np.diag(pooled))
    for c, n in ((0, 40), (1, 3)):
        a = n / (n + 8.0)
        want = a * np.cov(z[y == c], rowvar=False) + (1 - a) * pooled + 1e-3 * s2 * np.eye(8)
        np.testing.assert_allclose(covs[c], want, rtol=1e-10)
    # 3 images in 8 dimensions: the raw covariance is singular, the regularised one is positive definite.
    assert np.linalg.matrix_rank(np.cov(z[y == 1], rowvar=False)) == 2
    assert np.linalg.eigvalsh(covs[1]).min() > 0
    # A class without images falls back to the pooled statistics.
    np.testing.assert_allclose(means[2], z.mean(0))
    np.testing.assert_allclose(covs[2], pooled + 1e-3 * s2 * np.eye(8), rtol=1e-10)
    with pytest.raises(TfaugError):
        class_gaussians(z, y, 3, shrinkage=-1.0)


# -- the model ---------------------------------------------------------------------------------------------

def test_prepare_fits_statistics_per_class_from_the_encoder(trained):
    model, x, y, (means, covs), *_ = trained
    codes = model.encoder(x, training=False).numpy().astype(np.float64)
    want_means, want_covs = class_gaussians(codes, y, K)
    for c in range(K):
        np.testing.assert_allclose(means[c], codes[y == c].mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(covs, want_covs, rtol=1e-3, atol=1e-5)
    assert not np.allclose(means[0], means[2], atol=1e-2)  # really one Gaussian per class


def test_train_steps_are_finite_and_report_metrics(trained):
    model, *_, logs, _ = trained
    assert len(logs) == 30 and set(logs[-1]) == {"step", "time_s", "d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v) for r in logs for v in r.values())
    assert int(model.g_optimizer.iterations.numpy()) == 30


def test_sample_contract(trained):
    model = trained[0]
    a = model.sample([0, 1, 2, 2], [5, 6, 7, 8])
    assert a.shape == (4, 8, 8, 1) and a.dtype == np.float32 and a.min() >= -1.0 and a.max() <= 1.0
    np.testing.assert_allclose(model.sample([2], [7])[0], a[2], atol=1e-6)  # batch-independent
    np.testing.assert_array_equal(model.sample([0, 1, 2, 2], [5, 6, 7, 8]), a)  # deterministic
    assert not np.allclose(a[2], a[3])  # the seed matters


def test_minority_class_samples_resemble_the_minority(trained):
    model, x, y, *_ = trained
    real_means = np.array([x[y == c].mean(0) for c in range(K)])
    fake = model.sample(np.full(20, 2), np.arange(20)).mean(0)
    dist = [float(np.abs(fake - real_means[c]).mean()) for c in range(K)]
    assert int(np.argmin(dist)) == 2, dist


def test_statistics_survive_generator_keras_checkpoint_and_export(trained, tmp_path):
    from tfaug.export.savedmodel import export_run, load_run
    from tfaug.synthesis.loader import load_generator
    from tfaug.training.gan_runner import restore_checkpoint

    model, *_, run_dir = trained
    loaded, _ = load_run(run_dir)  # checkpoints/generator.keras
    layer = loaded.get_layer("class_latents")
    np.testing.assert_array_equal(layer.means.numpy(), model.latent_stats.means.numpy())
    np.testing.assert_array_equal(layer.cholesky.numpy(), model.latent_stats.cholesky.numpy())
    ids, seeds = np.array([0, 2, 2], np.int32), np.array([1, 2, 3], np.int64)
    want = model.sample(ids, seeds)
    np.testing.assert_allclose(load_generator(run_dir).sample(ids, seeds), want, atol=1e-5)
    served = load_generator(export_run(run_dir, "bagan", base=tmp_path / "saved_models")).sample(ids, seeds)
    np.testing.assert_allclose(served, want, atol=1.5 / 127.5)  # uint8 quantisation only
    # Resume path: a fresh model restored from checkpoints/last has the statistics without prepare().
    keras.utils.set_random_seed(1)
    fresh = build_model("bagan", (8, 8, 1), K, CFG)
    assert not np.allclose(fresh.latent_stats.means.numpy(), model.latent_stats.means.numpy())
    restore_checkpoint(fresh, run_dir)
    np.testing.assert_array_equal(fresh.latent_stats.cholesky.numpy(), model.latent_stats.cholesky.numpy())
    np.testing.assert_allclose(fresh.sample(ids, seeds), want, atol=1e-6)


def test_prepare_initialises_discriminator_from_encoder_and_ema_from_decoder():
    x, y = _imbalanced()
    keras.utils.set_random_seed(2)
    model = build_model("bagan", (8, 8, 1), K, GANConfig(**{**CFG.__dict__, "options": {"ae_steps": 0}}))
    body = model.discriminator.get_layer("body")
    assert not all(np.array_equal(a, b) for a, b in zip(body.get_weights(), model.encoder.get_weights()))
    model.generator.set_weights([w + 0.01 for w in model.generator.get_weights()])  # stands in for training
    model.prepare(x.astype(np.float32) / 127.5 - 1.0, y)
    for a, b in zip(body.get_weights(), model.encoder.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.ema_generator.get_weights(), model.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert model.discriminator.output_shape == (None, K + 1)  # K classes + fake
    with pytest.raises(TfaugError):
        model.prepare(x[:3].astype(np.float32), np.array([0, 1, 5]))
