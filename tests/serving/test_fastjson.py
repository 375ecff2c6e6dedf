"""The orjson REST path (tfaug.serving.fastjson) against the standard-library one: for every dtype the server
supports, replies and requests decode to byte-identical tensors, and orjson's differences fall back."""
import base64
import json

import numpy as np
import pytest

from tfaug.serving import fastjson
from tfaug.serving.jsontensor import parse_predict_request, predict_response
from tfaug.serving.modelstore import SignatureInfo
from tfaug.serving.rest_client import _encode, _to_array

RNG = np.random.default_rng(0)


def _values(dtype: str) -> np.ndarray:
    """[3, 2, 2] values of ``dtype`` with its extremes (and, for float32, tiny, huge, subnormal and -0.0)."""
    if dtype == "string":
        pool = [b"", b"\x00\xff\x89PNG", "é".encode(), bytes(range(256))]
        return np.array([[[pool[(i + j + k) % 4] for k in range(2)] for j in range(2)] for i in range(3)], object)
    if dtype == "float32":
        special = np.array([0.1, -0.0, 1e-45, 1.1754944e-38, 3.4028235e38, -3.4028235e38, 1 / 3, 2.5], np.float32)
        return np.concatenate([special, RNG.standard_normal(4).astype(np.float32) * 1e3]).reshape(3, 2, 2)
    info = np.iinfo(dtype)
    return np.concatenate([[info.min, info.max, 0, 1], RNG.integers(info.min, info.max, 8, dtype=dtype,
                                                                       endpoint=True)]).astype(dtype).reshape(3, 2, 2)


def _name(dtype):  # TF Serving returns a string output as b64 when its name ends in _bytes
    return "out_bytes" if dtype == "string" else "out"


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "float32", "string"])
@pytest.mark.parametrize("fmt", ["row", "columnar"])
def test_fast_reply_decodes_to_byte_identical_tensors(dtype, fmt):
    arr = _values(dtype)
    outputs = {_name(dtype): arr, "class_id": np.arange(3, dtype=np.int32)}
    for outs in (outputs, {_name(dtype): arr}):  # several outputs, and one (TF Serving drops its name)
        slow = json.dumps(predict_response(outs, fmt), separators=(",", ":")).encode()
        fast = fastjson.dumps(predict_response(outs, fmt, fast=True))
        a, b = json.loads(slow), fastjson.loads(fast)
        if fmt == "row" and len(outs) > 1:
            a = {k: [row[k] for row in a["predictions"]] for k in outs}
            b = {k: [row[k] for row in b["predictions"]] for k in outs}
        elif fmt == "row":
            a, b = {_name(dtype): a["predictions"]}, {_name(dtype): b["predictions"]}
        elif len(outs) == 1:
            a, b = {_name(dtype): a["outputs"]}, {_name(dtype): b["outputs"]}
        else:
            a, b = a["outputs"], b["outputs"]
        for k, v in outs.items():
            want = "string" if v.dtype == object else str(v.dtype)
            x, y = _to_array(a[k], want), _to_array(b[k], want)
            assert x.shape == y.shape == v.shape and x.dtype == y.dtype
            if want == "string":
                assert x.tolist() == y.tolist() == v.tolist()
            else:
                assert x.tobytes() == y.tobytes() == v.tobytes()  # bit-exact, -0.0 and subnormals included
        if dtype != "float32":  # integers and base64 print the same text; float32 in shortest round-trip form
            assert fast == slow


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "float32", "string"])
def test_fast_request_parses_to_the_same_inputs(dtype):
    arr = _values(dtype)
    np_dtype = np.dtype(object) if dtype == "string" else np.dtype(dtype)
    sig = SignatureInfo("serving_default", None, {"x": (np_dtype, (None, 2, 2)), "n": (np.dtype("int32"), (None,))},
                        {})
    body = {"signature_name": "serving_default", "inputs": {"x": _encode(arr), "n": _encode(np.arange(3, dtype=np.int32))}}
    slow = json.dumps({**body, "inputs": {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                          for k, v in body["inputs"].items()}}).encode()
    fast = fastjson.dumps(body)
    _, a, _, _ = parse_predict_request(json.loads(slow), lambda name: sig)
    _, b, _, _ = parse_predict_request(fastjson.loads(fast), lambda name: sig)
    for k in ("x", "n"):
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape
        if a[k].dtype == object:
            assert a[k].tolist() == b[k].tolist() == arr.tolist()
        else:
            assert a[k].tobytes() == b[k].tobytes()
    np.testing.assert_array_equal(b["x"], arr)


def test_non_finite_floats_and_odd_documents_keep_the_standard_library_behaviour():
    arr = np.array([np.nan, np.inf, -np.inf, 1.5], np.float32)
    out = {"p": arr}
    # orjson would print null; the fast path keeps NaN/Infinity as the standard library (and TF Serving) write them
    assert fastjson.dumps(predict_response(out, "columnar", fast=True)) == b'{"outputs":[NaN,Infinity,-Infinity,1.5]}'
    np.testing.assert_array_equal(fastjson.loads(b'[NaN, 1]'), [np.nan, 1])
    assert fastjson.loads(b"[18446744073709551616]") == [2 ** 64]  # beyond 64 bits: the standard library's int
    assert fastjson.loads('{"a": "\u00e9"}') == {"a": "é"}
    with pytest.raises(ValueError) as fast_err:
        fastjson.loads(b'{"instances": [1,')
    with pytest.raises(ValueError) as std_err:
        json.loads('{"instances": [1,')
    assert str(fast_err.value) == str(std_err.value)  # the server's 400 message is unchanged
    with pytest.raises(UnicodeDecodeError):
        fastjson.loads(b'"\xff"')
    assert fastjson.dumps({1: np.int64(2), "b": np.float32(0.5), "c": base64.b64encode(b"x").decode()}) == \
        b'{"1":2,"b":0.5,"c":"eA=="}'


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_int_array_text_is_orjsons_text_for_every_shape(dtype, monkeypatch):
    import orjson

    info = np.iinfo(dtype)
    for shape in [(1,), (7,), (3, 1), (1, 1, 1), (2, 3, 4), (4, 1, 5, 1), (2, 28, 28, 1), (1, 2, 1, 3, 1, 2)]:
        for arr in (RNG.integers(info.min, info.max, shape, dtype=dtype, endpoint=True), np.zeros(shape, dtype),
                    np.resize(np.array([info.min, info.max, 0, 9, 10, 99, 100], dtype), shape)):
            assert fastjson.int_array_text(arr) == orjson.dumps(arr, option=orjson.OPT_SERIALIZE_NUMPY)
    strided = RNG.integers(0, 256, (6, 5, 4), dtype=np.uint8)[::2, :, 1:3]  # not contiguous
    assert fastjson.int_array_text(strided) == json.dumps(strided.tolist(), separators=(",", ":")).encode()
    for other in (np.zeros((0, 3), np.uint8), np.uint8(7), np.zeros(5, np.int32), np.zeros(5, np.float32)):
        assert fastjson.int_array_text(np.asarray(other)) is None
    monkeypatch.setattr(fastjson, "_CACHED_LAYOUT", 10)  # large arrays build their layout without the cache
    big = RNG.integers(info.min, info.max, (3, 5, 4), dtype=dtype, endpoint=True)
    assert fastjson.int_array_text(big) == orjson.dumps(big, option=orjson.OPT_SERIALIZE_NUMPY)


@pytest.mark.parametrize("fmt", ["row", "columnar"])
def test_a_large_uint8_reply_prints_the_standard_librarys_bytes(fmt):
    images = RNG.integers(0, 256, (16, 28, 28, 1), dtype=np.uint8)  # 12,544 numbers: the int_array_text lane
    assert images.size >= fastjson.INT_TEXT_MIN_SIZE
    outs = {"images": images, "class_id": np.arange(16, dtype=np.int32), "seed": np.arange(16, dtype=np.int64)}
    for outputs in (outs, {"images": images}):
        slow = json.dumps(predict_response(outputs, fmt), separators=(",", ":")).encode()
        assert fastjson.dumps(predict_response(outputs, fmt, fast=True)) == slow
