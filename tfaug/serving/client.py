"""Client for generators and classifiers served by TensorFlow Serving (or ``tfaug serve``), over REST or gRPC.

One Python API for both transports, so code written against a development server runs unchanged against
production TF Serving::

    client = ServingClient.rest("http://127.0.0.1:8501")        # or ServingClient.grpc("127.0.0.1:8500")
    images = client.generate("digits_cdcgan", class_ids=[3] * 8, seeds=range(42, 50))   # uint8 [8, H, W, C]
    calmer = client.generate("digits_cdcgan", [3] * 8, range(42, 50), truncation=0.7)  # the 'truncated' signature

Every method takes ``version=`` (an integer version) or ``label=`` (a version label such as ``"stable"``),
never both. Every call has a timeout; connection failures, gRPC ``UNAVAILABLE`` and HTTP 5xx are retried
with exponential backoff (they are transient: a server still starting, a model still loading), while 4xx /
``INVALID_ARGUMENT`` / ``NOT_FOUND`` are never retried. Every failure raises :class:`~tfaug.errors.TfaugError`
with one sentence saying what happened and how to fix it.

The REST transport uses only the standard library and never imports TensorFlow; the gRPC transport imports
``tensorflow_serving.apis`` (which loads TensorFlow).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from tfaug.errors import TfaugError
from tfaug.utils.images import to_float

__all__ = ["ServingClient", "ServedGenerator", "DEFAULT_REST_URL", "DEFAULT_GRPC_TARGET", "START_HINT"]

DEFAULT_REST_URL = "http://127.0.0.1:8501"
DEFAULT_GRPC_TARGET = "127.0.0.1:8500"
START_HINT = "start one with `tfaug serve --model-base saved_models` (or docker compose in serving/)"
# Backoff before retry k (0-based) is BACKOFF_SECONDS * 2**k: 0.1 s, 0.2 s, 0.4 s ...
BACKOFF_SECONDS = 0.1


class TransientError(Exception):
    """Internal: a failure worth retrying (server down or restarting).

    Args:
        message: what happened, e.g. "no model server at http://127.0.0.1:8501 (connection refused)".
        hint: how to fix it, appended after the attempt count in the final TfaugError.
    """

    def __init__(self, message: str, hint: str = START_HINT):
        super().__init__(message)
        self.message, self.hint = message, hint


def with_retries(call: Callable[[], Any], retries: int, backoff: float = BACKOFF_SECONDS,
                 sleep: Callable[[float], None] = time.sleep) -> Any:
    """Run ``call``; retry up to ``retries`` times on :class:`TransientError`, then raise it as TfaugError.

    Non-transient errors (already TfaugError) propagate at once.
    """
    for attempt in range(int(retries) + 1):
        try:
            return call()
        except TransientError as exc:
            if attempt >= retries:
                tries = f" after {retries + 1} attempts" if retries else ""
                raise TfaugError(f"{exc.message}{tries}; {exc.hint}") from None
            sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def model_label(model: str, version: int | None, label: str | None) -> str:
    """``'name'``, ``'name' version 3`` or ``'name' label 'stable'`` for messages."""
    if version is not None:
        return f"model '{model}' version {version}"
    if label is not None:
        return f"model '{model}' label '{label}'"
    return f"model '{model}'"


def check_route(model: str, version: int | None, label: str | None) -> tuple[str, int | None, str | None]:
    """Validate the model name and the version/label choice; returns ``(model, version, label)``."""
    if not isinstance(model, str) or not model or "/" in model:
        raise TfaugError(f"Model name must be a plain name such as 'digits_cdcgan', got {model!r}.")
    if version is not None and label is not None:
        raise TfaugError("Pass either a version or a label, not both.")
    if version is not None:
        if isinstance(version, bool) or not str(version).isdigit():
            raise TfaugError(f"Model version must be a non-negative integer, got {version!r}.")
        version = int(version)
    if label is not None and (not isinstance(label, str) or not label or "/" in label):
        raise TfaugError(f"Version label must be a plain name such as 'stable', got {label!r}.")
    return model, version, label


def request_arrays(class_ids: Iterable[int], seeds: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """``class_ids`` int32 [N] and ``seeds`` int64 [N] from any integer sequences of equal, non-zero length."""
    try:
        cls = np.asarray(list(class_ids) if not isinstance(class_ids, np.ndarray) else class_ids)
        sds = np.asarray(list(seeds) if not isinstance(seeds, np.ndarray) else seeds)
    except TypeError:
        raise TfaugError("class_ids and seeds must be sequences of integers.") from None
    if cls.ndim != 1 or sds.ndim != 1 or len(cls) != len(sds):
        raise TfaugError(f"class_ids and seeds must be 1-D and of equal length, got shapes {cls.shape} and {sds.shape}.")
    if len(cls) == 0:
        raise TfaugError("Ask for at least one image (class_ids and seeds are empty).")
    for name, arr in (("class_ids", cls), ("seeds", sds)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise TfaugError(f"{name} must be integers, got dtype {arr.dtype}.")
    return cls.astype(np.int32), sds.astype(np.int64)


def truncation_array(truncation, n: int) -> np.ndarray:
    """float32 [n] truncation psi from one number or a sequence of ``n`` numbers, each in [0, 1]."""
    try:
        psi = np.asarray(list(truncation) if not isinstance(truncation, (np.ndarray, int, float, np.number))
                         else truncation, dtype=np.float64)
    except (TypeError, ValueError):
        raise TfaugError("truncation must be a number or a sequence of numbers in [0, 1].") from None
    if psi.ndim == 0:
        psi = np.full(int(n), float(psi))
    if psi.ndim != 1 or len(psi) != int(n):
        raise TfaugError(f"truncation must be one number or {n} numbers (one per image), got shape {psi.shape}.")
    bad = psi[~((psi >= 0) & (psi <= 1))]
    if bad.size:
        raise TfaugError(f"truncation {float(bad[0]):g} is out of range; psi must be in [0, 1] (1 = none).")
    return psi.astype(np.float32)


DTYPE_NAMES = {
    "DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16", "DT_BFLOAT16": "bfloat16",
    "DT_INT8": "int8", "DT_INT16": "int16", "DT_INT32": "int32", "DT_INT64": "int64",
    "DT_UINT8": "uint8", "DT_UINT16": "uint16", "DT_UINT32": "uint32", "DT_UINT64": "uint64",
    "DT_STRING": "string", "DT_BOOL": "bool",
}


def dtype_name(tf_name: str) -> str:
    """``"DT_UINT8"`` -> ``"uint8"`` (unknown names lower-cased without the ``DT_`` prefix)."""
    return DTYPE_NAMES.get(tf_name, tf_name.removeprefix("DT_").lower())


class ServingClient:
    """Talks the TF Serving protocol over one transport (build with :meth:`rest` or :meth:`grpc`).

    Args:
        transport: a ``RestTransport`` or ``GrpcTransport`` (see ``tfaug.serving.rest_client`` /
            ``grpc_client``).
    """

    def __init__(self, transport):
        self.transport = transport

    @classmethod
    def rest(cls, url: str = DEFAULT_REST_URL, timeout: float = 30.0, retries: int = 2) -> "ServingClient":
        """A client for TF Serving's REST API at ``url`` (e.g. ``http://127.0.0.1:8501``)."""
        from tfaug.serving.rest_client import RestTransport

        return cls(RestTransport(url, timeout=timeout, retries=retries))

    @classmethod
    def grpc(cls, target: str = DEFAULT_GRPC_TARGET, timeout: float = 30.0, retries: int = 2,
             max_message_bytes: int = 256 * 1024 * 1024) -> "ServingClient":
        """A client for TF Serving's gRPC API at ``target`` (``host:port``, e.g. ``127.0.0.1:8500``)."""
        from tfaug.serving.grpc_client import GrpcTransport

        return cls(GrpcTransport(target, timeout=timeout, retries=retries, max_message_bytes=max_message_bytes))

    @property
    def address(self) -> str:
        """The server address this client talks to."""
        return self.transport.address

    def close(self) -> None:
        """Release the connection (gRPC channel); the client must not be used afterwards."""
        self.transport.close()

    def __enter__(self) -> "ServingClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ generators

    def generate(self, model: str, class_ids: Sequence[int], seeds: Sequence[int], version: int | None = None,
                 label: str | None = None, truncation=None) -> np.ndarray:
        """Images from a served generator's ``serving_default`` signature (``truncated`` with a truncation).

        Args:
            model: served model name (e.g. ``"digits_cdcgan"``).
            class_ids: int class ids [N], each in ``[0, num_classes)`` (the server rejects others).
            seeds: int seeds [N]; the same (class id, seed) pair always gives the same image.
            version: integer model version (default: what the server serves by default).
            label: version label such as ``"stable"`` (instead of ``version``).
            truncation: None (no truncation), or psi in [0, 1] (one number or one per image); asks the
                ``truncated`` signature, which TF Serving and ``tfaug serve`` both serve.

        Returns:
            uint8 [N, H, W, C] in [0, 255].
        """
        route = check_route(model, version, label)
        cls, sds = request_arrays(class_ids, seeds)
        if truncation is None:
            out = self.transport.predict(*route, "serving_default", {"class_id": cls, "seed": sds})
        else:
            psi = truncation_array(truncation, len(cls))
            out = self.transport.predict(*route, "truncated", {"class_id": cls, "seed": sds, "truncation": psi})
        if "images" not in out:
            raise TfaugError(f"{model_label(*route)} has no 'images' output; is it a tfaug generator export?")
        images = np.asarray(out["images"])
        if images.ndim != 4 or len(images) != len(cls):
            raise TfaugError(f"{model_label(*route)} returned images of shape {images.shape} for {len(cls)} requests.")
        return images.astype(np.uint8, copy=False)

    def generate_png(self, model: str, class_ids: Sequence[int], seeds: Sequence[int], version: int | None = None,
                     label: str | None = None) -> list[bytes]:
        """PNG-encoded images (one ``bytes`` per request) from the ``generate_png`` signature."""
        route = check_route(model, version, label)
        cls, sds = request_arrays(class_ids, seeds)
        out = self.transport.predict(*route, "generate_png", {"class_id": cls, "seed": sds})
        if "png_bytes" not in out:
            raise TfaugError(f"{model_label(*route)} has no 'png_bytes' output; is it a tfaug generator export?")
        return [bytes(b) for b in np.asarray(out["png_bytes"], dtype=object).reshape(-1)]

    # -------------------------------------------------------------------------------------------- general

    def predict(self, model: str, inputs: Mapping[str, np.ndarray], signature_name: str = "serving_default",
                version: int | None = None, label: str | None = None) -> dict[str, np.ndarray]:
        """Run any signature: ``inputs`` name -> array (batch first) -> outputs name -> array.

        Numeric outputs come back with the dtype the signature declares (e.g. float32 probabilities of an
        exported classifier); string outputs as object arrays of ``bytes``.
        """
        route = check_route(model, version, label)
        if not isinstance(inputs, Mapping) or not inputs:
            raise TfaugError("inputs must be a non-empty dict of input name -> array.")
        arrays = {str(k): np.asarray(v) for k, v in inputs.items()}
        return self.transport.predict(*route, str(signature_name), arrays)

    def status(self, model: str, version: int | None = None, label: str | None = None) -> list[dict]:
        """Model version status, ascending by version: ``[{"version": int, "state": "AVAILABLE", "error": ""}]``."""
        return sorted(self.transport.status(*check_route(model, version, label)), key=lambda s: s["version"])

    def metadata(self, model: str, version: int | None = None, label: str | None = None) -> dict:
        """Signature definitions as plain data.

        Returns:
            ``{"model": name, "version": int, "signature_def": {signature: {"inputs": {name: {"dtype": "int32",
            "shape": [None]}}, "outputs": {...}, "method_name": str}}}``; unknown dimensions are None.
        """
        return self.transport.metadata(*check_route(model, version, label))


class ServedGenerator:
    """A served generator behind tfaug's generator contract (``tfaug.synthesis.loader.Generator``).

    ``sample(class_ids, seeds, truncation=None)`` returns float32 [N, H, W, C] in [-1, 1] (the served uint8 images
    scaled back; exact, since export rounds to uint8), asked in requests of at most ``batch_size``. So synthesis,
    metrics and studies can draw from a model server exactly as from an in-process generator.
    ``supports_truncation`` is True when the served model has the ``truncated`` signature.

    Args:
        client: a :class:`ServingClient`.
        model: served model name.
        num_classes: class ids are ``0 .. num_classes - 1`` (TF Serving's metadata does not carry it).
        class_names: one name per class (default ``"0", "1", ...``).
        version / label: model version or label (at most one).
        batch_size: images per request (>= 1).
        kind: model kind reported by ``kind``.
    """

    def __init__(self, client: ServingClient, model: str, num_classes: int, class_names: Sequence[str] | None = None,
                 version: int | None = None, label: str | None = None, batch_size: int = 64, kind: str = "served"):
        self.client, self.route = client, check_route(model, version, label)
        if int(num_classes) < 1 or int(batch_size) < 1:
            raise TfaugError(f"num_classes and batch_size must be >= 1, got {num_classes} and {batch_size}.")
        self.num_classes, self.batch_size, self.kind = int(num_classes), int(batch_size), str(kind)
        names = [str(i) for i in range(self.num_classes)] if class_names is None else [str(n) for n in class_names]
        if len(names) != self.num_classes:
            raise TfaugError(f"Got {len(names)} class names for {self.num_classes} classes.")
        self.class_names = tuple(names)
        model_, version_, label_ = self.route
        sigs = client.metadata(model_, version=version_, label=label_)["signature_def"]
        shape = (sigs.get("serving_default") or {}).get("outputs", {}).get("images", {}).get("shape")
        if not shape or len(shape) != 4 or any(d is None for d in shape[1:]):
            raise TfaugError(f"{model_label(*self.route)} has no images output [N, H, W, C]; is it a tfaug generator?")
        self.image_shape = tuple(int(d) for d in shape[1:])
        self.supports_truncation = "truncated" in sigs

    def sample(self, class_ids, seeds, truncation=None) -> np.ndarray:
        """float32 [N, H, W, C] in [-1, 1] for int ``class_ids`` [N] (in range), int ``seeds`` [N] and an
        optional truncation psi in [0, 1] (one number or one per image)."""
        cls, sds = np.asarray(class_ids), np.asarray(seeds)
        if len(cls) == 0 and len(sds) == 0:
            return np.zeros((0, *self.image_shape), np.float32)
        cls, sds = request_arrays(cls, sds)
        if cls.min() < 0 or cls.max() >= self.num_classes:
            raise TfaugError(f"Class ids must be in 0..{self.num_classes - 1}, got {int(cls.min())}..{int(cls.max())}.")
        psi = None
        if truncation is not None:
            psi = truncation_array(truncation, len(cls))
            if not self.supports_truncation:
                raise TfaugError(f"{model_label(*self.route)} has no 'truncated' signature; re-export it with this "
                                 "tfaug version to sample with a truncation.")
        model, version, label = self.route
        parts = [self.client.generate(model, cls[i : i + self.batch_size], sds[i : i + self.batch_size],
                                      version=version, label=label,
                                      truncation=None if psi is None else psi[i : i + self.batch_size])
                 for i in range(0, len(cls), self.batch_size)]
        return to_float(np.concatenate(parts))

    def __repr__(self) -> str:
        return f"ServedGenerator({model_label(*self.route)} at {self.client.address}, {self.num_classes} classes)"

