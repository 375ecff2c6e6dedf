"""AGE-style editing (tfaug.fewshot.age, tfaug.models.networks.age): shared directions recovered from a generator
whose within-class variation lies in a known subspace; the new-class network on an (untrained) stylegan."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.fewshot import age, latent

Z_DIM, W_DIM, K = 6, 8, 4
SCALES = np.array([3.0, 2.0, 1.0])  # standard deviation along each true direction


def _linear_generator(seed=0):
    """A style generator with w = centroid[c] + z[:, :3] @ (SCALES * basis): within-class variation lies in the
    3-d row space of ``basis`` (orthonormal [3, W_DIM]); returns (sampling network, basis, centroids)."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(W_DIM, 3)))[0].T.astype(np.float32)
    kernel = np.zeros((Z_DIM, W_DIM), np.float32)
    kernel[:3] = SCALES[:, None] * basis  # z entries 3.. do nothing
    centroids = rng.normal(0, 4, (K, W_DIM)).astype(np.float32)
    z = keras.Input((Z_DIM,), name="z")
    c = keras.Input((), dtype="int32", name="class_id")
    emb = keras.layers.Embedding(K, W_DIM, name="class_embedding")
    lin = keras.layers.Dense(W_DIM, use_bias=False, name="directions")
    mapping = keras.Model([z, c], keras.layers.Add()([emb(c), lin(z)]), name="mapping")
    emb.set_weights([centroids])
    lin.set_weights([kernel])
    w_in = keras.Input((W_DIM,))
    x = keras.layers.Reshape((8, 8, 1))(keras.layers.Dense(64, activation="tanh")(w_in))
    synthesis = keras.Model(w_in, x, name="synthesis")
    zz, cc = keras.Input((Z_DIM,), name="z"), keras.Input((), dtype="int32", name="class_id")
    psi = keras.Input((), name="psi")
    sampling = keras.Model([zz, cc, psi], synthesis(mapping([zz, cc])), name="sampling")
    return sampling, basis, centroids


def test_fit_directions_recovers_the_within_class_subspace():
    sampling, basis, centroids = _linear_generator()
    d = age.fit_directions(sampling, n_per_class=256, seed=1)
    assert d.directions.shape == (3, W_DIM) and d.centroids.shape == (K, W_DIM)  # 95% of variance: 3 directions
    # Each direction lies in the true subspace, and they are orthonormal.
    np.testing.assert_allclose(np.linalg.norm(d.directions @ basis.T, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(d.directions @ d.directions.T, np.eye(3), atol=1e-5)
    # Ordered by variance; scales near the true standard deviations (sampling error ~3% at n = 1024).
    np.testing.assert_allclose(d.scales, SCALES, rtol=0.1)
    assert np.all(np.diff(d.scales) < 0) and abs(d.explained_variance.sum() - 1.0) < 1e-4
    # Centroids within 4 standard errors of the true class centroids.
    assert np.abs(d.centroids - centroids).max() < 4 * SCALES[0] / np.sqrt(256)
    # The number of directions is capped by z_dim (each direction is driven by one entry of z).
    assert len(age.fit_directions(sampling, n_per_class=8, n_directions=50).directions) == Z_DIM
    with pytest.raises(TfaugError):
        age.fit_directions(sampling, n_directions=0)


def test_fit_directions_needs_a_style_generator():
    z = keras.Input((4,), name="z")
    c = keras.Input((), dtype="int32", name="class_id")
    plain = keras.Model([z, c], keras.layers.Reshape((2, 2, 1))(keras.layers.Dense(4)(z)))
    with pytest.raises(TfaugError, match="style-based"):
        age.fit_directions(plain)


@pytest.fixture(scope="module")
def stylegan():
    """An untrained (randomly initialised) stylegan for 8x8 gray images, 3 classes: the real network structure."""
    from tfaug.config import PRESETS
    from tfaug.models.zoo import build_model

    cfg = PRESETS["gan/stylegan-quick"]
    keras.utils.set_random_seed(0)
    return build_model("stylegan", (8, 8, 1), 3, cfg)


@pytest.fixture(scope="module")
def age_network(stylegan):
    """An AGE network for 'new class' images = three generated images of class 1 (pixel-only inversion)."""
    sampling = stylegan.sampling_network
    parts = latent.style_parts(sampling)
    _, images = latent.sample_pairs(parts, np.ones(3, np.int32), seed=7)
    directions = age.fit_directions(sampling, n_per_class=64, seed=0)
    net, info = age.age_class_network(sampling, images, refine_steps=20, directions=directions, seed=0)
    return net, info, directions, parts, images


def test_age_network_is_deterministic_and_varies_along_the_directions(age_network):
    net, info, directions, parts, images = age_network
    assert info["k"] == 3 and info["m"] == len(directions.directions) <= parts.z_dim
    assert 0.0 < info["explained_variance"] <= 1.0 and np.isfinite(info["inversion_pixel_mse"])
    z = tf.random.stateless_normal([4, parts.z_dim], seed=[3, 4])
    ones = tf.ones([4])
    a, b = np.asarray(net([z, ones])), np.asarray(net([z, ones]))
    assert a.shape == (4, *parts.image_shape) and a.min() >= -1.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)  # a pure function of (z, truncation)
    np.testing.assert_allclose(np.asarray(net([z[:1], ones[:1]]))[0], a[0], atol=1e-5)  # batch-independent
    assert np.abs(a[0] - a[1]).mean() > 0.02  # different z, different images (measured ~0.2)
    # w moves exactly along the directions: w - centroid = (z * scales) @ directions.
    layer = net.get_layer("age_latent")
    w = np.asarray(layer([z, ones]))
    offset = w - np.asarray(layer.centroid)[None]
    m = info["m"]
    np.testing.assert_allclose(offset, (np.asarray(z)[:, :m] * directions.scales[:m]) @ directions.directions[:m],
                               atol=1e-4)
    # Entries of z beyond the first m change nothing.
    z2 = tf.concat([z[:, :m], tf.random.stateless_normal([4, parts.z_dim - m], seed=[5, 6])], 1) \
        if m < parts.z_dim else z
    np.testing.assert_allclose(np.asarray(net([z2, ones])), a, atol=1e-5)


def test_truncation_zero_gives_the_centroid_image(age_network):
    net, _, _, parts, images = age_network
    z = tf.random.stateless_normal([3, parts.z_dim], seed=[8, 9])
    zero = np.asarray(net([z, tf.zeros([3])]))
    np.testing.assert_allclose(zero[0], zero[1], atol=1e-6)
    centroid = np.asarray(net.get_layer("age_latent").centroid)[None]
    np.testing.assert_allclose(zero[:1], np.asarray(parts.synthesize(centroid)), atol=1e-5)
    # The centroid image is close to the class it was inverted from (nearer than to the other classes' images).
    others = latent.sample_pairs(parts, np.array([0, 2, 0, 2], np.int32), seed=7)[1]
    assert np.mean((zero[0] - images.mean(0)) ** 2) < np.mean((zero[0] - others.mean(0)) ** 2)


def test_saved_age_network_reproduces_images(age_network, tmp_path):
    import tfaug.models.networks.layers  # noqa: F401  (registers the layers, as every loader does)

    net = age_network[0]
    z = tf.random.stateless_normal([3, net.inputs[0].shape[-1]], seed=[1, 1])
    psi = tf.constant([1.0, 0.5, 0.0])
    path = tmp_path / "age.keras"
    net.save(str(path))
    loaded = keras.models.load_model(str(path), compile=False)
    np.testing.assert_array_equal(np.asarray(loaded([z, psi])), np.asarray(net([z, psi])))


def test_age_layer_rejects_bad_values():
    from tfaug.models.networks.age import AGELatent

    with pytest.raises(TfaugError):
        AGELatent(z_dim=2, w_dim=4, num_directions=3)
    layer = AGELatent(z_dim=4, w_dim=4, num_directions=2)
    with pytest.raises(TfaugError):
        layer.set_values(np.zeros(4), np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(TfaugError):
        layer.set_values(np.full(4, np.nan), np.zeros((2, 4)), np.zeros(2))
