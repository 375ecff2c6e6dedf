"""Parametrisations of the adaptation methods (tfaug.fewshot.reparam) on a small conditional generator."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfaug.errors import TfaugError
from tfaug.fewshot.reparam import parametrise, svd_factors, weighted_layers

K = 4  # classes; the last one plays the new class


@pytest.fixture(scope="module")
def net():
    from tfaug.models.networks.generators import build_generator

    keras.utils.set_random_seed(3)
    return build_generator((8, 8, 1), K, z_dim=8, width=8, embed_dim=4)


def _inputs(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, 8)).astype(np.float32), np.arange(n, dtype=np.int32) % K]


def _train(net, p, steps=3):
    """A few Adam steps on a loss of the network output, through the state mapping."""
    opt = keras.optimizers.Adam(0.05)
    x = _inputs()
    for _ in range(steps):
        with tf.GradientTape() as tape:
            with keras.StatelessScope(state_mapping=p.state_mapping()):
                y = net(x, training=False)
            loss = tf.reduce_mean(tf.square(y - 0.5))
        opt.apply(tape.gradient(loss, p.parameters), p.parameters)


def _snapshot(net):
    return {v.path: np.array(v.value) for v in net.weights}


def test_svd_reproduces_every_layer_and_the_network_before_training(net):
    table = net.get_layer("class_embedding")
    p = parametrise(net, "svd", class_tables=[table], first_new_row=K - 1)
    kernels = [v for v in net.trainable_weights if len(v.shape) >= 2 and v.path != table.embeddings.path]
    assert {id(v) for v in p.variables} == {id(v) for v in kernels} | {id(table.embeddings)}
    for var in kernels:  # the decomposition itself: U diag(S) V^T == W
        u, s, vt = svd_factors(np.asarray(var.value))
        w = np.asarray(var.value).reshape(-1, var.shape[-1])
        np.testing.assert_allclose(u @ np.diag(s) @ vt, w, atol=1e-5 * np.abs(w).max())
    mapping = p.state_mapping()
    for var, value in mapping:
        np.testing.assert_array_equal(np.asarray(value), np.asarray(var.value))
    x = _inputs()
    with keras.StatelessScope(state_mapping=mapping):
        mapped = np.asarray(net(x, training=False))
        layer_outs = {}
        for layer in (net.get_layer("project"), net.get_layer("up1_convT"), net.get_layer("to_image")):
            shape = (3, *layer.input.shape[1:])
            feed = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
            layer_outs[layer.name] = (feed, np.asarray(layer(feed)))
    np.testing.assert_array_equal(mapped, np.asarray(net(x, training=False)))
    for name, (feed, out) in layer_outs.items():
        np.testing.assert_array_equal(out, np.asarray(net.get_layer(name)(feed)))


def test_svd_trains_only_singular_values_and_the_new_row():
    from tfaug.models.networks.generators import build_generator

    keras.utils.set_random_seed(4)
    net = build_generator((8, 8, 1), K, z_dim=8, width=8, embed_dim=4)
    table = net.get_layer("class_embedding")
    p = parametrise(net, "svd", class_tables=[table], first_new_row=K - 1)
    kernels = {v.path: v for v in net.trainable_weights if len(v.shape) >= 2 and v is not table.embeddings}
    expected = sum(min(int(np.prod(v.shape[:-1])), int(v.shape[-1])) for v in kernels.values()) + table.output_dim
    assert p.trainable_parameters == expected
    before = _snapshot(net)
    _train(net, p)
    p.assign()
    after = _snapshot(net)
    for path, value in before.items():
        if path in kernels:  # changed, and only along the frozen singular vectors: U^T dW V is diagonal
            u, _, vt = svd_factors(value)
            proj = u.T @ (after[path] - value).reshape(u.shape[0], -1) @ vt.T
            off = proj - np.diag(np.diag(proj))
            assert np.abs(np.diag(proj)).max() > 1e-3, path
            assert np.abs(off).max() < 1e-4 * max(1.0, np.abs(np.diag(proj)).max()), path
        elif path == table.embeddings.path:
            np.testing.assert_array_equal(after[path][:K - 1], value[:K - 1])
            assert not np.array_equal(after[path][K - 1], value[K - 1])
        else:  # biases, BatchNorm scales/offsets and statistics
            np.testing.assert_array_equal(after[path], value, err_msg=path)


def test_freeze_keeps_the_first_layers_and_trains_the_rest():
    from tfaug.models.networks.generators import build_generator

    keras.utils.set_random_seed(5)
    net = build_generator((8, 8, 1), K, z_dim=8, width=8, embed_dim=4)
    table = net.get_layer("class_embedding")
    layers = weighted_layers(net)
    p = parametrise(net, "freeze", class_tables=[table], first_new_row=K - 1, freeze_fraction=0.5)
    frozen = layers[: len(layers) // 2]
    assert p.frozen_layers == [layer.path for layer in frozen if layer is not table]
    before = _snapshot(net)
    _train(net, p)
    p.assign()
    after = _snapshot(net)
    for layer in layers:
        if layer is table:
            continue
        for v in layer.trainable_weights:
            same = np.array_equal(after[v.path], before[v.path])
            assert same == (layer in frozen), v.path
    np.testing.assert_array_equal(after[table.embeddings.path][:K - 1], before[table.embeddings.path][:K - 1])


def test_embedding_trains_only_the_new_row_and_bad_arguments_fail(net):
    table = net.get_layer("class_embedding")
    p = parametrise(net, "embedding", class_tables=[table], first_new_row=K - 1)
    assert p.trainable_parameters == table.output_dim and p.variables == [table.embeddings]
    with pytest.raises(TfaugError, match="unknown parametrisation"):
        parametrise(net, "lora")
    with pytest.raises(TfaugError, match="freeze_fraction"):
        parametrise(net, "freeze", freeze_fraction=1.5)
    with pytest.raises(TfaugError, match="needs a row for class 9"):
        parametrise(net, "embedding", class_tables=[table], first_new_row=9)
