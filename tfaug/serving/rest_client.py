"""REST transport for :class:`tfaug.serving.client.ServingClient` (TF Serving's ``/v1/models`` API, stdlib only).

Requests use the columnar format (``{"signature_name": ..., "inputs": {name: nested lists}}``); string inputs
are sent and string outputs received as ``{"b64": ...}`` objects. TF Serving omits the output name when a
signature has a single output, so the transport asks ``/metadata`` once per model route for output names and
dtypes (numeric outputs are returned with the declared dtype, e.g. float32). No TensorFlow import here.
"""
from __future__ import annotations

import base64
import contextlib
import gc
import http.client
import functools
import socket
import threading
import urllib.parse

import numpy as np

from tfaug.errors import TfaugError
from tfaug.serving import fastjson
from tfaug.serving.client import TransientError, dtype_name, model_label, with_retries
from tfaug.serving.fastjson import json_ready
from tfaug.serving.jsonarrays import loads_arrays

__all__ = ["RestTransport"]


_gc_lock = threading.Lock()
_gc_paused = [0, False]  # [threads decoding, whether the collector was enabled before the first of them]


@contextlib.contextmanager
def _collector_paused():
    """Pause the cyclic garbage collector while a large reply is decoded.

    A reply of 16 images 28x28 is ~12k nested lists; allocating them triggers full collections, which with
    TensorFlow's object graph in the heap cost hundreds of milliseconds each (measured: a 40 ms request
    took 400-800 ms whenever a generation-2 collection fell inside it). The lists die by reference counting
    right after the conversion to numpy, so deferring collection loses nothing. Re-entrant across threads.
    """
    with _gc_lock:
        if _gc_paused[0] == 0:
            _gc_paused[1] = gc.isenabled()
            gc.disable()
        _gc_paused[0] += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_paused[0] -= 1
            if _gc_paused[0] == 0 and _gc_paused[1]:
                gc.enable()


def _server_error(body: bytes) -> str:
    """The ``{"error": ...}`` text of a TF Serving error body (or the raw body, shortened)."""
    text = body.decode("utf-8", errors="replace").strip()
    try:
        err = fastjson.loads(text).get("error")
    except (ValueError, AttributeError):
        err = None
    text = str(err if err is not None else text) or "no error text"
    return " ".join(text.split())[:500]


def _encode(array: np.ndarray):
    """numpy -> JSON value; bytes/str arrays become ``{"b64": ...}`` objects (TF Serving's binary convention)."""
    if array.dtype.kind in "SOU":
        flat = [{"b64": base64.b64encode(v if isinstance(v, bytes) else str(v).encode()).decode("ascii")}
                for v in array.reshape(-1)]
        return np.array(flat, dtype=object).reshape(array.shape).tolist() if array.ndim else flat[0]
    return json_ready(array)


def _decode_b64(value):
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode_b64(v) for v in value]
    return value.encode() if isinstance(value, str) else value


def _to_array(value, dtype: str | None) -> np.ndarray:
    if isinstance(value, np.ndarray):  # read straight from the reply's text (tfaug.serving.jsonarrays)
        fast = _cast(value, dtype)
        if fast is not None:
            return fast
        value = value.tolist()  # any other combination: exactly what the nested lists gave
    if dtype == "string" or (dtype is None and _has_b64(value)):
        decoded = _decode_b64(value)
        out = np.empty(np.shape(decoded) if isinstance(decoded, list) else (), dtype=object)
        out[...] = decoded if isinstance(decoded, list) else decoded
        return out
    if dtype in (None, "bfloat16"):
        return np.asarray(value)
    return np.asarray(value, dtype=dtype)


def _cast(value: np.ndarray, dtype: str | None) -> np.ndarray | None:
    """An int64/float64 array from the reply as ``np.asarray(value.tolist(), dtype)`` would return it, where that
    is a plain cast: integers into an integer dtype that holds them all, floats into a float dtype; else None."""
    if dtype in (None, "bfloat16"):
        return value
    if dtype == "string":
        return None
    target = np.dtype(dtype)
    if value.dtype.kind == "f" and target.kind == "f":
        return value.astype(target)
    if value.dtype.kind == "i" and target.kind in "iu":
        info = np.iinfo(target)
        if not value.size or (info.min <= value.min() and value.max() <= info.max):
            return value.astype(target)
    return None


def _has_b64(value) -> bool:
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, dict) and "b64" in value


class RestTransport:
    """HTTP/JSON transport; thread-safe (one short-lived connection per request, see :meth:`_exchange`)."""

    def __init__(self, url: str, timeout: float = 30.0, retries: int = 2):
        parsed = urllib.parse.urlsplit(str(url))
        try:
            port = parsed.port
        except ValueError:
            port = -1
        if parsed.scheme not in ("http", "https") or not parsed.hostname or port == -1:
            raise TfaugError(f"Server URL must look like http://127.0.0.1:8501, got {url!r}.")
        if not float(timeout) > 0 or int(retries) < 0:
            raise TfaugError(f"timeout must be > 0 and retries >= 0, got {timeout} and {retries}.")
        self.url = f"{parsed.scheme}://{parsed.netloc}{parsed.path.rstrip('/')}"
        self._prefix = parsed.path.rstrip("/")
        self._connect = functools.partial(
            http.client.HTTPSConnection if parsed.scheme == "https" else http.client.HTTPConnection,
            parsed.hostname, port, timeout=float(timeout))
        self.timeout, self.retries = float(timeout), int(retries)
        self._signatures: dict[tuple, dict] = {}
        self._lock = threading.Lock()
        self.requests_sent = 0  # every HTTP attempt, retries included (tests and benchmarks read it)

    @property
    def address(self) -> str:
        return self.url

    def close(self) -> None:
        """Nothing to release: every request uses its own connection."""

    # ---------------------------------------------------------------------------------------------- HTTP

    def _path(self, model: str, version, label) -> str:
        path = f"/v1/models/{urllib.parse.quote(model, safe='')}"
        if version is not None:
            path += f"/versions/{int(version)}"
        elif label is not None:
            path += f"/labels/{urllib.parse.quote(label, safe='')}"
        return path

    def _exchange(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        """One HTTP exchange on a fresh connection (``Connection: close``).

        Not keep-alive on purpose: a server that writes headers and body in two segments without TCP_NODELAY
        (Python's ``http.server`` by default, which the local server builds on) stalls every reused
        connection for the client's delayed-ACK timeout, ~40 ms; a fresh connection is ACKed at once
        (measured on loopback: p50 56 ms keep-alive vs 14-19 ms per-request connections for one image).
        """
        headers = {"Connection": "close"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn = self._connect()
        try:
            conn.request(method, self._prefix + path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def _once(self, method: str, path: str, body: bytes | None, what: str, arrays: bool = False) -> dict:
        with self._lock:
            self.requests_sent += 1
        try:
            status, payload = self._exchange(method, path, body)
        except (TimeoutError, socket.timeout):
            raise self._timeout(what) from None
        except ConnectionRefusedError:
            raise TransientError(f"no model server at {self.url} (connection refused)")
        except socket.gaierror as exc:
            raise TfaugError(f"cannot resolve the server host in {self.url} ({exc}); check --url.") from None
        except (OSError, http.client.HTTPException) as exc:  # reset / closed mid-response: a restart, retry
            raise TransientError(f"the connection to {self.url} broke during {what} ({type(exc).__name__})",
                                 "check that the model server is running")
        if status >= 400:
            text = _server_error(payload)
            if status >= 500:
                raise TransientError(f"the model server at {self.url} failed on {what} with HTTP {status} ({text})",
                                     "check the server log; retry when it is healthy")
            if status == 404:
                raise TfaugError(f"{what} not found on the server at {self.url}: {text}") from None
            raise TfaugError(f"the server rejected the request for {what} (HTTP {status}): {text}") from None
        try:
            with _collector_paused():
                return loads_arrays(payload) if arrays else fastjson.loads(payload)
        except ValueError:
            raise TfaugError(f"the server at {self.url} answered {what} with invalid JSON; is it a TF Serving "
                             "REST port?") from None

    def _timeout(self, what: str) -> TfaugError:
        return TfaugError(f"the model server at {self.url} did not answer {what} within {self.timeout:g} s; "
                          "raise the timeout or ask for fewer images per request")

    def _call(self, method: str, path: str, payload: dict | None, what: str, arrays: bool = False) -> dict:
        """``arrays``: large numeric arrays of the reply come back as numpy arrays (:func:`loads_arrays`)."""
        body = None if payload is None else fastjson.dumps(payload)
        return with_retries(lambda: self._once(method, path, body, what, arrays), self.retries)

    # ------------------------------------------------------------------------------------------ endpoints

    def status(self, model: str, version, label) -> list[dict]:
        what = model_label(model, version, label)
        reply = self._call("GET", self._path(model, version, label), None, what)
        out = []
        for item in reply.get("model_version_status", []):
            st = item.get("status") or {}
            code = st.get("error_code", "OK")
            error = st.get("error_message") or ("" if code in ("OK", 0) else str(code))
            out.append({"version": int(item.get("version", 0)), "state": str(item.get("state", "UNKNOWN")),
                        "error": error})
        return out

    def metadata(self, model: str, version, label) -> dict:
        what = model_label(model, version, label)
        reply = self._call("GET", self._path(model, version, label) + "/metadata", None, what)
        spec = reply.get("model_spec") or {}
        sigs = ((reply.get("metadata") or {}).get("signature_def") or {}).get("signature_def") or {}
        return {
            "model": spec.get("name", model),
            "version": int(spec["version"]) if str(spec.get("version", "")).isdigit() else None,
            "signature_def": {name: _signature(sig) for name, sig in sorted(sigs.items())},
        }

    def _outputs_of(self, model: str, version, label, signature: str) -> dict:
        key = (model, version, label, signature)
        if key not in self._signatures:
            sigs = self.metadata(model, version, label)["signature_def"]
            if signature not in sigs:
                raise TfaugError(f"{model_label(model, version, label)} has no signature '{signature}'; "
                                 f"it has {sorted(sigs)}.")
            self._signatures[key] = sigs[signature]["outputs"]
        return self._signatures[key]

    def predict(self, model: str, version, label, signature: str, inputs: dict[str, np.ndarray]) -> dict:
        what = model_label(model, version, label)
        payload = {"signature_name": signature, "inputs": {k: _encode(v) for k, v in inputs.items()}}
        reply = self._call("POST", self._path(model, version, label) + ":predict", payload, what, arrays=True)
        if "outputs" not in reply:
            raise TfaugError(f"the server's reply for {what} has no 'outputs'; is it a TF Serving REST port?")
        outputs = reply["outputs"]
        known = _KNOWN_OUTPUTS.get(signature)
        if known is not None and isinstance(outputs, dict) and set(outputs) == set(known):
            specs = known  # tfaug generator signatures: skip the metadata round trip
        elif known is not None and not isinstance(outputs, dict) and len(known) == 1:
            specs = known
        else:
            specs = self._outputs_of(model, version, label, signature)
        if not isinstance(outputs, dict) or (set(outputs) == {"b64"} and len(specs) == 1):
            outputs = {next(iter(specs)): outputs}  # single-output signature: TF Serving drops the name
        return {k: _to_array(v, (specs.get(k) or {}).get("dtype")) for k, v in outputs.items()}


# Output dtypes of tfaug's generator signatures (docs/design.md export contract).
_KNOWN_OUTPUTS = {
    "serving_default": {"images": {"dtype": "uint8"}, "class_id": {"dtype": "int32"}, "seed": {"dtype": "int64"}},
    "generate_png": {"png_bytes": {"dtype": "string"}},
}
_KNOWN_OUTPUTS["truncated"] = _KNOWN_OUTPUTS["serving_default"]


def _signature(sig: dict) -> dict:
    def tensors(group: dict) -> dict:
        out = {}
        for name, info in sorted((group or {}).items()):
            shape = info.get("tensor_shape") or {}
            dims = None if shape.get("unknown_rank") else [
                None if int(d.get("size", -1)) < 0 else int(d["size"]) for d in shape.get("dim", [])]
            out[name] = {"dtype": dtype_name(str(info.get("dtype", "DT_INVALID"))), "shape": dims}
        return out

    return {"inputs": tensors(sig.get("inputs")), "outputs": tensors(sig.get("outputs")),
            "method_name": sig.get("method_name", "")}
