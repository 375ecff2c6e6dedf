"""Downstream Keras apps: TFSMLayer with the default endpoint, int32 seeds, the seed-taking Keras model, and an
exported classifier used as a layer (uint8 in, probabilities out)."""
import types

import numpy as np
import pytest

from tests_helpers import TINY_K as K, TINY_NAMES as NAMES, TINY_SHAPE as SHAPE, TINY_Z_DIM as Z_DIM, tiny_generator  # noqa: E402,F401




@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import tensorflow as tf

    from tfaug.export.savedmodel import export_generator

    model = tiny_generator()
    base = tmp_path_factory.mktemp("saved_models")
    path = export_generator(model, z_dim=Z_DIM, num_classes=K, metadata={"class_names": NAMES}, name="toy", base=base)
    return types.SimpleNamespace(model=model, path=path, loaded=tf.saved_model.load(str(path)))


CLS = np.array([2, 0, 1, 1], np.int32)
SEEDS = np.array([3, 4, -7, 2**31 - 1], np.int64)


def _served(exported, cls=CLS, seeds=SEEDS, psi=None):
    import tensorflow as tf

    feeds = {"class_id": tf.constant(cls, tf.int32), "seed": tf.constant(seeds, tf.int64)}
    if psi is None:
        return exported.loaded.signatures["serving_default"](**feeds)["images"].numpy()
    return exported.loaded.signatures["truncated"](**feeds, truncation=tf.constant(psi, tf.float32))["images"].numpy()


@pytest.mark.parametrize("seed_dtype", ["int32", "int64"])
def test_tfsmlayer_default_endpoint_in_a_keras_model(exported, seed_dtype):
    import keras

    layer = keras.layers.TFSMLayer(str(exported.path))  # call_endpoint "serve", Keras' default
    class_in = keras.Input((), dtype="int32", name="class_id")
    seed_in = keras.Input((), dtype=seed_dtype, name="seed")
    images = layer({"class_id": class_in, "seed": seed_in})["images"]
    app = keras.Model([class_in, seed_in], keras.ops.cast(images, "float32") / 127.5 - 1.0)
    got = app.predict([CLS, SEEDS.astype(seed_dtype)], verbose=0)
    expected = _served(exported)
    assert expected.std() > 0
    np.testing.assert_allclose(got, expected / 127.5 - 1.0, atol=1e-6)


def test_one_dict_endpoints_accept_int32_and_int64_ids_and_seeds(exported):
    import tensorflow as tf

    expected = _served(exported)
    for fn in (exported.loaded.serve, exported.loaded.generate):
        for cls_dtype in (tf.int32, tf.int64):
            for seed_dtype in (tf.int32, tf.int64):
                out = fn({"class_id": tf.constant(CLS, cls_dtype), "seed": tf.constant(SEEDS, seed_dtype)})
                np.testing.assert_array_equal(out["images"].numpy(), expected)
                assert out["seed"].dtype == tf.int64 and out["class_id"].dtype == tf.int32
    psi = np.array([0.5, 1.0, 0.0, 0.7], np.float32)
    out = exported.loaded.generate_truncated({"class_id": tf.constant(CLS, tf.int64),
                                               "seed": tf.constant(SEEDS, tf.int32), "truncation": tf.constant(psi)})
    np.testing.assert_array_equal(out["images"].numpy(), _served(exported, psi=psi))
    with pytest.raises(tf.errors.InvalidArgumentError, match="class_id"):
        exported.loaded.serve({"class_id": tf.constant([K], tf.int32), "seed": tf.constant([0], tf.int32)})


def test_seed_taking_keras_model_reproduces_served_images_and_saves(exported, tmp_path):
    import keras

    import tfaug  # noqa: F401  (registers the seeded layers for load_model)
    from tfaug.synthesis.loader import KerasGenerator

    gen = KerasGenerator(exported.model, Z_DIM, num_classes=K)
    seeded = gen.keras_model()
    got = seeded.predict({"class_id": CLS, "seed": SEEDS}, verbose=0)["images"]
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, _served(exported))
    seeded.save(tmp_path / "seeded.keras")
    reloaded = keras.models.load_model(tmp_path / "seeded.keras", compile=False)
    np.testing.assert_array_equal(reloaded.predict({"class_id": CLS, "seed": SEEDS}, verbose=0)["images"], got)
    psi = np.array([0.0, 0.3, 1.0, 0.9], np.float32)
    truncated = gen.keras_model(truncation=True).predict({"class_id": CLS, "seed": SEEDS, "truncation": psi},
                                                          verbose=0)["images"]
    np.testing.assert_array_equal(truncated, _served(exported, psi=psi))
    assert not np.array_equal(truncated, got)


def test_seed_taking_model_of_a_three_input_network_passes_psi_through():
    import keras

    from tfaug.models.networks.seeded import seeded_generator

    keras.utils.set_random_seed(1)
    z, c, t = keras.Input((Z_DIM,)), keras.Input((), dtype="int32"), keras.Input(())
    h = keras.layers.Concatenate()([z, keras.layers.Embedding(K, 2)(c), keras.layers.Reshape((1,))(t)])
    net = keras.Model([z, c, t], keras.layers.Reshape((2, 2, 1))(keras.layers.Dense(4, activation="tanh")(h)))
    import tensorflow as tf

    from tfaug.models.sampling import generator_images
    from tfaug.utils.images import to_uint8

    cls, seeds = tf.constant(CLS), tf.constant(SEEDS)
    psi = np.array([0.2, 1.0, 0.5, 1.0], np.float32)
    with_psi = seeded_generator(net, Z_DIM, truncation=True).predict(
        {"class_id": CLS, "seed": SEEDS, "truncation": psi}, verbose=0)["images"]
    np.testing.assert_array_equal(with_psi, to_uint8(generator_images(net, Z_DIM, cls, seeds, tf.constant(psi)).numpy()))
    plain = seeded_generator(net, Z_DIM).predict({"class_id": CLS, "seed": SEEDS}, verbose=0)["images"]
    np.testing.assert_array_equal(plain, to_uint8(generator_images(net, Z_DIM, cls, seeds).numpy()))


def test_exported_classifier_as_tfsmlayer_takes_uint8_and_returns_probabilities(tmp_path):
    import keras
    import tensorflow as tf

    from tfaug.export.savedmodel import export_classifier

    keras.utils.set_random_seed(0)
    inp = keras.Input(SHAPE)
    model = keras.Model(inp, keras.layers.Dense(K)(keras.layers.Flatten()(inp)))  # logits
    path = export_classifier(model, metadata={"class_names": NAMES}, name="clf", base=tmp_path)
    images_in = keras.Input(SHAPE, dtype="uint8", name="images")
    probs = keras.layers.TFSMLayer(str(path))(images_in)["probabilities"]  # default endpoint
    app = keras.Model(images_in, keras.ops.argmax(probs, axis=-1))
    images = np.random.default_rng(0).integers(0, 256, (5, *SHAPE), dtype=np.uint8)
    expected = tf.nn.softmax(model(images.astype(np.float32) / 127.5 - 1.0)).numpy()
    layer_probs = keras.layers.TFSMLayer(str(path))(tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(layer_probs.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(layer_probs, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(app.predict(images, verbose=0), expected.argmax(axis=1))
