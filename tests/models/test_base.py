"""GenerativeModel's adversarial helpers: augmentation/ADA state, EMA copies (BatchNorm included), state variables."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaug.config import GANConfig
from tfaug.errors import TfaugError
from tfaug.models.cgan import build_conditional_gan

CFG = GANConfig(z_dim=8, width=8, diffaugment="", ema_decay=0.5)


def _gan(**changes):
    keras.utils.set_random_seed(0)
    return build_conditional_gan((8, 8, 1), 3, GANConfig(**{**CFG.__dict__, **changes}))


def test_augment_is_identity_without_policy_and_differentiable_with_one():
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32))
    plain = _gan()
    assert plain.augment(x) is x and plain.ada is None and plain.augmentation_metrics == []
    aug = _gan(diffaugment="translation,cutout")
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = aug.augment(x)
        total = tf.reduce_sum(y)
    assert not np.allclose(y.numpy(), x.numpy())
    assert float(tf.reduce_sum(tf.abs(tape.gradient(total, x)))) > 0


def test_ada_state_moves_and_is_checkpoint_state():
    gan = _gan(ada_target=0.6, ada_interval=1, ada_kimg=0.01)
    assert gan.ada_p == 0.0 and [m.name for m in gan.augmentation_metrics] == ["ada_p"]
    # p = 0: augment leaves images alone.
    x = tf.zeros((4, 8, 8, 1)) + 0.3
    np.testing.assert_array_equal(gan.augment(x).numpy(), x.numpy())
    gan.observe_real_logits(tf.ones((8, 1)))  # r_t = 1 > 0.6: p += 8 / 10
    assert gan.ada_p == pytest.approx(0.8)
    gan.observe_real_logits(-tf.ones((8, 1)))  # r_t = -1: p -= 0.8
    assert gan.ada_p == pytest.approx(0.0, abs=1e-6)
    state = gan.state_variables()
    assert {"seed_state", "ada_p", "ada_sign_sum", "ada_count", "ada_steps"} <= set(state)
    assert "ada_p" not in _gan().state_variables()


def test_train_step_with_ada_and_r1_reports_them():
    gan = _gan(ada_target=0.6, ada_interval=1, ada_kimg=0.01, r1=1.0, diffaugment="translation")
    rng = np.random.default_rng(1)
    data = (tf.constant(rng.uniform(-1, 1, (6, 8, 8, 1)).astype(np.float32)), tf.constant([0, 1, 2, 0, 1, 2]))
    for _ in range(2):  # eager here; tests/training/test_gan_runner.py runs ADA inside the compiled step
        logs = gan.train_step(data)
    assert {"d_loss", "g_loss", "r1", "ada_p"} <= set(logs)
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert float(logs["r1"]) >= 0 and 0.0 <= float(logs["ada_p"]) <= 1.0
    assert int(gan.ada.steps.numpy()) == 2


def test_make_and_update_ema_include_batchnorm_statistics():
    from tfaug.models.base import GenerativeModel

    keras.utils.set_random_seed(2)
    inp = keras.Input((3,))
    net = keras.Model(inp, keras.layers.BatchNormalization()(keras.layers.Dense(4)(inp)))
    ema = GenerativeModel.make_ema(net)
    assert not ema.trainable and len(ema.weights) == len(net.weights) == 6  # kernel, bias, gamma, beta, mean, var
    net(np.random.default_rng(0).normal(3.0, 2.0, (16, 3)).astype(np.float32), training=True)  # moves BN stats
    for w in net.trainable_weights:
        w.assign(w + 1.0)
    before = [w.numpy().copy() for w in ema.weights]
    GenerativeModel.update_ema(ema, net, 0.25)
    for e, b, w in zip(ema.weights, before, net.weights):
        np.testing.assert_allclose(e.numpy(), 0.25 * b + 0.75 * w.numpy(), rtol=1e-6, atol=1e-6)
    assert not np.allclose(ema.weights[4].numpy(), before[4])  # the moving mean was averaged too


def test_bad_ada_settings_are_errors():
    with pytest.raises(TfaugError, match="ada_target"):
        GANConfig(ada_target=1.0)
    with pytest.raises(TfaugError, match="r1"):
        GANConfig(r1=-1.0)
    with pytest.raises(TfaugError, match="model must be"):
        GANConfig(model="")


# -- truncation (issue 7) -------------------------------------------------------------------------------------


def _plain_standin(z_dim=6, k=3):
    """A tiny two-input sampling network [z, class_id] -> [N, 8, 8, 1] (truncated as psi * z)."""
    keras.utils.set_random_seed(5)
    z = keras.Input((z_dim,), name="z")
    c = keras.Input((), dtype="int32", name="class_id")
    h = keras.layers.Dense(32, activation="tanh")(keras.layers.Concatenate()([z, keras.layers.Embedding(k, 4)(c)]))
    h = keras.layers.Reshape((4, 4, 2))(keras.layers.Dense(32)(h))
    h = keras.layers.Conv2D(1, 3, padding="same", activation="tanh")(keras.layers.UpSampling2D()(h))
    return keras.Model([z, c], h)


def _style_standin(z_dim=6, k=3, w_dim=8):
    """A tiny three-input sampling network [z, class_id, truncation] -> [N, 8, 8, 1] that truncates like stylegan:
    w = w_avg[c] + psi * (w - w_avg[c]), with w_avg a per-class embedding (stand-in for ClassTruncation)."""
    keras.utils.set_random_seed(4)
    z = keras.Input((z_dim,), name="z")
    c = keras.Input((), dtype="int32", name="class_id")
    psi = keras.Input((), name="truncation")
    w = keras.layers.Dense(w_dim)(keras.layers.Concatenate()([z, keras.layers.Embedding(k, 4)(c)]))
    w_avg = keras.layers.Embedding(k, w_dim)(c)
    w = w_avg + keras.ops.expand_dims(psi, -1) * (w - w_avg)
    h = keras.layers.Reshape((4, 4, 2))(keras.layers.Dense(32)(w))
    h = keras.layers.Conv2D(1, 3, padding="same", activation="tanh")(keras.layers.UpSampling2D()(h))
    return keras.Model([z, c, psi], h)


def _mean_pairwise_distance(images):
    flat = images.reshape(len(images), -1)
    d = np.sqrt(((flat[:, None] - flat[None]) ** 2).sum(-1))
    return d[np.triu_indices(len(flat), 1)].mean()


@pytest.fixture(scope="module")
def samplers():
    from tfaug.models.base import GenerativeModel

    class Standin(GenerativeModel):
        kind = "standin"

        def __init__(self, net):
            super().__init__(3, 6)
            self.net = net

        @property
        def sampling_network(self):
            return self.net

    return {"plain": Standin(_plain_standin()), "style": Standin(_style_standin())}


@pytest.mark.parametrize("which", ["plain", "style"])
def test_sample_truncation_one_is_none_zero_is_the_class_average(samplers, which):
    model = samplers[which]
    cls, seeds = np.array([0, 0, 0, 0, 1, 2]), np.array([1, 2, 3, 4, 1, 1])
    plain = model.sample(cls, seeds)
    np.testing.assert_array_equal(model.sample(cls, seeds, truncation=1.0), plain)
    np.testing.assert_array_equal(model.sample(cls, seeds, truncation=np.ones(6)), plain)
    zero = model.sample(cls, seeds, truncation=0.0)
    for i in range(1, 4):  # class 0, four seeds: one image
        np.testing.assert_array_equal(zero[i], zero[0])
    assert not np.array_equal(plain[1], plain[0])
    assert not np.array_equal(zero[4], zero[0]) and not np.array_equal(zero[5], zero[4])  # one per class
    # Per-row psi: row i is what a batch of that psi alone gives (a psi never leaks across rows).
    mixed = model.sample(cls, seeds, truncation=[1, 0, 1, 0, 0.5, 1])
    np.testing.assert_allclose(mixed[[0, 2, 5]], plain[[0, 2, 5]], atol=1e-6)
    np.testing.assert_allclose(mixed[[1, 3]], zero[[1, 3]], atol=1e-6)


@pytest.mark.parametrize("which", ["plain", "style"])
def test_truncated_samples_vary_less(samplers, which):
    model = samplers[which]
    seeds = np.arange(16)
    full = _mean_pairwise_distance(model.sample(np.zeros(16, np.int32), seeds))
    half = _mean_pairwise_distance(model.sample(np.zeros(16, np.int32), seeds, truncation=0.5))
    assert full > 0 and half < 0.8 * full


@pytest.mark.parametrize("psi, match", [(-0.1, "out of range"), (1.5, "out of range"), (float("nan"), "out of range"),
                                        ([0.5, 0.5, 0.5], "one value per row"), ("x", "number")])
def test_bad_truncation_is_one_sentence_error(samplers, psi, match):
    with pytest.raises(TfaugError, match=match) as info:
        samplers["plain"].sample([0, 1], [1, 2], truncation=psi)
    assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")
