"""Truncation over the serving stack: serving_default + optional 'truncation' -> the 'truncated' signature (REST row
and columnar, gRPC), metadata, bad psi, clients and ``tfaug query --truncation`` (issue 7)."""
import types

import numpy as np
import pytest

from tfaug.errors import TfaugError

CLS, SEEDS, PSI = [0, 1, 2, 2, 0], [42, 42, 7, -3, 2**40], [0.5, 0.0, 1.0, 0.25, 0.75]


@pytest.fixture(scope="module")
def ref(serving_models):
    """uint8 images of toy v1 from its in-process 'truncated' and 'serving_default' signatures."""
    import tensorflow as tf

    sigs = tf.saved_model.load(str(serving_models.toy_path)).signatures

    def truncated(cls, seeds, psi):
        out = sigs["truncated"](class_id=tf.constant(cls, tf.int32), seed=tf.constant(seeds, tf.int64),
                                truncation=tf.constant(psi, tf.float32))
        return out["images"].numpy()

    def plain(cls, seeds):
        out = sigs["serving_default"](class_id=tf.constant(cls, tf.int32), seed=tf.constant(seeds, tf.int64))
        return out["images"].numpy()

    expected = truncated(CLS, SEEDS, PSI)
    assert not np.array_equal(expected, plain(CLS, SEEDS))  # psi < 1 changes images
    return types.SimpleNamespace(truncated=truncated, plain=plain, expected=expected)


def test_rest_serving_default_with_and_without_truncation(rest, ref):
    columnar = {"inputs": {"class_id": CLS, "seed": SEEDS, "truncation": PSI}}
    status, body = rest("/v1/models/toy:predict", columnar)
    assert status == 200 and set(body["outputs"]) == {"images", "class_id", "seed"}
    np.testing.assert_array_equal(np.array(body["outputs"]["images"], np.uint8), ref.expected)
    rows = {"signature_name": "serving_default",
            "instances": [{"class_id": c, "seed": s, "truncation": p} for c, s, p in zip(CLS, SEEDS, PSI)]}
    status, body = rest("/v1/models/toy/labels/stable:predict", rows)
    assert status == 200
    np.testing.assert_array_equal(np.array([r["images"] for r in body["predictions"]], np.uint8), ref.expected)
    status, body = rest("/v1/models/toy:predict", {"signature_name": "truncated", "inputs": columnar["inputs"]})
    np.testing.assert_array_equal(np.array(body["outputs"]["images"], np.uint8), ref.expected)
    status, body = rest("/v1/models/toy:predict", {"inputs": {"class_id": CLS, "seed": SEEDS}})  # unchanged without
    np.testing.assert_array_equal(np.array(body["outputs"]["images"], np.uint8), ref.plain(CLS, SEEDS))


def test_grpc_serving_default_with_and_without_truncation(grpc_stubs, grpc_request, ref):
    import tensorflow as tf

    req = grpc_request("toy", CLS, SEEDS)
    plain = grpc_stubs.predict.Predict(req)
    np.testing.assert_array_equal(tf.make_ndarray(plain.outputs["images"]), ref.plain(CLS, SEEDS))
    req.inputs["truncation"].CopyFrom(tf.make_tensor_proto(np.asarray(PSI, np.float32)))
    resp = grpc_stubs.predict.Predict(req)
    assert resp.model_spec.signature_name == "serving_default"
    np.testing.assert_array_equal(tf.make_ndarray(resp.outputs["images"]), ref.expected)


@pytest.mark.parametrize("psi", [-0.1, 1.5])
def test_bad_truncation_is_invalid_argument_in_one_sentence(rest, grpc_stubs, grpc_request, psi):
    import grpc
    import tensorflow as tf

    body = {"inputs": {"class_id": [0, 1], "seed": [1, 2], "truncation": [0.5, psi]}}
    status, body = rest("/v1/models/toy:predict", body)
    assert status == 400 and body["error"] == f"truncation {psi:g} is out of range; psi must be in [0, 1] (1 = none)."
    req = grpc_request("toy", [0, 1], [1, 2], signature="truncated")
    req.inputs["truncation"].CopyFrom(tf.make_tensor_proto(np.asarray([psi, 1.0], np.float32)))
    with pytest.raises(grpc.RpcError) as info:
        grpc_stubs.predict.Predict(req)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and info.value.details() == body["error"]
    status, body = rest("/v1/models/toy:predict", {"inputs": {"class_id": [0], "seed": [1], "psi": [0.5]}})
    assert status == 400 and "unexpected input(s) psi" in body["error"] and "optionally truncation" in body["error"]


def test_metadata_shows_both_signatures_and_clients_truncate(model_server, ref, tmp_path, capsys):
    from PIL import Image

    from tfaug.cli import main
    from tfaug.serving.client import ServedGenerator, ServingClient
    from tfaug.utils.images import to_float

    with ServingClient.grpc(model_server.grpc_target) as grpc_client:
        rest_client = ServingClient.rest(model_server.rest_url)
        for client in (rest_client, grpc_client):
            sigs = client.metadata("toy")["signature_def"]
            assert set(sigs["serving_default"]["inputs"]) == {"class_id", "seed"}
            assert sigs["truncated"]["inputs"]["truncation"] == {"dtype": "float32", "shape": [None]}
            assert sigs["truncated"]["outputs"] == sigs["serving_default"]["outputs"]
            np.testing.assert_array_equal(client.generate("toy", CLS, SEEDS, truncation=PSI), ref.expected)
            np.testing.assert_array_equal(client.generate("toy", [1, 2], [3, 4], truncation=0.0),
                                          ref.truncated([1, 2], [3, 4], [0.0, 0.0]))
            with pytest.raises(TfaugError, match=r"psi must be in \[0, 1\]"):
                client.generate("toy", [1], [3], truncation=1.5)
        gen = ServedGenerator(grpc_client, "toy", num_classes=3, batch_size=2)
        assert gen.supports_truncation
        np.testing.assert_array_equal(gen.sample(CLS, SEEDS, truncation=PSI), to_float(ref.expected))
    out = tmp_path / "q"
    assert main(["query", "toy", "--class-id", "1", "--n", "3", "--seed", "7", "--truncation", "0.3",
                 "--url", model_server.rest_url, "--out", str(out), "--no-progress"]) == 0
    got = np.stack([np.asarray(Image.open(out / f"class1_seed{s}.png"))[..., None] for s in (7, 8, 9)])
    np.testing.assert_array_equal(got, ref.truncated([1] * 3, [7, 8, 9], [0.3] * 3))
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["query", "toy", "--class-id", "1", "--truncation", "1.5", "--out", str(out)])
    assert info.value.code == 2 and "[0, 1]" in capsys.readouterr().err
