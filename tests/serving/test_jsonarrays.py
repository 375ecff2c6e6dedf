"""tfaug.serving.jsonarrays against tfaug.serving.fastjson (the nested-list path): same document, same tensors
(bit for bit, every dtype the server supports), same errors; anything it does not read stays nested lists."""
import json

import numpy as np
import pytest

from tfaug.serving import fastjson
from tfaug.serving.jsonarrays import loads_arrays
from tfaug.serving.jsontensor import predict_response
from tfaug.serving.rest_client import _to_array

RNG = np.random.default_rng(0)


def _plain(doc):
    """``doc`` with its numpy arrays as nested lists (what fastjson.loads returns)."""
    if isinstance(doc, np.ndarray):
        return doc.tolist()
    if isinstance(doc, list):
        return [_plain(v) for v in doc]
    if isinstance(doc, dict):
        return {k: _plain(v) for k, v in doc.items()}
    return doc


def _values(dtype: str, shape=(5, 3, 3, 1)) -> np.ndarray:
    if dtype == "float32":
        special = np.array([0.1, -0.0, 1e-45, 1.1754944e-38, 3.4028235e38, -3.4028235e38, 1 / 3, 2.5], np.float32)
        rest = RNG.standard_normal(int(np.prod(shape)) - 8).astype(np.float32) * 10.0 ** RNG.integers(-30, 30)
        return np.concatenate([special, rest]).astype(np.float32).reshape(shape)
    info = np.iinfo(dtype)
    rest = RNG.integers(info.min, info.max, int(np.prod(shape)) - 4, dtype=dtype, endpoint=True)
    return np.concatenate([[info.min, info.max, 0, 1], rest]).astype(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "float32"])
@pytest.mark.parametrize("fmt", ["row", "columnar"])
def test_reply_arrays_decode_to_the_tensors_of_the_nested_list_path(dtype, fmt):
    arr = _values(dtype)
    png = np.array([b"\x89PNG\x00" + bytes([i]) for i in range(5)], object)
    outputs = {"images": arr, "class_id": np.arange(5, dtype=np.int32), "png_bytes": png}
    body = fastjson.dumps(predict_response(outputs, fmt, fast=True))
    fast, slow = loads_arrays(body, min_bytes=2), fastjson.loads(body)
    assert _plain(fast) == slow
    if fmt == "columnar":
        got = fast["outputs"]["images"]  # int64's extremes have 19 digits: they keep the exact-int list path
        assert isinstance(got, list if dtype == "int64" else np.ndarray) and np.shape(got) == arr.shape
        for name in ("images", "class_id", "png_bytes"):
            want = "string" if name == "png_bytes" else str(outputs[name].dtype)
            x, y = _to_array(fast["outputs"][name], want), _to_array(slow["outputs"][name], want)
            assert x.dtype == y.dtype == outputs[name].dtype and x.shape == y.shape
            if want == "string":
                assert x.tolist() == y.tolist()
            else:
                assert x.tobytes() == y.tobytes() == outputs[name].tobytes()
    else:  # one object per row: each row's image is its own array
        row = fast["predictions"][1]["images"]
        assert isinstance(row, list if dtype == "int64" else np.ndarray)
        assert _to_array(row, dtype).tobytes() == arr[1].tobytes()


def test_float64_values_are_the_ones_python_parses():
    values = RNG.standard_normal(2000) * 10.0 ** RNG.integers(-300, 300, 2000)
    values[:4] = [5e-324, -0.0, 1.7976931348623157e308, 0.1]
    for text in (json.dumps(values.tolist()).encode(), fastjson.dumps(values),
                 json.dumps(values.tolist(), indent=1).encode()):
        got = loads_arrays(text, min_bytes=2)
        assert isinstance(got, np.ndarray) and got.dtype == np.float64
        assert got.tobytes() == np.array(json.loads(text)).tobytes()


def test_pretty_printed_and_nested_documents():
    arr = _values("uint8", (4, 3, 2))
    doc = {"a": "[1,2,3]", "outputs": {"x": arr.tolist(), "y": ["s", [1, 2], [3, 4]], "z": [[1.5, -2e-3], [0.0, 7.0]],
                                                                            "w": [-(10 ** 18 - 1), 10 ** 18 - 1, 0]}}
    for text in (json.dumps(doc, indent=4).encode(), json.dumps(doc).encode(), fastjson.dumps(doc)):
        got = loads_arrays(text, min_bytes=2)
        assert _plain(got) == json.loads(text)
        assert isinstance(got["outputs"]["x"], np.ndarray) and got["outputs"]["x"].dtype == np.int64
        assert got["outputs"]["z"].dtype == np.float64 and got["a"] == "[1,2,3]"
        assert got["outputs"]["w"].tolist() == [-(10 ** 18 - 1), 10 ** 18 - 1, 0]  # 18 digits: exact in int64
    top = loads_arrays(b" [[1, 2], [3, 4]] ", min_bytes=2)
    assert isinstance(top, np.ndarray) and top.tolist() == [[1, 2], [3, 4]]
    assert isinstance(loads_arrays(fastjson.dumps(doc))["outputs"]["x"], list)  # shorter than min_bytes


@pytest.mark.parametrize("text", [
    b"[[1,2],[3]]", b"[[1,2],[3],[4,5,6]]", b"[1,[2]]", b"[[1],2]", b"[[],[]]", b"[[1],[]]", b"[1,true]",
    b"[1,null]", b'[1,"2"]', b"[1234567890123456789]", b"[-1234567890123456789,1]", b"[1.5,12345678901234567890]",
    b'{"a":"x\\"y","b":[1,2]}', b'["a",[1,2],[3,4]]', b"[1e400,-1e400]", b"[0,-0,-0.0,1E+2,1e-2]",
    b"[" * 40 + b"1" + b"]" * 40, b"[[" + b"1," * 5000 + b"1]" + b",[1]" * 5000 + b"]",  # no 5001x5001 template
])
def test_what_it_does_not_read_comes_back_as_before(text):
    got = loads_arrays(text, min_bytes=2)
    assert _plain(got) == fastjson.loads(text)
    assert json.dumps(_plain(got)) == json.dumps(fastjson.loads(text))  # ints stay ints, floats floats


@pytest.mark.parametrize("text", [
    b"[01,2]", b"[1 2]", b"[1,,2]", b"[1,2,]", b"[,1]", b"[1.]", b"[.5]", b"[1e]", b"[-]", b"[1e5.0]", b"[1.2.3]",
    b"[+1]", b"[--1]", b"[1-2]", b"[1e+-2]", b"[1,2]]", b"[[1,2]", b'{[1,2]:3}', b'{"a":1,[1,2]:3}', b"[1,2] [3]",
    b"[[1,2],[3,4]],", b"[-01]", b"[1E5E5]", b"[1.e5]", b"[" * 2000 + b"1" + b"]" * 2000,
])
def test_invalid_json_fails_with_the_nested_list_path_message(text):
    with pytest.raises((ValueError, RecursionError)) as want:  # too deep: RecursionError, as before
        fastjson.loads(text)
    with pytest.raises((ValueError, RecursionError)) as got:
        loads_arrays(text, min_bytes=2)
    assert type(got.value) is type(want.value) and str(got.value) == str(want.value)


def test_fast_lanes_read_numbers_as_the_general_one():
    from tfaug.serving import jsonarrays

    arr = _values("uint8", (6, 4, 1))
    text = fastjson.dumps(arr)
    fast = jsonarrays._plain_ints(np.frombuffer(text, np.uint8))
    general = jsonarrays._parse(np.frombuffer(text.replace(b"[", b" [", 1), np.uint8))  # whitespace: general lane
    assert fast.tobytes() == general.tobytes() == arr.astype(np.int64).tobytes() and fast.shape == arr.shape
    assert jsonarrays._plain_ints(np.frombuffer(b"[[1,-2],[3,4]]", np.uint8)) is None  # a sign: general lane
    floats = RNG.standard_normal((6, 4, 1)) * 10.0 ** RNG.integers(-30, 30, (6, 4, 1))  # "1e-45" has no '.': general
    for text in (fastjson.dumps(floats), json.dumps(floats.tolist(), separators=(",", ":")).encode()):
        fast = jsonarrays._plain_floats(np.frombuffer(text, np.uint8))
        general = jsonarrays._parse(np.frombuffer(b" " + text, np.uint8))
        assert fast.tobytes() == general.tobytes() == np.array(json.loads(text)).tobytes()
    for text in (b"[1.5,2]", b"[1.5,1e5]", b"[1.5,.5]", b"[1.5,1.5.5]", b"[[1.5],[]]"):  # not every number a fraction
        assert jsonarrays._plain_floats(np.frombuffer(text, np.uint8)) is None


def test_client_casts_arrays_as_it_cast_lists():
    ints, floats = np.array([[0, 255], [7, 3]]), np.array([0.1, -0.0, 3.4028235e38, 1e-46, 2.5])
    small = np.array([0.1, -0.0, 65504.0, 1e-8, 2.5])
    for value, dtype in ((ints, "uint8"), (ints, "int32"), (ints, None), (ints, "float32"), (floats, "float32"),
                         (small, "float16"), (floats, None), (floats, "bfloat16"), (small, "int32")):
        want = np.asarray(value.tolist(), dtype=dtype if dtype != "bfloat16" else None)
        got = _to_array(value, dtype)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
    for value in (np.array([300, 1]), np.array([-1])):  # out of range for uint8: the error the lists raised
        with pytest.raises(OverflowError):
            np.asarray(value.tolist(), dtype="uint8")
        with pytest.raises(OverflowError):
            _to_array(value, "uint8")


def test_outer_length_and_array_end_are_read_right_or_refused():
    """The outermost length comes from the text's length and the array's end from the closes after it: rows whose
    counts add up but differ stay lists, and an array closed by more than 64 enclosing arrays is still found."""
    for text in (b"[[1,2],[3,4,5],[6]]", b"[[1,2,3],[4],[5,6]]", b"[[1,2],[3,4,5,6,7]]"):
        got = loads_arrays(text, min_bytes=2)
        assert not isinstance(got, np.ndarray) and got == json.loads(text)
    inner = b"[" + b",".join(str(v).encode() for v in range(300)) + b"]"
    for depth in (3, 70):
        text = b"[" * depth + b'"x",' + inner + b"]" * depth
        got = loads_arrays(text, min_bytes=2)
        for _ in range(depth):
            got = got[-1] if isinstance(got, list) else got
        assert isinstance(got, np.ndarray) and got.tolist() == list(range(300))
        assert _plain(loads_arrays(text, min_bytes=2)) == json.loads(text)
