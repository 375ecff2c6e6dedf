"""Conditional WGAN-GP: n_critic critic updates per step, finite losses, the sampling contract, the paper's Adam,
options and errors, and a run through the runner, loader and exporter."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests_helpers import check_run_round_trip, check_sampling_contract, toy_images
from tfaug.config import GANConfig
from tfaug.errors import TfaugError
from tfaug.models.networks.discriminators import build_discriminator
from tfaug.models.networks.generators import build_generator
from tfaug.models.wgan import WGANGP, build_wgan_gp

CFG = GANConfig(model="wgan-gp", z_dim=8, width=8, batch_size=16, diffaugment="", ema_decay=0.9, mode_seeking=0.0,
                steps=2, sample_every=0, checkpoint_every=0, seed=0, options={"n_critic": 2})


def _float(x):
    return x.astype(np.float32) / 127.5 - 1.0


@pytest.fixture(scope="module")
def trained():
    """WGAN-GP (n_critic 2, concat conditioning, DiffAugment translation) after 4 steps on the toy set."""
    x, y = toy_images(n_per_class=6)
    keras.utils.set_random_seed(0)
    cfg = GANConfig(**{**CFG.__dict__, "diffaugment": "translation", "mode_seeking": 0.05,
                       "options": {"n_critic": 2, "conditioning": "concat"}})
    model = build_wgan_gp((8, 8, 1), 3, cfg)
    for _ in range(4):  # eagerly: four steps cost less than tracing the step (second-order gradients)
        logs = model.train_step((tf.constant(_float(x)), tf.constant(y)))
    return model, logs


def test_each_step_is_n_critic_critic_updates_and_one_generator_update(trained):
    model, logs = trained
    assert set(logs) == {"d_loss", "g_loss", "gp", "w_distance"}
    assert all(np.isfinite(float(v)) for v in logs.values()) and float(logs["gp"]) >= 0
    assert int(model.d_optimizer.iterations.numpy()) == 8 and int(model.g_optimizer.iterations.numpy()) == 4


def test_sampling_contract(trained):
    model = trained[0]
    check_sampling_contract(model, 3)
    assert model.sampling_network is model.ema_generator and "critic" in model.networks()


def test_paper_adam_by_default_config_adam_on_request():
    keras.utils.set_random_seed(0)
    model = build_wgan_gp((8, 8, 1), 2, GANConfig(**{**CFG.__dict__, "options": {}}))
    assert model.n_critic == 5 and model.gp_weight == 10.0
    for opt in (model.d_optimizer, model.g_optimizer):
        assert float(opt.learning_rate) == pytest.approx(1e-4) and opt.beta_1 == 0.0 and opt.beta_2 == 0.9
    model = build_wgan_gp((8, 8, 1), 2, GANConfig(**{**CFG.__dict__, "g_lr": 3e-4, "options": {"adam": "config"}}))
    assert float(model.g_optimizer.learning_rate) == pytest.approx(3e-4) and model.g_optimizer.beta_1 == 0.5


def test_bad_options_and_batchnorm_critic_are_errors():
    bad = [({"adam": "sgd"}, "adam"), ({"conditioning": "film"}, "conditioning"), ({"n_critic": 0}, "n_critic"),
           ({"gp": 1.0}, "no option 'gp'")]
    for options, match in bad:
        with pytest.raises(TfaugError, match=match):
            build_wgan_gp((8, 8, 1), 2, GANConfig(**{**CFG.__dict__, "options": options}))
    g = build_generator((8, 8, 1), 2, z_dim=8, width=4)
    images = keras.Input((8, 8, 1))
    class_id = keras.Input((), dtype="int32")
    d = build_discriminator((8, 8, 1), 2, width=4)
    bn_critic = keras.Model([images, class_id], d([keras.layers.BatchNormalization()(images), class_id]))
    with pytest.raises(TfaugError, match="BatchNormalization"):
        WGANGP(g, bn_critic, 2, 8)


def test_runner_checkpoint_loader_and_export(tmp_path):
    x, y = toy_images(n_per_class=4, num_classes=2, size=12)
    run = check_run_round_trip(tmp_path, x, y, GANConfig(**{**CFG.__dict__, "options": {"n_critic": 1}}))
    assert {"gp", "w_distance"} <= set(run.history[-1])
