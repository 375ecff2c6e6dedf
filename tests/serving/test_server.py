"""LocalModelServer over loopback: REST and gRPC predict/metadata/status, parity with in-process, TFSMLayer."""
import base64
import io

import numpy as np
import pytest

CLS, SEEDS = [0, 1, 2, 2, 0], [42, 42, 7, -3, 2**40]


def test_rest_row_format_matches_in_process(rest, toy_reference):
    status, body = rest("/v1/models/toy:predict", {"instances": [{"class_id": c, "seed": s} for c, s in zip(CLS, SEEDS)]})
    assert status == 200 and set(body) == {"predictions"}
    rows = body["predictions"]
    assert [set(r) for r in rows] == [{"images", "class_id", "seed"}] * len(CLS)
    images = np.array([r["images"] for r in rows], np.uint8)
    np.testing.assert_array_equal(images, toy_reference(CLS, SEEDS))
    assert [r["class_id"] for r in rows] == CLS and [r["seed"] for r in rows] == SEEDS
    assert images.std() > 0


def test_rest_columnar_format_and_version_and_label_routes(rest, toy_reference):
    expected = toy_reference(CLS, SEEDS)
    for path in ["/v1/models/toy:predict", "/v1/models/toy/versions/1:predict", "/v1/models/toy/labels/stable:predict"]:
        status, body = rest(path, {"signature_name": "serving_default", "inputs": {"class_id": CLS, "seed": SEEDS}})
        assert status == 200 and set(body) == {"outputs"}
        assert set(body["outputs"]) == {"images", "class_id", "seed"}
        np.testing.assert_array_equal(np.array(body["outputs"]["images"], np.uint8), expected)


def test_rest_generate_png_is_base64_and_decodes_to_the_images(rest, toy_reference):
    from PIL import Image

    body = {"signature_name": "generate_png", "inputs": {"class_id": [1, 2], "seed": [5, 6]}}
    status, body = rest("/v1/models/toy:predict", body)
    assert status == 200
    pngs = body["outputs"]  # a single named output: the value itself, each one {"b64": ...}
    assert isinstance(pngs, list) and all(set(p) == {"b64"} for p in pngs)
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(p["b64"]))))[..., None] for p in pngs])
    np.testing.assert_array_equal(decoded, toy_reference([1, 2], [5, 6]))
    body = {"signature_name": "generate_png", "instances": [{"class_id": 1, "seed": 5}]}
    status, body = rest("/v1/models/toy:predict", body)
    assert status == 200 and body["predictions"] == pngs[:1]  # row format, single output: a list of values


def test_rest_classifier_single_input_row_format(rest, serving_models):
    import tensorflow as tf

    images = np.random.default_rng(0).integers(0, 256, (3, *serving_models.image_shape), dtype=np.uint8)
    status, body = rest("/v1/models/clf:predict", {"instances": images.tolist()})
    assert status == 200
    probs = np.array(body["predictions"], np.float32)
    ref = tf.saved_model.load(str(serving_models.clf_path)).signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(probs, ref["probabilities"].numpy(), rtol=1e-6, atol=1e-7)
    assert probs.shape == (3, serving_models.num_classes)


def test_grpc_predict_matches_rest_and_in_process(grpc_stubs, grpc_request, toy_reference):
    import tensorflow as tf

    resp = grpc_stubs.predict.Predict(grpc_request("toy", CLS, SEEDS), timeout=30)
    assert resp.model_spec.name == "toy" and resp.model_spec.version.value == 1
    assert resp.model_spec.signature_name == "serving_default"
    assert set(resp.outputs) == {"images", "class_id", "seed"}
    images = tf.make_ndarray(resp.outputs["images"])
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(images, toy_reference(CLS, SEEDS))
    np.testing.assert_array_equal(tf.make_ndarray(resp.outputs["seed"]), SEEDS)
    filtered = grpc_stubs.predict.Predict(grpc_request("toy", [1], [5], label="stable", signature="generate_png"))
    assert list(filtered.outputs) == ["png_bytes"] and tf.make_ndarray(filtered.outputs["png_bytes"])[0][:4] == b"\x89PNG"


def test_rest_status_with_version_and_label(rest):
    expected = {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]}
    for path in ["/v1/models/toy", "/v1/models/toy/versions/1", "/v1/models/toy/labels/stable", "/V1/Models/toy/"]:
        assert rest(path) == (200, expected), path


def test_rest_metadata_is_the_signature_def_map(rest):
    status, body = rest("/v1/models/toy/versions/1/metadata")
    assert status == 200
    assert body["model_spec"] == {"name": "toy", "version": "1", "signature_name": ""}
    sigs = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "generate_png"} <= set(sigs)
    default = sigs["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["class_id"]["dtype"] == "DT_INT32" and default["inputs"]["seed"]["dtype"] == "DT_INT64"
    assert default["inputs"]["seed"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    dims = [d["size"] for d in default["outputs"]["images"]["tensor_shape"]["dim"]]
    assert dims == ["-1", "8", "8", "1"] and default["outputs"]["images"]["dtype"] == "DT_UINT8"
    assert rest("/v1/models/toy/labels/stable/metadata")[1] == body


def test_grpc_metadata_and_status(grpc_stubs, rest):
    from google.protobuf import json_format
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = "toy"
    req.metadata_field.append("signature_def")
    resp = grpc_stubs.predict.GetModelMetadata(req, timeout=30)
    assert resp.model_spec.version.value == 1
    sig_map = get_model_metadata_pb2.SignatureDefMap()
    assert resp.metadata["signature_def"].Unpack(sig_map)
    rest_map = rest("/v1/models/toy/metadata")[1]["metadata"]["signature_def"]
    assert json_format.ParseDict(rest_map, get_model_metadata_pb2.SignatureDefMap()) == sig_map
    status_req = get_model_status_pb2.GetModelStatusRequest()
    status_req.model_spec.name = "toy"
    status_req.model_spec.version_label = "stable"
    (row,) = grpc_stubs.model.GetModelStatus(status_req, timeout=30).model_version_status
    assert row.version == 1 and row.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_tfsmlayer_generate_endpoint_matches_the_server(serving_models, rest):
    import keras

    layer = keras.layers.TFSMLayer(str(serving_models.toy_path), call_endpoint="generate")
    class_in = keras.Input((), dtype="int32", name="class_id")
    seed_in = keras.Input((), dtype="int64", name="seed")
    app = keras.Model([class_in, seed_in], layer({"class_id": class_in, "seed": seed_in})["images"])
    got = app.predict([np.array([2, 0], np.int32), np.array([3, 4], np.int64)], verbose=0)
    served = rest("/v1/models/toy:predict", {"inputs": {"class_id": [2, 0], "seed": [3, 4]}})[1]["outputs"]["images"]
    np.testing.assert_array_equal(np.asarray(got, np.uint8), np.array(served, np.uint8))


def test_binds_loopback_by_default(model_server):
    import inspect

    from tfaug.serving.server import LocalModelServer, ServerConfig

    assert ServerConfig(model_base=".").host == "127.0.0.1"
    assert model_server.server.config.host == "127.0.0.1"
    assert model_server.rest_url.startswith("http://127.0.0.1:") and model_server.grpc_target.startswith("127.0.0.1:")
    assert model_server.server._rest._httpd.server_address[0] == "127.0.0.1"
    assert "model_config_file" in inspect.signature(LocalModelServer).parameters


def test_ports_in_use_and_bad_config_are_one_sentence_errors(model_server, serving_models, tmp_path):
    from tfaug.errors import TfaugError
    from tfaug.serving.server import LocalModelServer

    taken = model_server.server.rest_port
    with pytest.raises(TfaugError, match="Cannot listen for REST"):
        LocalModelServer(model_base=serving_models.base, rest_port=taken, grpc_port=None).start()
    bad = tmp_path / "models.config"
    bad.write_text("model_config_list { config { name: 'x' base_path: 'y' model_platform: 'pytorch' } }")
    with pytest.raises(TfaugError, match="only 'tensorflow'"):
        LocalModelServer(model_config_file=bad, rest_port=0, grpc_port=None).start()
    bad.write_text("model_config_list { config { nam: 'x' } }")
    with pytest.raises(TfaugError, match="not a valid ModelServerConfig"):
        LocalModelServer(model_config_file=bad).start()
    with pytest.raises(TfaugError, match="exactly one"):
        LocalModelServer(model_config_file=bad, model_base=tmp_path)
