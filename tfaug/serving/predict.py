"""Request validation and model calls shared by the REST and gRPC front ends.

:class:`Predictor` resolves model/version/label, checks the inputs against the signature (names, dtype, rank
and known dimensions, equal batch sizes, 1 <= N <= ``max_images_per_request``, ``class_id`` in
``[0, num_classes)`` from the export metadata), and runs the call through the version's
:class:`~tfaug.serving.batching.Batcher` (on its worker thread, merged with concurrent requests).
Inputs arrive as numpy arrays already in the signature dtype (string tensors as object arrays of bytes).

Truncation: a ``serving_default`` request that also carries a ``truncation`` input is run by the version's
``truncated`` signature (:meth:`Predictor.route`), so to a client ``truncation`` is an optional input of the
serving signature (default 1.0, no truncation); psi outside [0, 1] is INVALID_ARGUMENT.
"""
from __future__ import annotations

import time

import numpy as np

from tfaug.serving.batching import Batcher, BatchingOptions, BatchStats
from tfaug.serving.modelstore import LoadedVersion, ModelStore, SignatureInfo
from tfaug.serving.status import ServingError

__all__ = ["Predictor", "dtype_name", "MAX_BATCHERS_PER_VERSION", "TRUNCATION_INPUT", "TRUNCATED_SIGNATURE"]

# One batcher (and worker thread) per signature and non-batch input shape; tfaug exports have one shape per
# signature, so this only bounds the threads a model with free non-batch dimensions could make us start.
MAX_BATCHERS_PER_VERSION = 16
# The optional input of a generator's serving_default, and the signature that takes it (tfaug.export.savedmodel).
TRUNCATION_INPUT = "truncation"
TRUNCATED_SIGNATURE = "truncated"


def dtype_name(dtype) -> str:
    """'int32', 'uint8', 'string' ... for messages."""
    return "string" if np.dtype(dtype) == object else np.dtype(dtype).name


class Predictor:
    """Validates and runs predict requests against a :class:`ModelStore`.

    Args:
        store: the served models.
        options: batching knobs shared with every batcher.
        stats: batching counters.
        max_images_per_request: largest N (rows) one request may ask for.
    """

    def __init__(self, store: ModelStore, options: BatchingOptions, stats: BatchStats, max_images_per_request: int,
                 metrics=None):
        self.store, self.options, self.stats = store, options, stats
        self.max_rows = int(max_images_per_request)
        self.metrics = metrics  # a tfaug.serving.monitoring.ServingMetrics, or None (no monitoring config)

    def resolve(self, name: str, version=None, label=None, signature_name=None) -> tuple[LoadedVersion, SignatureInfo]:
        """(loaded version, signature) for a request, or ServingError NOT_FOUND / INVALID_ARGUMENT."""
        lv = self.store.resolve(name, version, label)
        return lv, lv.signature(signature_name)

    @staticmethod
    def route(lv: LoadedVersion, sig: SignatureInfo, input_names) -> SignatureInfo:
        """The signature that runs a request: ``truncated`` for a ``serving_default`` request carrying a
        ``truncation`` input (when the version has that signature and ``serving_default`` lacks the input),
        else ``sig`` itself."""
        if (sig.name == "serving_default" and TRUNCATION_INPUT in set(input_names)
                and TRUNCATION_INPUT not in sig.inputs and TRUNCATED_SIGNATURE in lv.signatures):
            return lv.signatures[TRUNCATED_SIGNATURE]
        return sig

    def check(self, lv: LoadedVersion, sig: SignatureInfo, inputs: dict) -> int:
        """Validate ``inputs`` (name -> array in the signature dtype); returns the batch size N."""
        expected = set(sig.inputs)
        missing = sorted(expected - set(inputs))
        extra = sorted(set(inputs) - expected)
        if missing or extra:
            what = f"missing input(s) {', '.join(missing)}" if missing else f"unexpected input(s) {', '.join(extra)}"
            optional = (f" (and optionally {TRUNCATION_INPUT})" if sig.name == "serving_default"
                        and TRUNCATED_SIGNATURE in lv.signatures and TRUNCATION_INPUT not in expected else "")
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Request has {what}; signature {sig.name!r} takes exactly: {', '.join(sorted(expected))}{optional}.",
            )
        rows = None
        for key, (dtype, shape) in sig.inputs.items():
            arr = inputs[key]
            if arr.dtype != dtype:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"Input {key!r} must be {dtype_name(dtype)} but {dtype_name(arr.dtype)} was provided.",
                )
            if shape is not None:
                if arr.ndim != len(shape) or any(d is not None and d != a for d, a in zip(shape, arr.shape)):
                    want = "[" + ", ".join("N" if i == 0 and d is None else ("?" if d is None else str(d))
                                           for i, d in enumerate(shape)) + "]"
                    raise ServingError(
                        "INVALID_ARGUMENT", f"Input {key!r} must have shape {want} but has shape {list(arr.shape)}."
                    )
            if arr.ndim == 0:
                raise ServingError("INVALID_ARGUMENT", f"Input {key!r} must have a batch dimension, got a scalar.")
            if rows is None:
                rows = arr.shape[0]
            elif arr.shape[0] != rows:
                raise ServingError(
                    "INVALID_ARGUMENT", f"All inputs must have the same batch size; got {rows} and {arr.shape[0]} ({key!r})."
                )
        rows = int(rows or 0)
        if rows < 1:
            raise ServingError("INVALID_ARGUMENT", "Request asks for 0 rows; send at least one class_id/seed pair.")
        if rows > self.max_rows:
            raise ServingError(
                "INVALID_ARGUMENT",
                f"Request asks for {rows} rows but this server allows at most {self.max_rows} per request; split it.",
            )
        if lv.num_classes is not None and "class_id" in inputs:
            ids = inputs["class_id"]
            bad = ids[(ids < 0) | (ids >= lv.num_classes)]
            if bad.size:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"class_id {int(bad[0])} is out of range; model {lv.name!r} has classes 0..{lv.num_classes - 1}.",
                )
        if lv.num_classes is not None and TRUNCATION_INPUT in inputs:
            psi = inputs[TRUNCATION_INPUT]
            bad = psi[~((psi >= 0) & (psi <= 1))]
            if bad.size:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"truncation {float(bad[0]):g} is out of range; psi must be in [0, 1] (1 = none).",
                )
        return rows

    def run(self, lv: LoadedVersion, sig: SignatureInfo, inputs: dict) -> dict:
        """Validate and run; returns output name -> numpy array (string tensors as object arrays of bytes).
        With ``metrics``, every call is counted with its status and latency."""
        if self.metrics is None:
            return self._run(lv, sig, inputs)
        start, status = time.perf_counter(), "OK"
        try:
            return self._run(lv, sig, inputs)
        except ServingError as exc:
            status = exc.code
            raise
        except Exception:
            status = "INTERNAL"
            raise
        finally:
            self.metrics.observe(lv.name, lv.version, sig.name, time.perf_counter() - start, status)

    def _run(self, lv: LoadedVersion, sig: SignatureInfo, inputs: dict) -> dict:
        rows = self.check(lv, sig, inputs)
        key = (sig.name, tuple((k, inputs[k].shape[1:]) for k in sorted(inputs)))
        with lv.lock:
            batcher = lv.batchers.get(key)
            if batcher is None and not lv.closed and len(lv.batchers) < MAX_BATCHERS_PER_VERSION:
                batcher = lv.batchers[key] = Batcher(
                    _caller(sig), self.options, self.stats, name=f"{lv.name}-{lv.version}-{sig.name}"
                )
        if batcher is None:  # version unloaded after this request resolved it, or too many shape variants
            out = _caller(sig)(inputs)
            self.stats.record(1, rows)
            return out
        return batcher.submit(inputs, rows)


def _caller(sig: SignatureInfo):
    """numpy in -> signature call -> numpy out, with TensorFlow errors turned into ServingError."""

    def call(inputs: dict) -> dict:
        import tensorflow as tf

        feeds = {
            k: tf.constant(v, dtype=tf.string if v.dtype == object else tf.as_dtype(v.dtype)) for k, v in inputs.items()
        }
        try:
            out = sig.fn(**feeds)
        except tf.errors.InvalidArgumentError as exc:
            raise ServingError("INVALID_ARGUMENT", _first_line(exc.message)) from None
        except tf.errors.OpError as exc:
            raise ServingError("INTERNAL", _first_line(exc.message)) from None
        return {k: v.numpy() for k, v in out.items()}

    return call


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else "model call failed"
