"""Serving fixtures: one tiny generator + classifier exported per session, and a running LocalModelServer.

Usable by every serving test (server and client):

* ``serving_models`` -> namespace(root, base, config, toy_path, clf_path, hot_base, names, num_classes,
  image_shape, z_dim) with ``models.config`` serving ``toy`` (all versions, label ``stable`` -> 1), ``clf``
  (a classifier, latest) and ``hot`` (latest, base path created empty: only the hot-reload test writes there).
* ``model_server`` -> namespace(server, rest_url, grpc_target, models): a started ``LocalModelServer`` on free
  loopback ports (poll 0.2 s); stopped at the end of the session.
* ``rest`` (path, body=None, method=None, raw=None) -> (status, JSON); ``grpc_stubs`` (predict, model stubs);
  ``grpc_request`` builds a PredictRequest; ``toy_reference`` (class_ids, seeds) -> in-process uint8 images
  of toy v1; ``serving_helpers`` holds the plain helper functions (export_tiny_generator, http, ...).
"""
import types

import numpy as np
import pytest

from tests_helpers import TINY_K as K, TINY_NAMES as NAMES, TINY_SHAPE as SHAPE, TINY_Z_DIM as Z_DIM, tiny_generator  # noqa: E402,F401




def tiny_classifier(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(SHAPE)
    return keras.Model(inp, keras.layers.Dense(K)(keras.layers.Flatten()(inp)))


def export_tiny_generator(base, name, version=None, seed=0):
    """Export a fresh tiny generator (weights from ``seed``) to ``base/name/<version>``; returns the path."""
    from tfaug.export.savedmodel import export_generator

    return export_generator(
        tiny_generator(seed), z_dim=Z_DIM, num_classes=K, metadata={"class_names": NAMES, "model_kind": "cdcgan"},
        name=name, version=version, base=base,
    )


MODELS_CONFIG = """
model_config_list {
  config {
    name: "toy"
    base_path: "saved_models/toy"
    model_platform: "tensorflow"
    model_version_policy { all {} }
    version_labels { key: "stable" value: 1 }
  }
  config {
    name: "clf"
    base_path: "saved_models/clf"
    model_platform: "tensorflow"
  }
  config {
    name: "hot"
    base_path: "saved_models/hot"
    model_platform: "tensorflow"
    model_version_policy { latest { num_versions: 1 } }
  }
}
"""


@pytest.fixture(scope="session")
def serving_models(tmp_path_factory):
    from tfaug.export.savedmodel import export_classifier

    root = tmp_path_factory.mktemp("serving")
    base = root / "saved_models"
    toy = export_tiny_generator(base, "toy", version=1)
    clf = export_classifier(tiny_classifier(), metadata={"class_names": NAMES}, name="clf", base=base)
    (base / "hot").mkdir()
    config = root / "models.config"
    config.write_text(MODELS_CONFIG)
    return types.SimpleNamespace(
        root=root, base=base, config=config, toy_path=toy, clf_path=clf, hot_base=base / "hot",
        names=NAMES, num_classes=K, image_shape=SHAPE, z_dim=Z_DIM,
    )


@pytest.fixture(scope="session")
def model_server(serving_models):
    from tfaug.serving.server import LocalModelServer

    server = LocalModelServer(
        model_config_file=serving_models.config, rest_port=0, grpc_port=0, poll_seconds=0.2, batch_timeout_ms=2
    )
    server.start()
    try:
        yield types.SimpleNamespace(
            server=server, rest_url=server.rest_url, grpc_target=server.grpc_target, models=serving_models
        )
    finally:
        server.stop()


def in_process_images(path, class_ids, seeds):
    """uint8 images from ``tf.saved_model.load(path).signatures["serving_default"]`` (the reference)."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(path)).signatures["serving_default"]
    out = fn(class_id=tf.constant(class_ids, tf.int32), seed=tf.constant(seeds, tf.int64))
    return out["images"].numpy()


@pytest.fixture(scope="session")
def toy_reference(serving_models):
    """Callable (class_ids, seeds) -> uint8 images of toy v1, computed in-process (loaded once)."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(serving_models.toy_path)).signatures["serving_default"]

    def reference(class_ids, seeds):
        out = fn(class_id=tf.constant(np.asarray(class_ids), tf.int32), seed=tf.constant(np.asarray(seeds), tf.int64))
        return out["images"].numpy()

    return reference


def http(url, path, body=None, method=None, raw=None, headers=None, timeout=30):
    """(status, parsed JSON body) of one HTTP request (``body`` is JSON-encoded, ``raw`` sent as is)."""
    import json
    import urllib.error
    import urllib.request

    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def rest(model_server):
    """rest(path, body=None, method=None, raw=None) -> (status, JSON) against the session server."""
    return lambda path, body=None, **kw: http(model_server.rest_url, path, body, **kw)


@pytest.fixture(scope="session")
def grpc_stubs(model_server):
    """namespace(predict=PredictionServiceStub, model=ModelServiceStub) on the session server."""
    import grpc
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(model_server.grpc_target)
    yield types.SimpleNamespace(
        predict=prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model=model_service_pb2_grpc.ModelServiceStub(channel),
    )
    channel.close()


def grpc_predict_request(name, class_ids, seeds, version=None, label=None, signature=None, dtypes=("int32", "int64")):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    if version is not None:
        req.model_spec.version.value = version
    if label is not None:
        req.model_spec.version_label = label
    if signature:
        req.model_spec.signature_name = signature
    req.inputs["class_id"].CopyFrom(tf.make_tensor_proto(np.asarray(class_ids, dtypes[0])))
    req.inputs["seed"].CopyFrom(tf.make_tensor_proto(np.asarray(seeds, dtypes[1])))
    return req


@pytest.fixture(scope="session")
def grpc_request():
    """grpc_request(name, class_ids, seeds, version=None, label=None, signature=None, dtypes=...) -> PredictRequest."""
    return grpc_predict_request


@pytest.fixture(scope="session")
def serving_helpers():
    """Helper functions for serving tests: export_tiny_generator, in_process_images, http, grpc_predict_request."""
    return types.SimpleNamespace(
        export_tiny_generator=export_tiny_generator, in_process_images=in_process_images, http=http,
        grpc_predict_request=grpc_predict_request, tiny_generator=tiny_generator, tiny_classifier=tiny_classifier,
    )
