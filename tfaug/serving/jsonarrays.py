"""Decode the large numeric arrays of a JSON document straight into numpy (issue 21, the REST client's replies).

A 256-image predict reply is ~1.1 MB of nested integer lists. ``orjson.loads`` turns it into ~200,000 Python ints
in ~208,000 lists (the innermost, one channel, of length 1), and ``np.asarray`` walks them again: with the
collector's passes over TensorFlow's heap this was the largest cost of a REST request. :func:`loads_arrays` instead
finds each long, regular array of JSON numbers in the bytes, checks its shape and JSON's number grammar, reads its
numbers at once (integers with ``np.fromstring``, or from their digits with numpy in the integer fast lane; floats
with ``orjson.loads`` of one flat list, so each float is the one the nested lists held) and parses the rest of the
document, with a placeholder string for each array, with :func:`tfaug.serving.fastjson.loads`. Two fast lanes cover
what servers print (non-negative integers; floats that all have a fraction; no whitespace) with a few ``bytes`` and
numpy operations; a general lane of vectorised numpy scans covers the rest of JSON's number arrays. Measured in
``benchmarks/rest_json.py``: ~8 ms for a 256-image uint8 reply on an idle 2-core Xeon, where the nested lists took
~22 ms with the collector paused (~15 ms on a busy machine, and ~50 ms for the nested lists, before the digit lane).

Anything out of the ordinary is left to :func:`fastjson.loads` and comes back as nested lists, exactly as before:
ragged or mixed-depth arrays, empty arrays, booleans or nulls among the numbers, integers of 19 or more digits,
integers mixed with fractions, more than 32 dimensions, arrays shorter than ``min_bytes``, documents with backslash
escapes, and invalid JSON (which then fails with ``fastjson.loads``'s own message).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import orjson

from tfaug.serving import fastjson

__all__ = ["loads_arrays"]

# Byte classes: 0 other, 1 whitespace, 2 '[', 3 ']', 4 ',', 5 digit, 6 '-', 7 '+', 8 '.', 9 'e'/'E'.
_WS, _OPEN, _CLOSE, _COMMA, _DIGIT, _MINUS, _PLUS, _DOT, _EXP = range(1, 10)
_CLASS = np.zeros(256, np.int8)
for _chars, _cls in ((b" \t\n\r", _WS), (b"[", _OPEN), (b"]", _CLOSE), (b",", _COMMA), (b"0123456789", _DIGIT),
                     (b"-", _MINUS), (b"+", _PLUS), (b".", _DOT), (b"eE", _EXP)):
    _CLASS[list(_chars)] = _cls
_NUMERIC = bytes(_CLASS > 0)  # byte -> 1 where it may belong to an array of numbers, else 0
_NUMBER_TO_ZERO = bytes.maketrans(b"-123456789", b"0000000000")  # a number's first byte, in the skeleton
_BLANK_STRUCTURE = bytes.maketrans(b"[],", b"   ")  # leaves the numbers, separated by spaces, for np.fromstring
_BLANK_BRACKETS = bytes.maketrans(b"[]", b"  ")  # "[[1.5],[2.5]]" -> "  1.5 , 2.5  ": one flat list's items
_MAX_NDIM = 32  # numpy's limit is 64; deeper documents keep orjson's nesting error
_MAX_INT_DIGITS = 18  # int64 holds every 18-digit integer; longer ones keep the standard library's exact ints


def loads_arrays(data: bytes | bytearray | memoryview, min_bytes: int = 1024):
    """JSON bytes -> Python objects as :func:`fastjson.loads` returns them, except that each regular array of
    JSON numbers whose text is at least ``min_bytes`` (>= 2) long comes back as a numpy array of its nested shape
    (at most 32 dimensions): int64 when all its numbers are integers of at most 18 digits, float64 when all have a
    fraction or an exponent (a mix stays lists: ``-0`` is the int 0, not -0.0).

    Raises:
        ValueError or UnicodeDecodeError: not JSON, exactly as :func:`fastjson.loads` raises them.
    """
    raw = bytes(data)
    if len(raw) < max(int(min_bytes), 2) or b"\\" in raw:  # no escapes: every '"' opens or closes a string
        return fastjson.loads(raw)
    spans = _array_spans(raw, max(int(min_bytes), 2))
    arrays, pieces, pos = [], [], 0
    for start, end in spans:
        arr = _parse(np.frombuffer(raw, np.uint8, end - start, start))
        if arr is None:
            continue
        pieces += [raw[pos:start], b'"\\u0000%d"' % len(arrays)]  # no string of an escape-free document holds NUL
        arrays.append(arr)
        pos = end
    if not arrays:
        return fastjson.loads(raw)
    try:
        doc = fastjson.loads(b"".join(pieces) + raw[pos:])
    except ValueError:
        return fastjson.loads(raw)  # the document's own error message
    return _put_back(doc, arrays)


def _array_spans(raw: bytes, min_bytes: int) -> list[tuple[int, int]]:
    """(start, end) of the first array in each run of number/bracket/comma/whitespace bytes outside strings that
    is at least ``min_bytes`` long, where that array stands in a value's place (not an object key's).

    A run such as ``[[1,2],[3,4]]],`` (an array, then the ends of the arrays around it) holds one array; its end is
    the run's n-th ']' for the run's n '['. A run where that guess is wrong (``,[1],[2]]``) fails :func:`_parse`'s
    balance check and is left to orjson."""
    a = np.frombuffer(raw, np.uint8)
    numeric = np.frombuffer(raw.translate(_NUMERIC), bool)
    edges = np.flatnonzero(numeric[1:] != numeric[:-1]) + 1
    bounds = np.concatenate([[0], edges, [len(a)]])
    quotes = np.flatnonzero(a == ord('"'))
    spans = []
    for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if e - s < min_bytes or not numeric[s] or np.searchsorted(quotes, s) % 2:  # short, not numeric, in a string
            continue
        start = raw.find(b"[", s, e)
        if start < 0 or raw[s:start].strip(b" \t\n\r,"):
            continue
        run = a[start:e]
        n_open, n_close = int(np.count_nonzero(run == ord("["))), int(np.count_nonzero(run == ord("]")))
        if n_close < n_open:
            continue
        if n_close - n_open <= 64:  # the ends of the arrays around it follow: step back over them
            end = e
            for _ in range(n_close - n_open + 1):
                end = raw.rfind(b"]", start, end)
        else:
            end = start + int(np.flatnonzero(run == ord("]"))[n_open - 1])
        end += 1
        if end - start >= min_bytes and _value_position(raw, start, end):
            spans.append((start, end))
    return spans


def _value_position(raw: bytes, start: int, end: int) -> bool:
    """Whether raw[start:end] stands where a value does: after '[', ',' or ':' (or nothing) and before ',', ']',
    '}' (or nothing). A string placeholder could otherwise turn an invalid document (an array as a key) valid."""
    before = raw[max(0, start - 64):start].rstrip(b" \t\n\r")[-1:]
    after = raw[end:end + 64].lstrip(b" \t\n\r")[:1]
    return (before in (b"[", b",", b":") or (before == b"" and start <= 64)) and \
        (after in (b",", b"]", b"}") or (after == b"" and len(raw) - end <= 64))


def _parse(seg: np.ndarray):
    """The bytes of one balanced JSON array -> numpy array, or None where it is not a regular array of JSON numbers
    this reader handles (see the module docstring)."""
    fast = _plain_ints(seg)
    if fast is None:
        fast = _plain_floats(seg)
    if fast is not None:
        return fast
    cls = _CLASS[seg]
    keep = cls != _WS
    if not keep.all():
        where = np.flatnonzero(keep)
        seg, cls = seg[where], cls[where]
        num = cls >= _DIGIT
        if (num[1:] & num[:-1] & (np.diff(where) > 1)).any():  # "1 2": two numbers with only whitespace between
            return None
    num = cls >= _DIGIT
    starts = num.copy()
    starts[1:] &= ~num[:-1]
    ends = num.copy()
    ends[:-1] &= ~num[1:]
    t_start, t_end = np.flatnonzero(starts), np.flatnonzero(ends) + 1
    # The array's skeleton, each number written as 0, is the JSON text of zeros of its shape exactly when the
    # array is regular: same depth everywhere, same length at each level, nothing but numbers as leaves.
    skeleton = seg[~num | starts].tobytes().translate(_NUMBER_TO_ZERO)
    shape = _first_shape(skeleton)
    if shape is None or math.prod(shape) != len(t_start) or skeleton != _regular_skeleton(shape):
        return None
    kind = _number_kind(seg, cls, t_start, t_end)
    if kind is None:
        return None
    if kind == "i":  # numpy's C integer reader (exact: at most 18 digits)
        values = np.fromstring(seg.tobytes().translate(_BLANK_STRUCTURE), dtype=np.int64, sep=" ")
    else:  # orjson's reader on one flat list: the floats the nested-list path gives, bit for bit
        try:
            values = np.array(orjson.loads(b"[" + seg.tobytes().translate(_BLANK_BRACKETS) + b"]"), np.float64)
        except orjson.JSONDecodeError:  # 1e400: the standard library's inf, through fastjson.loads
            return None
    if values.size != len(t_start):
        return None
    return values.reshape(shape)


def _plain_ints(seg: np.ndarray):
    """The fast lane for what servers print most: non-negative integers without whitespace. The bytes with their
    digits deleted must be the skeleton of the shape read off them, and hold one run of digits per element (no
    leading zero, at most 18 digits); numpy array (int64) or None (then :func:`_parse`'s general path runs)."""
    text = seg.tobytes()
    if b"." in text or b"e" in text or b"E" in text or b"-" in text:
        return None
    bare = text.translate(None, b"0123456789")  # anything but brackets and commas stays and breaks the match
    shape = _first_shape(bare, b"")
    if shape is None:
        return None
    digits = (seg - np.uint8(48)) < 10
    starts = digits.copy()
    starts[1:] &= ~digits[:-1]
    first = np.flatnonzero(starts)
    if len(first) != math.prod(shape) or bare != _regular_skeleton(shape, b""):  # each element holds one run
        return None
    ends = digits  # (reused) the last digit of each run
    ends[:-1] &= ~digits[1:]
    last = np.flatnonzero(ends)
    length = last - first + 1
    longest = int(length.max())
    if longest > _MAX_INT_DIGITS or ((seg[first] == ord("0")) & (length > 1)).any():  # too long; "01"
        return None
    # the numbers from their digits, ones first (int32 while they fit: 9 digits); faster than np.fromstring
    work = np.int32 if longest <= 9 else np.int64
    values = seg[last].astype(work) - 48
    for k in range(1, longest):
        values += (seg[last - k].astype(work) - 48) * work(10 ** k) * (length > k)
    return values.astype(np.int64).reshape(shape)


def _plain_floats(seg: np.ndarray):
    """The fast lane for float arrays as orjson and the standard library print them: every number has a fraction
    ('.'), no whitespace. With its numbers deleted the text must be the skeleton of its shape, with one '.' per
    element; orjson then reads the numbers as one flat list and checks their grammar (a slot without a number,
    two numbers in one, "01", "1." fail there). numpy array (float64) or None (then the general path runs)."""
    text = seg.tobytes()
    bare = text.translate(None, b"0123456789+-.eE")
    shape = _first_shape(bare, b"")
    if shape is None or text.count(b".") != math.prod(shape) or bare != _regular_skeleton(shape, b""):
        return None
    try:
        values = orjson.loads(b"[" + text.translate(_BLANK_BRACKETS) + b"]")
    except orjson.JSONDecodeError:
        return None
    return np.array(values, np.float64).reshape(shape) if len(values) == math.prod(shape) else None


@functools.lru_cache(maxsize=8)
def _regular_skeleton(shape: tuple, leaf: bytes = b"0") -> bytes:
    """The JSON text of ``shape`` with each element written as ``leaf``: (2, 1) -> b"[[0],[0]]"."""
    text = leaf
    for d in reversed(shape):
        text = b"[" + b",".join([text] * d) + b"]"
    return text


def _first_shape(skeleton: bytes, leaf: bytes = b"0") -> tuple | None:
    """The shape read off the first array at each level of ``skeleton`` ("[[0,0],[0,0]]" -> (2, 2)), or None.

    The outermost length comes from the text's length: a list of d items each L bytes long is 1 + d * (L + 1)
    bytes, L the length of the first item's regular skeleton. The callers compare the whole skeleton with the
    regular one of the shape, so only the first item is read (a 256-image reply: ~0.05 ms instead of ~1.5 ms)."""
    head = skeleton[:_MAX_NDIM + 2]
    ndim = len(head) - len(head.lstrip(b"["))
    if not 0 < ndim <= _MAX_NDIM or (leaf and skeleton[ndim:ndim + 1] != leaf):
        return None
    inner_shape = []
    for level in range(2, ndim + 1):  # the first array of this level ends at the first run of deeper closes
        inner = ndim - level  # brackets between this level's elements: "]" * inner + "," + "[" * inner
        end = skeleton.find(b"]" * (inner + 1))
        inner_shape.append(skeleton.count(b"]" * inner + b"," + b"[" * inner, 0, end) + 1)
    item = len(_regular_skeleton(tuple(inner_shape), leaf)) if inner_shape else len(leaf)
    outer, rest = divmod(len(skeleton) - 1, item + 1)
    return (outer, *inner_shape) if rest == 0 and outer > 0 else None


def _number_kind(seg: np.ndarray, cls: np.ndarray, t_start: np.ndarray, t_end: np.ndarray) -> str | None:
    """"i" where every token seg[t_start[k]:t_end[k]] is a JSON integer -?(0|[1-9]\\d*) of at most 18 digits,
    "f" where every one is a JSON number with a fraction or an exponent, -?(0|[1-9]\\d*)(\\.\\d+)?([eE][+-]?\\d+)?,
    None otherwise (not JSON, or a mix: ``[-0, 0.5]`` must keep its int ``0``, which float64 would make ``-0.0``).

    Only the few non-digit bytes are looked at, with their neighbours (a token never touches the array's ends)."""
    def around(kind):
        at = np.flatnonzero(cls == kind)
        return at, cls[at - 1], cls[at + 1]

    minus, m_prev, m_next = around(_MINUS)
    plus, p_prev, p_next = around(_PLUS)
    dot, d_prev, d_next = around(_DOT)
    exp, e_prev, e_next = around(_EXP)
    if ((m_prev >= _DIGIT) & (m_prev != _EXP)).any() or (m_next != _DIGIT).any() \
            or (p_prev != _EXP).any() or (p_next != _DIGIT).any() \
            or (d_prev != _DIGIT).any() or (d_next != _DIGIT).any() \
            or (e_prev != _DIGIT).any() or ((e_next != _DIGIT) & (e_next != _MINUS) & (e_next != _PLUS)).any():
        return None
    first = t_start + (cls[t_start] == _MINUS)  # first digit of each token's integer part
    if ((seg[first] == ord("0")) & (cls[first + 1] == _DIGIT)).any():  # leading zero: "01"
        return None
    dot_token = np.searchsorted(t_start, dot, "right") - 1
    exp_token = np.searchsorted(t_start, exp, "right") - 1
    if (np.diff(dot_token) == 0).any() or (np.diff(exp_token) == 0).any():  # "1.2.3", "1e2e3"
        return None
    exp_at = np.full(len(t_start), len(cls), np.int64)
    exp_at[exp_token] = exp
    if (dot > exp_at[dot_token]).any():  # "1e5.0"
        return None
    plain = np.ones(len(t_start), bool)
    plain[dot_token] = False
    plain[exp_token] = False
    if plain.all():
        return None if (t_end - first > _MAX_INT_DIGITS).any() else "i"
    return None if plain.any() else "f"


def _put_back(doc, arrays: list):
    """Replace the placeholder strings ("\\x00<index>") in ``doc`` by their arrays."""
    if isinstance(doc, str):
        return arrays[int(doc[1:])] if doc[:1] == "\x00" else doc
    if isinstance(doc, list):
        return [_put_back(v, arrays) if isinstance(v, (str, list, dict)) else v for v in doc]
    if isinstance(doc, dict):
        return {k: _put_back(v, arrays) if isinstance(v, (str, list, dict)) else v for k, v in doc.items()}
    return doc
