"""VAE and CVAE: training improves reconstructions, encode/decode APIs (deterministic mean, seeded samples),
the sampling contract, options and errors, and a run through the runner, loader and exporter."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests_helpers import check_run_round_trip, check_sampling_contract, toy_images
from tfaug.config import GANConfig
from tfaug.errors import TfaugError
from tfaug.models.vae import CVAE, VAE, build_cvae, build_vae

CFG = GANConfig(model="vae", z_dim=4, width=8, batch_size=20, g_lr=2e-3, steps=2, sample_every=0,
                checkpoint_every=0, seed=0)


def _float(x):
    return x.astype(np.float32) / 127.5 - 1.0


def _rec_error(model, x, y):
    return float(np.mean(np.square(model.reconstruct(x, y) - x)))


@pytest.fixture(scope="module", params=["vae", "cvae"])
def trained(request):
    """(model, reconstruction MSE before, after, images, labels): 80 steps on the 3-class toy set."""
    x, y = toy_images()
    x = _float(x)
    keras.utils.set_random_seed(0)
    build = build_vae if request.param == "vae" else build_cvae
    model = build((8, 8, 1), 3, GANConfig(**{**CFG.__dict__, "model": request.param}))
    before = _rec_error(model, x, y)
    step = tf.function(model.train_step)
    rng = np.random.default_rng(0)
    for _ in range(80):
        idx = rng.choice(len(y), 20, replace=False)
        logs = step((tf.constant(x[idx]), tf.constant(y[idx])))
    return model, logs, before, _rec_error(model, x, y), x, y


def test_training_reconstructs_better_with_finite_losses(trained):
    model, logs, before, after, *_ = trained
    assert set(logs) == {"loss", "reconstruction", "kl"} and all(np.isfinite(float(v)) for v in logs.values())
    assert float(logs["kl"]) >= 0
    assert after < 0.5 * before, (before, after)


def test_encode_mean_is_deterministic_and_samples_are_seeded(trained):
    model, _, _, _, x, y = trained
    mean = model.encode(x[:5], y[:5])
    assert mean.shape == (5, 4) and mean.dtype == np.float32
    np.testing.assert_array_equal(model.encode(x[:5], y[:5]), mean)
    np.testing.assert_allclose(model.encode(x[3:4], y[3:4])[0], mean[3], rtol=1e-5, atol=1e-6)
    s1 = model.encode(x[:5], y[:5], sample=True, seed=1)
    np.testing.assert_array_equal(model.encode(x[:5], y[:5], sample=True, seed=1), s1)
    assert not np.allclose(s1, model.encode(x[:5], y[:5], sample=True, seed=2))
    assert not np.allclose(s1, mean)
    decoded = model.decode(mean, y[:5])
    assert decoded.shape == (5, 8, 8, 1) and decoded.min() >= -1 and decoded.max() <= 1


def test_sampling_contract_and_class_use(trained):
    model = trained[0]
    imgs = check_sampling_contract(model, 3)
    assert model.sampling_network is model.decoder
    same_seed_other_class = np.allclose(imgs[0], model.sample([1], [3])[0])
    # The VAE ignores the class id; the CVAE's decoder uses it.
    assert same_seed_other_class == (not model.conditional)
    assert model.kind == ("cvae" if model.conditional else "vae")


def test_errors_are_one_sentence_tfaug_errors():
    keras.utils.set_random_seed(0)
    cvae = build_cvae((8, 8, 1), 2, CFG)
    x = np.zeros((2, 8, 8, 1), np.float32)
    with pytest.raises(TfaugError, match="class ids"):
        cvae.encode(x)
    with pytest.raises(TfaugError, match="class ids must be in"):
        cvae.encode(x, [0, 2])
    with pytest.raises(TfaugError, match="shape"):
        cvae.encode(np.zeros((2, 9, 8, 1), np.float32), [0, 1])
    with pytest.raises(TfaugError, match="z must have shape"):
        cvae.decode(np.zeros((2, 3)), [0, 1])
    with pytest.raises(TfaugError, match="beta"):
        build_vae((8, 8, 1), 2, GANConfig(**{**CFG.__dict__, "options": {"beta": 0.0}}))
    with pytest.raises(TfaugError, match="reconstruction"):
        build_vae((8, 8, 1), 2, GANConfig(**{**CFG.__dict__, "options": {"reconstruction": "l1"}}))
    with pytest.raises(TfaugError, match="encoder takes"):
        VAE(cvae.encoder, cvae.decoder, 2, 4)
    plain = build_vae((8, 8, 1), 2, GANConfig(**{**CFG.__dict__, "options": {"beta": 4.0, "reconstruction": "mse"}}))
    assert plain.beta == 4.0 and plain.reconstruction == "mse" and not isinstance(plain, CVAE)
    np.testing.assert_array_equal(plain.encode(x), plain.encode(x, [0, 1]))  # the VAE ignores class ids


def test_runner_checkpoint_loader_and_export(tmp_path):
    x, y = toy_images(n_per_class=4, num_classes=2, size=12)
    run = check_run_round_trip(tmp_path, x, y, GANConfig(**{**CFG.__dict__, "model": "cvae"}))
    assert {"loss", "reconstruction", "kl"} <= set(run.history[-1])


def test_vae_sampling_network_with_an_ignored_class_input_saves_and_loads(tmp_path, trained):
    model = trained[0]
    path = tmp_path / "generator.keras"
    model.sampling_network.save(path)
    loaded = keras.models.load_model(path, compile=False)
    z = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    ids = np.array([0, 1, 2], np.int32)
    np.testing.assert_allclose(np.asarray(loaded([z, ids])), model.decode(z, ids), rtol=1e-5, atol=1e-6)
