"""TF Serving's JSON tensor rules without a server: row/columnar shapes, b64 in and out, type checks."""
import base64

import numpy as np
import pytest

from tfaug.serving.jsontensor import parse_predict_request, predict_response, to_array
from tfaug.serving.modelstore import SignatureInfo
from tfaug.serving.status import ServingError

STR_SIG = SignatureInfo("serving_default", None, {"blob": (np.dtype(object), (None,))}, {})
TWO_SIG = SignatureInfo(
    "serving_default", None, {"a": (np.dtype("int32"), (None,)), "b": (np.dtype("float32"), (None, 2))}, {}
)


def _lookup(sig):
    return lambda name: sig


def test_b64_and_plain_strings_decode_in_row_and_columnar_format():
    b64 = base64.b64encode(b"\x00\xffpng").decode()
    bodies = [
        {"instances": [{"b64": b64}, "text"]},
        {"inputs": [{"b64": b64}, "text"]},
        {"instances": [{"blob": {"b64": b64}}, {"blob": "text"}]},
    ]
    for body in bodies:
        _, inputs, fmt, _ = parse_predict_request(body, _lookup(STR_SIG))
        assert inputs["blob"].dtype == object and list(inputs["blob"]) == [b"\x00\xffpng", b"text"]
    with pytest.raises(ServingError, match="not valid base64"):
        parse_predict_request({"inputs": {"blob": [{"b64": "%%%"}]}}, _lookup(STR_SIG))


def test_row_and_columnar_inputs_become_equal_arrays():
    rows = {"instances": [{"a": 1, "b": [0.5, 1]}, {"a": 2, "b": [2, 3]}]}
    cols = {"inputs": {"a": [1, 2], "b": [[0.5, 1], [2, 3]]}}
    _, r, rf, _ = parse_predict_request(rows, _lookup(TWO_SIG))
    _, c, cf, _ = parse_predict_request(cols, _lookup(TWO_SIG))
    assert (rf, cf) == ("row", "columnar")
    for k in ("a", "b"):
        np.testing.assert_array_equal(r[k], c[k])
    assert r["a"].dtype == np.int32 and r["b"].dtype == np.float32
    with pytest.raises(ServingError, match="same inputs"):
        parse_predict_request({"instances": [{"a": 1, "b": [0, 1]}, {"a": 2}]}, _lookup(TWO_SIG))
    with pytest.raises(ServingError, match="ragged"):
        to_array([[1, 2], [3]], np.float32, "b")
    with pytest.raises(ServingError, match="boolean"):
        to_array([True], np.int32, "a")


def test_response_shapes_follow_tf_serving():
    one = {"png_bytes": np.array([b"\x89P", b"ab"], object)}
    assert predict_response(one, "row") == {"predictions": [{"b64": "iVA="}, {"b64": "YWI="}]}
    assert predict_response(one, "columnar") == {"outputs": [{"b64": "iVA="}, {"b64": "YWI="}]}
    named = {"label": np.array([b"cat", b"dog"], object), "p": np.array([[0.5], [1.0]], np.float32)}
    assert predict_response(named, "row") == {"predictions": [{"label": "cat", "p": [0.5]}, {"label": "dog", "p": [1.0]}]}
    assert predict_response(named, "columnar") == {"outputs": {"label": ["cat", "dog"], "p": [[0.5], [1.0]]}}
    with pytest.raises(ServingError, match="different batch sizes"):
        predict_response({"x": np.zeros(2), "y": np.zeros(3)}, "row")
