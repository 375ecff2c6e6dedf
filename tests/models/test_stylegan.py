"""StyleGAN (zoo ``stylegan``): network structure of the contract, training updates, truncation, sampling,
``.keras`` round trip and config round trip. One tiny model trained for a few steps serves every test."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaug.config import preset, replace
from tfaug.errors import TfaugError
from tfaug.models.networks.style import ClassTruncation
from tfaug.models.sampling import generator_images, latent_from_seeds, takes_truncation
from tfaug.models.stylegan import StyleGAN, build_stylegan

STEPS = 4


def _cfg(**options):
    return replace(preset("gan/stylegan-quick"), z_dim=8, width=4, ema_decay=0.5,
                   options={"w_dim": 8, "mapping_layers": 2, "r1_interval": 2, **options})


@pytest.fixture(scope="module")
def trained():
    """(model, weights before training) after STEPS compiled train steps on the 8x8 toy set."""
    from conftest import toy_images

    keras.utils.set_random_seed(0)
    x, y = toy_images()
    model = build_stylegan((8, 8, 1), 3, _cfg())
    before = {name: [w.copy() for w in net.get_weights()] for name, net in model.networks().items()}
    before["w_avg"] = model.truncation.w_avg.numpy().copy()
    step = tf.function(model.train_step)
    images = x.astype(np.float32) / 127.5 - 1.0
    rng = np.random.default_rng(0)
    for _ in range(STEPS):
        idx = rng.choice(len(x), 12, replace=False)
        logs = step((images[idx], y[idx]))
    return model, before, {k: float(v) for k, v in logs.items()}


def test_network_structure_follows_the_contract(trained):
    model, _, _ = trained
    g = model.generator
    assert [t.shape[-1] for t in g.inputs] == [8, None] and g.output_shape == (None, 8, 8, 1)
    mapping, synthesis = g.get_layer("mapping"), g.get_layer("synthesis")
    assert mapping.output_shape == (None, 8) and model.w_dim == 8
    assert isinstance(mapping.get_layer("class_embedding"), keras.layers.Embedding)
    assert mapping.get_layer("class_embedding").input_dim == 3
    assert synthesis.input_shape == (None, 8)
    d = model.discriminator
    assert isinstance(d.get_layer("d_class_embedding"), keras.layers.Embedding)
    assert d.get_layer("d_features").output.shape[-1] == d.get_layer("d_class_embedding").output_dim
    net = model.sampling_network
    assert net is model.ema_generator and takes_truncation(net) and net.inputs[2].dtype == "float32"
    assert {"mapping", "synthesis", "truncation"} <= {layer.name for layer in net.layers}
    assert net.get_layer("mapping") is not mapping and net.get_layer("synthesis") is not synthesis  # EMA copies
    trunc = net.get_layer("truncation")
    assert isinstance(trunc, ClassTruncation) and trunc.w_avg.shape == (3, 8) and not trunc.w_avg.trainable
    assert set(model.networks()) == {"generator", "discriminator", "ema_generator"}


def test_train_steps_change_g_d_ema_and_w_avg(trained):
    model, before, logs = trained
    assert {"d_loss", "g_loss", "d_real", "d_fake", "r1"} <= set(logs) and all(np.isfinite(list(logs.values())))
    for name in ("generator", "discriminator", "ema_generator"):
        changed = [not np.array_equal(a, b) for a, b in zip(before[name], model.networks()[name].get_weights())]
        assert sum(changed) >= len(changed) // 2, name
    w_avg = model.truncation.w_avg.numpy()
    assert np.all(before["w_avg"] == 0) and np.all(np.abs(w_avg).sum(axis=1) > 0)  # every class moved
    assert model.w_avg_updates.numpy().sum() > 0
    # The noise buffers are fixed, and equal in the raw and the EMA synthesis.
    for raw, ema in zip(model.synthesis.layers, model.ema_synthesis.layers):
        if hasattr(raw, "noise_buffer"):
            np.testing.assert_array_equal(raw.noise_buffer.numpy(), ema.noise_buffer.numpy())


def test_sample_is_deterministic_in_range_and_batch_independent(trained):
    from tests_helpers import check_sampling_contract

    model, _, _ = trained
    check_sampling_contract(model, 3)
    raw = model.sample([0, 1], [4, 5], use_ema=False)
    assert raw.shape == (2, 8, 8, 1) and not np.allclose(raw, model.sample([0, 1], [4, 5]))


def test_truncation_psi_zero_gives_the_class_centre_and_psi_one_no_truncation(trained):
    model, _, _ = trained
    net = model.sampling_network
    ids = tf.constant([1, 1, 1, 2], tf.int32)
    seeds = tf.constant([1, 2, 3, 1], tf.int64)
    zero = generator_images(net, 8, ids, seeds, truncation=tf.zeros([4])).numpy()
    np.testing.assert_allclose(zero[0], zero[1], atol=1e-6)
    np.testing.assert_allclose(zero[0], zero[2], atol=1e-6)
    assert not np.allclose(zero[0], zero[3], atol=1e-3)  # another class, another centre
    centre = net.get_layer("synthesis")(model.truncation.w_avg.numpy()[[1]], training=False).numpy()
    np.testing.assert_allclose(zero[0], centre[0], atol=1e-6)
    z = latent_from_seeds(seeds, 8)
    plain = net.get_layer("synthesis")(net.get_layer("mapping")([z, ids]), training=False).numpy()
    one = generator_images(net, 8, ids, seeds, truncation=tf.ones([4])).numpy()
    np.testing.assert_allclose(one, plain, atol=1e-6)
    np.testing.assert_allclose(generator_images(net, 8, ids, seeds).numpy(), plain, atol=1e-6)
    assert not np.allclose(one[0], one[1], atol=1e-3)


def test_sampling_network_keras_round_trip_is_exact(trained, tmp_path):
    import tfaug.models.networks.layers  # noqa: F401  (registers the layers, as loaders do)

    model, _, _ = trained
    path = tmp_path / "generator.keras"
    model.sampling_network.save(str(path))
    loaded = keras.models.load_model(str(path), compile=False)
    z = latent_from_seeds(tf.constant([7, 8, 9], tf.int64), 8)
    inputs = [z, tf.constant([0, 2, 1], tf.int32), tf.constant([1.0, 0.5, 0.0])]
    np.testing.assert_array_equal(loaded(inputs, training=False).numpy(),
                                  model.sampling_network(inputs, training=False).numpy())
    assert loaded.get_layer("truncation").w_avg.shape == (3, 8)


def test_get_config_round_trip_and_option_errors(trained):
    model, _, _ = trained
    config = model.get_config()
    assert config["r1"] == 0.1 and config["r1_interval"] == 2 and config["ema_decay"] == 0.5
    clone = StyleGAN.from_config({**config, "generator": model.generator, "discriminator": model.discriminator})
    assert clone.get_config() == config and clone.w_dim == 8
    with pytest.raises(TfaugError, match="needs the 'generator'"):
        StyleGAN.from_config(config)
    with pytest.raises(TfaugError, match="no option 'depth'"):
        build_stylegan((8, 8, 1), 3, _cfg(depth=2))
    with pytest.raises(TfaugError, match="w_dim"):
        build_stylegan((8, 8, 1), 3, _cfg(w_dim=0))
