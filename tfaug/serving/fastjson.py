"""Fast JSON for the REST path (issue 21): ``orjson`` with numpy support, same documents as the standard library.

A 256-image predict reply holds ~200,000 integers; ``arr.tolist()`` + ``json.dumps`` spends most of a request
building and printing Python ints. ``orjson`` (``OPT_SERIALIZE_NUMPY``) writes numeric numpy arrays straight
from their buffer, so :func:`tfaug.serving.jsontensor.predict_response` leaves numeric outputs as arrays and
:func:`dumps` prints them. The document is TF Serving's JSON either way: nested lists of numbers, ``{"b64": ...}``
for binary strings. Numbers are printed in their shortest round-trip form (a float32 ``0.1`` is ``0.1`` where the
standard library printed its float64 widening ``0.10000000149011612``); each parses back to the same float32.

Where orjson's output or parser would differ from the standard library's, the standard library runs:
:func:`json_ready` prints arrays with non-finite floats (``NaN``/``Infinity``, which orjson would write as
``null``) with the standard library and leaves dtypes orjson does not print (complex, ...) as lists, and :func:`loads` falls back to ``json.loads`` for
documents orjson rejects (``NaN`` literals, integers beyond 64 bits), so a request is accepted or refused with
the same message as before.
"""
from __future__ import annotations

import json
import re

import numpy as np
import orjson

__all__ = ["dumps", "loads", "json_ready"]

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS  # int keys print as strings, as json.dumps does
# numpy dtype kinds/sizes orjson prints natively (bool, signed/unsigned integers, float16/32/64).
_NATIVE_KINDS = "biuf"


def dumps(obj) -> bytes:
    """``obj`` (dicts, lists, str, numbers, numeric numpy arrays and scalars) -> compact UTF-8 JSON bytes."""
    return orjson.dumps(obj, option=_OPTIONS)


# An integer literal of 19 or more digits: it may not fit int64 (orjson would read a negative one as a float).
_LONG_INT = re.compile(rb"(?<![\d.eE+-])-?\d{19,}(?![\d.eE])")
# Digits -> b"0", every other byte -> b" ": a 19-digit run is then a plain substring search (~1 ms for a 1 MB reply,
# where the regex alone scanned it in ~30 ms); the regex runs only on documents that have one.
_DIGITS_ONLY = bytes(48 if 48 <= i <= 57 else 32 for i in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def loads(data: bytes | bytearray | memoryview | str):
    """JSON text -> Python objects (lists, dicts, str, int, float), as ``json.loads`` would return them.

    Raises:
        ValueError (``json.JSONDecodeError``) or UnicodeDecodeError: not JSON, as ``json.loads`` raises them.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    # orjson reads integers below int64 as floats; the standard library keeps them exact
    if _LONG_DIGIT_RUN in raw.translate(_DIGITS_ONLY) and _LONG_INT.search(raw):
        return json.loads(raw.decode("utf-8"))
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # NaN/Infinity literals and integers beyond 64 bits are JSON to the standard library (and to clients
        # that worked before); anything else fails there with the message it always had.
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data).decode("utf-8")
        return json.loads(data)


def json_ready(arr: np.ndarray):
    """A numeric array as :func:`dumps` prints it: the array itself (C-contiguous) where orjson prints it; the
    standard library's text (an ``orjson.Fragment``) where orjson's would differ (non-finite floats, which it
    writes as ``null``); ``tolist()`` for dtypes orjson cannot print and for 0-d arrays."""
    if arr.dtype.kind not in _NATIVE_KINDS or arr.ndim == 0:
        return arr.tolist()
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        return orjson.Fragment(json.dumps(arr.tolist(), separators=(",", ":")))
    return np.ascontiguousarray(arr)
