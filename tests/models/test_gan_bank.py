"""GAN bank (S3): one generator and one discriminator per class, class c sampled from generator c, absent classes
left alone by the D step, the discriminator-bank scores, and the sampling contract."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaug.config import GANConfig
from tfaug.errors import TfaugError
from tfaug.models.zoo import build_model
from tests_helpers import toy_images

K = 3
CFG = GANConfig(model="gan-bank", steps=4, z_dim=8, batch_size=12, diffaugment="translation", ema_decay=0.0,
                sample_every=0, checkpoint_every=0, options={"g_units": "16,32", "d_units": "32,16"})


def _float(x):
    return x.astype(np.float32) / 127.5 - 1.0


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """A 4-step run of a 3-class bank (~4 s)."""
    from tfaug.training.gan_runner import train_gan

    x, y = toy_images(n_per_class=8, num_classes=K)
    run_dir = tmp_path_factory.mktemp("gan_bank") / "run"
    run = train_gan(x, y, class_names=["a", "b", "c"], cfg=CFG, out=run_dir, progress=False, log_every=1)
    return run.model, _float(x), y, run_dir, run.history


def _slices(net, k):
    """Class k's slice of every weight of a bank model."""
    return [np.asarray(w)[k] for w in net.get_layer("bank").weights]


def _changed(a, b):
    return any(not np.array_equal(u, v) for u, v in zip(a, b))


def test_one_generator_and_discriminator_per_class(bank):
    model = bank[0]
    assert len(model.generators) == len(model.discriminators) == K
    assert sorted(model.networks()) == ["discriminators", "ema_generators", "generators"]
    g = model.generator.get_layer("bank")
    assert [tuple(w.shape) for w in g.weights if w.name.startswith("kernel")] == [(K, 8, 16), (K, 16, 32),
                                                                                  (K, 32, 64)]
    assert sum(w.name.startswith("gamma") for w in g.weights) == 2  # BatchNorm on the hidden layers
    d = model.discriminator.get_layer("bank")
    assert [tuple(w.shape) for w in d.weights if w.name.startswith("kernel")] == [(K, 64, 32), (K, 32, 16),
                                                                                  (K, 16, 1)]


def test_absent_class_discriminator_untouched_but_generators_train(bank):
    _, x, y = bank[:3]
    keras.utils.set_random_seed(0)
    model = build_model("gan-bank", (8, 8, 1), K, CFG)
    before = {c: (_slices(model.discriminator, c), _slices(model.generator, c)) for c in range(K)}
    no_two = np.flatnonzero(y != 2)[:12]
    model.train_step((tf.constant(x[no_two]), tf.constant(y[no_two])))  # eager: one step, no tracing
    after = {c: (_slices(model.discriminator, c), _slices(model.generator, c)) for c in range(K)}
    assert _changed(before[0][0], after[0][0]) and _changed(before[1][0], after[1][0])
    # Class 2 had no real image in the batch: zero gradient, and Adam's first step from zero moments is 0.
    assert not _changed(before[2][0], after[2][0])
    assert all(_changed(before[c][1], after[c][1]) for c in range(K))  # every generator trains


def test_train_steps_finite(bank):
    logs = bank[-1]
    assert len(logs) == 4 and set(logs[-1]) == {"step", "time_s", "d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v) for r in logs for v in r.values())


def test_sample_contract(bank):
    model = bank[0]
    a = model.sample([0, 1, 2, 1], [3, 4, 5, 6])
    assert a.shape == (4, 8, 8, 1) and a.dtype == np.float32 and a.min() >= -1.0 and a.max() <= 1.0
    np.testing.assert_allclose(model.sample([2], [5])[0], a[2], atol=1e-6)
    np.testing.assert_array_equal(model.sample([0, 1, 2, 1], [3, 4, 5, 6]), a)
    assert not np.allclose(a[1], a[3])


def test_class_c_comes_from_generator_c(bank):
    model = bank[0]
    ids, seeds = np.array([0, 1, 2, 0, 1, 2]), np.arange(6)
    base = model.sample(ids, seeds)
    layer = model.ema_generator.get_layer("bank")
    saved = [np.asarray(w).copy() for w in layer.weights]
    try:
        for w in layer.weights:
            if w.name.startswith("kernel"):
                moved_w = np.asarray(w).copy()
                moved_w[1] += 0.5
                w.assign(moved_w)
        moved = model.sample(ids, seeds)
    finally:
        for w, v in zip(layer.weights, saved):
            w.assign(v)
    changed = np.abs(moved - base).reshape(6, -1).max(axis=1) > 1e-4
    np.testing.assert_array_equal(changed, ids == 1)
    # A row's image equals generator c run alone on that row's latent.
    from tfaug.models.sampling import latent_from_seeds

    z = latent_from_seeds(seeds, CFG.z_dim)
    np.testing.assert_allclose(model.generators[2](z[2:3]).numpy()[0], base[2], atol=1e-6)


def test_discriminator_scores_are_each_discriminator(bank):
    model, x = bank[0], bank[1]
    scores = model.discriminator_scores(x[:5], batch_size=2)
    assert scores.shape == (5, K) and scores.min() >= 0.0 and scores.max() <= 1.0
    want = tf.sigmoid(model.discriminators[1](x[:5])).numpy()[:, 0]
    np.testing.assert_allclose(scores[:, 1], want, atol=1e-6)
    assert not np.allclose(scores[:, 0], scores[:, 1])
    with pytest.raises(TfaugError):
        model.discriminator_scores(x[:2, :4])


def test_bad_options_are_one_sentence_errors():
    with pytest.raises(TfaugError, match="no option"):
        build_model("gan-bank", (8, 8, 1), 2, GANConfig(options={"units": "1"}))
    with pytest.raises(TfaugError, match="g_units"):
        build_model("gan-bank", (8, 8, 1), 2, GANConfig(options={"g_units": "16,x"}))


def test_run_dir_generator_and_export_match_sample(bank, tmp_path):
    from tfaug.export.savedmodel import export_run
    from tfaug.synthesis.loader import load_generator

    model, run_dir = bank[0], bank[3]
    ids, seeds = np.array([2, 0, 1, 2], np.int32), np.array([7, 8, 9, 10], np.int64)
    want = model.sample(ids, seeds)
    np.testing.assert_allclose(load_generator(run_dir).sample(ids, seeds), want, atol=1e-5)
    served = load_generator(export_run(run_dir, "gan_bank", base=tmp_path / "saved_models")).sample(ids, seeds)
    np.testing.assert_allclose(served, want, atol=1.5 / 127.5)
