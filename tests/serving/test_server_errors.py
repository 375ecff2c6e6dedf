"""Every bad request gets TF Serving's code and one clear sentence, and the server keeps answering."""
import json
import socket

import grpc
import numpy as np
import pytest

GOOD = {"instances": [{"class_id": 1, "seed": 5}]}

REST_CASES = [
    # (method, path, body, status, message fragment)
    ("POST", "/v1/models/nope:predict", GOOD, 404, "not served"),
    ("POST", "/v1/models/toy/versions/7:predict", GOOD, 404, "version 7"),
    ("POST", "/v1/models/toy/labels/canary:predict", GOOD, 404, "label 'canary'"),
    ("GET", "/v1/models/nope", None, 404, "not served"),
    ("GET", "/v1/models/toy/versions/7", None, 404, "version 7"),
    ("GET", "/v1/models/toy/labels/canary/metadata", None, 404, "label 'canary'"),
    ("GET", "/v2/whatever", None, 400, "Malformed request"),
    ("POST", "/v1/models/toy:explain", GOOD, 400, "Malformed request"),
    ("POST", "/v1/models/toy:predict", {"instances": [{"class_id": 1}]}, 400, "missing input(s) seed"),
    ("POST", "/v1/models/toy:predict", {"inputs": {"class_id": [1], "seed": [2], "z": [3]}}, 400, "unexpected input(s) z"),
    ("POST", "/v1/models/toy:predict", {"inputs": {"class_id": [1.5], "seed": [2]}}, 400, "must be int32 but holds float"),
    ("POST", "/v1/models/toy:predict", {"inputs": {"class_id": ["a"], "seed": [2]}}, 400, "must be int32"),
    ("POST", "/v1/models/toy:predict", {"inputs": {"class_id": [[1]], "seed": [[2]]}}, 400, "shape [N]"),
    ("POST", "/v1/models/toy:predict", {"inputs": {"class_id": 1, "seed": 2}}, 400, "shape [N] but has shape []"),
    ("POST", "/v1/models/toy:predict", {"inputs": {"class_id": [1, 2], "seed": [2]}}, 400, "same batch size"),
    ("POST", "/v1/models/toy:predict", {"inputs": {"class_id": [3], "seed": [2]}}, 400, "class_id 3 is out of range"),
    ("POST", "/v1/models/toy:predict", {"inputs": {"class_id": [-1], "seed": [2]}}, 400, "class_id -1 is out of range"),
    ("POST", "/v1/models/toy:predict", {"inputs": {"class_id": [2**40], "seed": [2]}}, 400, "outside the int32 range"),
    ("POST", "/v1/models/toy:predict", {"inputs": {"class_id": [{"b64": "AA=="}], "seed": [2]}}, 400, "only for string"),
    ("POST", "/v1/models/toy:predict", {"instances": [[1, 2]]}, 400, "must be an object"),
    ("POST", "/v1/models/toy:predict", {"instances": []}, 400, "non-empty list"),
    ("POST", "/v1/models/toy:predict", {"inputs": {}, "instances": []}, 400, "exactly one"),
    ("POST", "/v1/models/toy:predict", {"signature_name": "nope", "inputs": {}}, 400, "signature key 'nope'"),
    ("POST", "/v1/models/toy:predict", [1, 2], 400, "JSON object"),
    ("POST", "/v1/models/toy:classify", {"examples": []}, 501, "not supported"),
    ("POST", "/v1/models/toy:regress", {"examples": []}, 501, "not supported"),
    ("GET", "/v1/models/toy:predict", None, 405, "not allowed"),
    ("POST", "/v1/models/toy/metadata", GOOD, 405, "not allowed"),
    ("PUT", "/v1/models/toy", GOOD, 405, "not allowed"),
]


def _assert_still_serving(rest, toy_reference):
    status, body = rest("/v1/models/toy:predict", GOOD)
    assert status == 200
    np.testing.assert_array_equal(np.array([body["predictions"][0]["images"]], np.uint8), toy_reference([1], [5]))


@pytest.mark.parametrize("method, path, body, status, fragment", REST_CASES,
                         ids=[f"{c[0]} {c[1]} {c[3]}" for c in REST_CASES])
def test_rest_error(rest, toy_reference, method, path, body, status, fragment):
    got_status, got = rest(path, body, method=method)
    assert got_status == status
    assert set(got) == {"error"} and fragment in got["error"], got
    assert "\n" not in got["error"] and "Traceback" not in got["error"]
    _assert_still_serving(rest, toy_reference)


def test_rest_malformed_json_and_too_many_images(rest, model_server, toy_reference):
    status, body = rest("/v1/models/toy:predict", raw=b'{"instances": [', method="POST")
    assert status == 400 and "not valid JSON" in body["error"]
    cap = model_server.server.config.max_images_per_request
    big = {"inputs": {"class_id": [0] * (cap + 1), "seed": list(range(cap + 1))}}
    status, body = rest("/v1/models/toy:predict", big)
    assert status == 400 and f"at most {cap}" in body["error"]
    _assert_still_serving(rest, toy_reference)


def test_oversized_body_is_refused_from_its_header(model_server, rest, toy_reference):
    limit = model_server.server.config.max_body_bytes
    with socket.create_connection(("127.0.0.1", model_server.server.rest_port), timeout=10) as sock:
        # Announce a huge body but send none of it: the answer must come from the Content-Length header alone.
        sock.sendall(
            f"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {limit + 1}\r\n\r\n".encode()
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split()[1] == b"413"
    assert "exceeds" in json.loads(payload)["error"]
    _assert_still_serving(rest, toy_reference)


@pytest.mark.parametrize(
    "kwargs, code, fragment",
    [
        (dict(name="nope", class_ids=[1], seeds=[1]), grpc.StatusCode.NOT_FOUND, "not served"),
        (dict(name="toy", class_ids=[1], seeds=[1], version=9), grpc.StatusCode.NOT_FOUND, "version 9"),
        (dict(name="toy", class_ids=[1], seeds=[1], label="canary"), grpc.StatusCode.NOT_FOUND, "canary"),
        (dict(name="toy", class_ids=[5], seeds=[1]), grpc.StatusCode.INVALID_ARGUMENT, "out of range"),
        (dict(name="toy", class_ids=[1], seeds=[1], dtypes=("int64", "int64")), grpc.StatusCode.INVALID_ARGUMENT,
         "must be int32 but int64"),
        (dict(name="toy", class_ids=[[1]], seeds=[[1]]), grpc.StatusCode.INVALID_ARGUMENT, "shape [N]"),
        (dict(name="toy", class_ids=[1], seeds=[1], signature="nope"), grpc.StatusCode.INVALID_ARGUMENT, "nope"),
    ],
)
def test_grpc_predict_errors(grpc_stubs, grpc_request, toy_reference, kwargs, code, fragment):
    import tensorflow as tf

    with pytest.raises(grpc.RpcError) as info:
        grpc_stubs.predict.Predict(grpc_request(**kwargs), timeout=30)
    assert info.value.code() == code and fragment in info.value.details()
    ok = grpc_stubs.predict.Predict(grpc_request("toy", [1], [5]), timeout=30)
    np.testing.assert_array_equal(tf.make_ndarray(ok.outputs["images"]), toy_reference([1], [5]))


def test_grpc_missing_input_output_filter_and_unimplemented(grpc_stubs, grpc_request):
    from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2, model_management_pb2

    req = grpc_request("toy", [1], [1])
    del req.inputs["seed"]
    with pytest.raises(grpc.RpcError, match="missing input") as info:
        grpc_stubs.predict.Predict(req, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    req = grpc_request("toy", [1], [1])
    req.output_filter.append("pixels")
    with pytest.raises(grpc.RpcError, match="output_filter"):
        grpc_stubs.predict.Predict(req, timeout=30)
    meta = get_model_metadata_pb2.GetModelMetadataRequest()
    meta.model_spec.name = "toy"
    meta.metadata_field.append("stats")
    with pytest.raises(grpc.RpcError, match="not supported") as info:
        grpc_stubs.predict.GetModelMetadata(meta, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for call, msg in [
        (grpc_stubs.predict.Classify, classification_pb2.ClassificationRequest()),
        (grpc_stubs.model.HandleReloadConfigRequest, model_management_pb2.ReloadConfigRequest()),
    ]:
        with pytest.raises(grpc.RpcError) as info:
            call(msg, timeout=30)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_keep_alive_connection_survives_rejected_requests(model_server, toy_reference):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", model_server.server.rest_port, timeout=30)
    try:
        for path, body, status in [
            ("/v2/nowhere", b'{"instances": [1]}', 400),  # rejected before its body is parsed: body drained
            ("/v1/models/toy/metadata", b'{"x": 1}', 405),
            ("/v1/models/toy:predict", json.dumps(GOOD).encode(), 200),
        ]:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            payload = json.loads(resp.read())
            assert resp.status == status, payload
        np.testing.assert_array_equal(np.array([payload["predictions"][0]["images"]], np.uint8), toy_reference([1], [5]))
    finally:
        conn.close()


def test_grpc_accepts_messages_above_the_4mib_default(grpc_stubs, grpc_request):
    import tensorflow as tf

    req = grpc_request("toy", [1], [5])
    req.inputs["padding"].CopyFrom(tf.make_tensor_proto(np.zeros(5 << 20, np.uint8)))  # 5 MiB: over gRPC's default
    with pytest.raises(grpc.RpcError) as info:
        grpc_stubs.predict.Predict(req, timeout=60)
    # Received and validated (not RESOURCE_EXHAUSTED by the transport): the extra input is what is refused.
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "unexpected input(s) padding" in info.value.details()
