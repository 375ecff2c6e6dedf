"""TF Serving's REST JSON tensor encoding (``json_tensor.cc``): request parsing and response building.

Requests: ``{"signature_name": ..., "instances": [...]}`` (row format: one value, or one object of named
inputs, per row) or ``{"signature_name": ..., "inputs": {...}}`` (columnar format: one batched value per
input, or the value itself for a single-input signature). Binary values are ``{"b64": "..."}``.
Responses: row format -> ``{"predictions": [...]}`` (a list of values for a single output, a list of objects
for several); columnar -> ``{"outputs": value}`` for a single output, ``{"outputs": {name: value}}`` otherwise.
String outputs whose name ends in ``_bytes`` are returned as ``{"b64": "..."}``.

:func:`predict_response` leaves numeric outputs as numpy arrays (``tfaug.serving.fastjson.json_ready``) for
``fastjson.dumps`` to print from their buffers; ``fast=False`` builds the same document from Python lists (the
reference the fast path is tested against, and what ``json.dumps`` can print).
"""
from __future__ import annotations

import base64
import binascii

import numpy as np

from tfaug.serving.fastjson import json_ready
from tfaug.serving.modelstore import SignatureInfo
from tfaug.serving.predict import dtype_name
from tfaug.serving.status import ServingError

__all__ = ["parse_predict_request", "predict_response"]


def _bad(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


def parse_predict_request(body, sig_lookup, route=None) -> tuple[str | None, dict, str, SignatureInfo]:
    """Decode a parsed JSON predict body.

    Args:
        body: the parsed JSON document.
        sig_lookup: ``signature_name -> SignatureInfo`` (raises ServingError for an unknown signature).
        route: optional ``(sig, input names) -> SignatureInfo`` choosing the signature that runs the request
            once its input names are known (``serving_default`` + ``truncation`` -> ``truncated``).

    Returns:
        (signature name or None, inputs name -> numpy array in the dtype of the signature that runs,
        "row" | "columnar", that signature).
    """
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object with an 'instances' or 'inputs' key.")
    has_rows, has_cols = "instances" in body, "inputs" in body
    if has_rows == has_cols:
        raise _bad("Request must contain exactly one of the keys 'instances' (row format) or 'inputs' (columnar format).")
    unknown = sorted(set(body) - {"instances", "inputs", "signature_name"})
    if unknown:
        raise _bad(f"Unknown key {unknown[0]!r} in request; expected 'signature_name' and 'instances' or 'inputs'.")
    signature_name = body.get("signature_name")
    if signature_name is not None and not isinstance(signature_name, str):
        raise _bad("'signature_name' must be a string.")
    sig = sig_lookup(signature_name)
    names = list(sig.inputs)
    if has_rows:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise _bad("'instances' must be a non-empty list with one entry per row.")
        single = names[0] if len(names) == 1 else None

        def is_value(inst) -> bool:  # a plain value, or a {"b64": ...} binary value, of a single input
            return not isinstance(inst, dict) or (single not in (None, "b64") and set(inst) == {"b64"})

        if single is not None and all(is_value(i) for i in instances):
            columns = {single: instances}
        elif all(isinstance(i, dict) for i in instances):
            keys = list(instances[0])
            for n, inst in enumerate(instances):
                if set(inst) != set(keys):
                    raise _bad(
                        f"Instance {n} has inputs {sorted(inst)} but instance 0 has {sorted(keys)}; "
                        "all rows need the same inputs."
                    )
            columns = {k: [inst[k] for inst in instances] for k in keys}
        else:
            raise _bad(f"Each instance must be an object with the inputs {', '.join(names)} of signature {sig.name!r}.")
        fmt = "row"
    else:
        given = body["inputs"]
        if isinstance(given, dict) and not (len(names) == 1 and set(given) == {"b64"}):
            columns = dict(given)
        elif len(names) == 1:
            columns = {names[0]: given}
        else:
            raise _bad(f"'inputs' must be an object with the inputs {', '.join(names)}.")
        fmt = "columnar"
    if route is not None:
        sig = route(sig, list(columns))
    inputs = {}
    for key, value in columns.items():
        if key in sig.inputs:
            inputs[key] = to_array(value, sig.inputs[key][0], key)
        else:
            inputs[key] = np.zeros(0)  # reported as unexpected by Predictor.check
    return signature_name, inputs, fmt, sig


def _decode_strings(value, key: str):
    if isinstance(value, list):
        return [_decode_strings(v, key) for v in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise _bad(f"Input {key!r}: binary values must be objects of the form {{\"b64\": \"...\"}}.")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            raise _bad(f"Input {key!r} holds a 'b64' value that is not valid base64.") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise _bad(f"Input {key!r} must be a string or {{\"b64\": ...}} value, got {type(value).__name__}.")


def to_array(value, dtype, key: str) -> np.ndarray:
    """JSON value -> numpy array of ``dtype`` (object of bytes for strings); INVALID_ARGUMENT on a mismatch."""
    dtype = np.dtype(dtype)
    if dtype == object:
        decoded = _decode_strings(value, key)
        arr = np.empty(_shape_of(decoded, key), dtype=object)
        arr[...] = decoded
        return arr
    if _contains_dict(value):
        raise _bad(f"Input {key!r} must be {dtype_name(dtype)}; 'b64' values are only for string inputs.")
    try:
        arr = np.asarray(value)
    except (ValueError, OverflowError):
        raise _bad(f"Input {key!r} is ragged; every row must have the same shape.") from None
    if arr.dtype == object:
        if dtype.kind in "iu":
            _raise_if_out_of_range_int(value, dtype, key)
        raise _bad(
            f"Input {key!r} is ragged, mixes types or holds an out-of-range number; "
            f"expected {dtype_name(dtype)} values."
        )
    kind, want = arr.dtype.kind, dtype.kind
    ok = (
        arr.size == 0
        or (want in "iu" and kind in "iu")
        or (want == "f" and kind in "iuf")
        or (want == "b" and kind == "b")
        or (want == "c" and kind in "iufc")
    )
    if not ok and want in "iu" and kind == "f":
        _raise_if_out_of_range_int(value, dtype, key)  # numpy turns [2**63, -1] into floats: not the client's floats
    if not ok:
        got = {"f": "float", "b": "boolean", "U": "string", "S": "string"}.get(kind, arr.dtype.name)
        raise _bad(f"Input {key!r} must be {dtype_name(dtype)} but holds {got} values.")
    if want in "iu" and arr.size:
        info = np.iinfo(dtype)
        lo, hi = arr.min(), arr.max()
        if lo < info.min or hi > info.max:
            raise _bad(f"Input {key!r} holds {int(lo if lo < info.min else hi)}, outside the {dtype_name(dtype)} range.")
    return arr.astype(dtype, copy=False)


def _raise_if_out_of_range_int(value, dtype: np.dtype, key: str) -> None:
    """INVALID_ARGUMENT naming the first integer outside ``dtype`` when every leaf of ``value`` is a JSON integer."""
    leaves, stack = [], [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(reversed(v))
        elif isinstance(v, bool) or not isinstance(v, int):
            return
        else:
            leaves.append(v)
    info = np.iinfo(dtype)
    bad = next((v for v in leaves if not info.min <= v <= info.max), None)
    if bad is not None:
        raise _bad(f"Input {key!r} holds {bad}, outside the {dtype_name(dtype)} range.")


def _contains_dict(value) -> bool:
    if isinstance(value, dict):
        return True
    return isinstance(value, list) and any(isinstance(v, dict) for v in value[:1] + value[-1:])


def _shape_of(value, key: str) -> tuple:
    shape = []
    v = value
    while isinstance(v, list):
        shape.append(len(v))
        if not v:
            break
        v = v[0]
    _check_shape(value, tuple(shape), key)
    return tuple(shape)


def _check_shape(value, shape: tuple, key: str) -> None:
    if not shape:
        if isinstance(value, list):
            raise _bad(f"Input {key!r} is ragged; every row must have the same shape.")
        return
    if not isinstance(value, list) or len(value) != shape[0]:
        raise _bad(f"Input {key!r} is ragged; every row must have the same shape.")
    for v in value:
        _check_shape(v, shape[1:], key)


def _json_value(arr: np.ndarray, b64: bool, fast: bool = False):
    if arr.dtype != object:
        return json_ready(arr) if fast else arr.tolist()
    if arr.ndim == 0:
        return _string_json(arr.item(), b64)
    if arr.ndim == 1:
        return [_string_json(v, b64) for v in arr]
    return [_json_value(a, b64) for a in arr]


def _string_json(value: bytes, b64: bool):
    if b64:
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value.decode("utf-8", errors="replace")


def predict_response(outputs: dict, fmt: str, fast: bool = False) -> dict:
    """Build TF Serving's predict response for ``outputs`` (name -> numpy array) in "row" or "columnar" format.

    With ``fast`` (the REST server's choice) numeric values stay numpy arrays (print with ``tfaug.serving.fastjson.dumps``);
    without, every value is a Python list or scalar (``json.dumps`` prints it). Both print the same document.
    """
    names = list(outputs)
    if fmt == "columnar":
        values = {k: _json_value(np.asarray(outputs[k]), k.endswith("_bytes"), fast) for k in names}
        return {"outputs": values[names[0]] if len(names) == 1 else values}
    sizes = {k: (np.shape(outputs[k])[0] if np.ndim(outputs[k]) else None) for k in names}
    batch = sizes[names[0]]
    if any(s is None or s != batch for s in sizes.values()):
        raise ServingError(
            "INVALID_ARGUMENT",
            "Outputs have different batch sizes and cannot be returned in row format; use the columnar 'inputs' format.",
        )
    if len(names) == 1:
        return {"predictions": _json_value(np.asarray(outputs[names[0]]), names[0].endswith("_bytes"), fast)}
    columns = {k: _rows(np.asarray(outputs[k]), k.endswith("_bytes"), fast) for k in names}
    return {"predictions": [{k: columns[k][i] for k in names} for i in range(batch)]}


def _rows(arr: np.ndarray, b64: bool, fast: bool) -> list:
    """The JSON value of each row of ``arr`` (its first axis), as :func:`_json_value` gives the whole array."""
    if fast and arr.dtype != object:
        return [json_ready(row) for row in arr]  # each row one array (or text) for dumps
    return _json_value(arr, b64, fast)
