"""AC-GAN: finite train steps, the sampling contract, the class head learning a separable toy set, K = 1,
options, and a run through the runner, loader and exporter."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests_helpers import check_run_round_trip, check_sampling_contract, toy_images
from tfaug.config import GANConfig
from tfaug.errors import TfaugError
from tfaug.models.acgan import ACGAN, build_acgan
from tfaug.models.networks.encoders import build_acgan_discriminator
from tfaug.models.networks.generators import build_generator

CFG = GANConfig(model="acgan", z_dim=8, width=8, batch_size=30, diffaugment="", ema_decay=0.9, mode_seeking=0.0,
                steps=3, sample_every=0, checkpoint_every=0, seed=0)


def _float(x):
    return (x.astype(np.float32) / 127.5 - 1.0)


@pytest.fixture(scope="module")
def trained():
    """AC-GAN trained 40 steps on the 3-class toy set (8x8, bands), with translation DiffAugment under ADA and R1."""
    x, y = toy_images()
    keras.utils.set_random_seed(0)
    model = build_acgan((8, 8, 1), 3, GANConfig(**{**CFG.__dict__, "diffaugment": "translation", "r1": 1.0,
                                                   "ada_target": 0.6, "ada_interval": 1}))
    step = tf.function(model.train_step)
    rng = np.random.default_rng(0)
    before = _accuracy(model, x, y)
    for _ in range(40):
        idx = rng.choice(len(y), 30, replace=False)
        logs = step((tf.constant(_float(x[idx])), tf.constant(y[idx])))
    return model, logs, before, x, y


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(model.classify(_float(x)).numpy(), axis=1) == y))


def test_train_steps_are_finite_and_report_every_term(trained):
    model, logs, *_ = trained
    assert set(logs) == {"d_loss", "g_loss", "aux_loss", "class_acc", "d_real", "d_fake", "r1", "ada_p"}
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert float(logs["r1"]) >= 0 and 0.0 <= float(logs["ada_p"]) <= 1.0 and 0.0 <= float(logs["class_acc"]) <= 1.0
    assert int(model.d_optimizer.iterations.numpy()) == 40 and int(model.g_optimizer.iterations.numpy()) == 40


def test_class_head_learns_a_separable_toy_set(trained):
    model, logs, before, x, y = trained
    after = _accuracy(model, x, y)
    assert before < 0.7 and after >= 0.95, (before, after)


def test_sampling_contract(trained):
    model = trained[0]
    check_sampling_contract(model, 3)
    # The EMA generator is the sampling network, distinct from the raw generator.
    assert model.sampling_network is model.ema_generator
    raw = model.sample([0, 1], [1, 2], use_ema=False)
    assert not np.allclose(raw, model.sample([0, 1], [1, 2]))


def test_one_class_trains_as_an_unconditional_gan():
    keras.utils.set_random_seed(1)
    model = build_acgan((8, 8, 1), 1, CFG)
    x = tf.constant(_float(toy_images(n_per_class=6)[0][:8]))
    logs = model.train_step((x, tf.zeros([8], tf.int32)))
    assert float(logs["aux_loss"]) == 0.0 and float(logs["class_acc"]) == 1.0
    assert np.isfinite(float(logs["d_loss"])) and model.sample([0, 0], [1, 2]).shape == (2, 8, 8, 1)


def test_options_and_errors():
    keras.utils.set_random_seed(2)
    model = build_acgan((8, 8, 1), 2, GANConfig(**{**CFG.__dict__, "options": {"aux_weight": 0.5,
                                                                              "fake_class_loss": "false"}}))
    assert model.aux_weight == 0.5 and model.fake_class_loss is False
    with pytest.raises(TfaugError, match="no option 'n_critic'"):
        build_acgan((8, 8, 1), 2, GANConfig(**{**CFG.__dict__, "options": {"n_critic": 5}}))
    g = build_generator((8, 8, 1), 3, z_dim=8, width=4)
    with pytest.raises(TfaugError, match="class head"):
        ACGAN(g, build_acgan_discriminator((8, 8, 1), 2, width=4), 3, 8)
    with pytest.raises(TfaugError, match="aux_weight"):
        ACGAN(g, build_acgan_discriminator((8, 8, 1), 3, width=4), 3, 8, aux_weight=-1.0)


def test_runner_checkpoint_loader_and_export(tmp_path):
    x, y = toy_images(n_per_class=5)
    run = check_run_round_trip(tmp_path, x, y, CFG)
    assert {"d_loss", "aux_loss", "class_acc"} <= set(run.history[-1])
