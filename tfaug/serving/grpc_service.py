"""TF Serving's gRPC API: ``tensorflow.serving.PredictionService`` and ``tensorflow.serving.ModelService``.

Implemented: ``Predict`` (TensorProto in/out via ``tf.make_ndarray``/``tf.make_tensor_proto``, optional
``output_filter``; a ``serving_default`` request with a ``truncation`` input runs the ``truncated`` signature),
``GetModelMetadata`` (``metadata_field: "signature_def"`` -> SignatureDefMap packed in ``Any``) and
``GetModelStatus``. ``Classify``, ``Regress``, ``MultiInference`` and
``HandleReloadConfigRequest`` answer UNIMPLEMENTED. Request errors abort with the same canonical codes as the
REST API. Hostile input costs little: bytes that are not a valid request message are INVALID_ARGUMENT (not
gRPC's default INTERNAL); a received message is capped at ``max_message_bytes`` (RESOURCE_EXHAUSTED above it);
and a tensor's declared shape is checked (rows <= ``max_images_per_request``, no more elements than the
signature needs or the message carries) before the TensorProto is expanded, so a few bytes declaring 1e8 rows
allocate nothing. Replies may be up to :data:`MAX_MESSAGE_BYTES`.
"""
from __future__ import annotations

import logging
from concurrent import futures

import grpc
import numpy as np
from tensorflow_serving.apis import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc

from tfaug.errors import TfaugError
from tfaug.serving import messages
from tfaug.serving.predict import Predictor, dtype_name
from tfaug.serving.status import ServingError

__all__ = ["GrpcServer", "MAX_MESSAGE_BYTES"]

log = logging.getLogger("tfaug.serving")
MAX_MESSAGE_BYTES = 256 << 20


def _spec(model_spec) -> tuple:
    """(name, version or None, label or None) from a ModelSpec."""
    which = model_spec.WhichOneof("version_choice")
    version = model_spec.version.value if which == "version" else None
    label = model_spec.version_label if which == "version_label" else None
    return model_spec.name, version, label


def _abort(context, exc: Exception):
    if isinstance(exc, ServingError):
        context.abort(getattr(grpc.StatusCode, exc.code), exc.message)
    log.exception("gRPC request failed")
    context.abort(grpc.StatusCode.INTERNAL, f"Internal error: {type(exc).__name__}: {exc}")


def _carried_elements(proto, itemsize: int) -> int:
    """How many values a TensorProto actually carries (``tensor_content`` bytes or its repeated value fields)."""
    if proto.tensor_content:
        return len(proto.tensor_content) // max(itemsize, 1)
    # Every ``*_val`` field is a repeated field (float8_val: bytes, one per value); complex ones count twice.
    return sum(len(value) for field, value in proto.ListFields() if field.name.endswith("_val"))


def _check_declared_shape(proto, dtype, shape, key: str, max_rows: int) -> None:
    """Refuse a TensorProto whose declared shape is bad or too large, from the shape alone (nothing decoded).

    Allowed: rank and known dimensions as ``shape`` (when known), 0 <= rows <= ``max_rows``, and at most as many
    elements as the larger of what the message carries and what ``max_rows`` rows of the signature need (a
    single value may be broadcast, TensorProto style, only within that bound).
    """
    if proto.tensor_shape.unknown_rank:
        raise ServingError("INVALID_ARGUMENT", f"Input {key!r} must have a known shape.")
    dims = [int(d.size) for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise ServingError("INVALID_ARGUMENT", f"Input {key!r} declares a negative dimension {dims}.")
    if dims and dims[0] > max_rows:
        raise ServingError(
            "INVALID_ARGUMENT",
            f"Request asks for {dims[0]} rows but this server allows at most {max_rows} per request; split it.",
        )
    row_elements = 1
    if shape is not None:
        if len(dims) != len(shape) or any(d is not None and d != a for d, a in zip(shape, dims)):
            want = "[" + ", ".join("N" if i == 0 and d is None else ("?" if d is None else str(d))
                                   for i, d in enumerate(shape)) + "]"
            raise ServingError("INVALID_ARGUMENT", f"Input {key!r} must have shape {want} but has shape {dims}.")
        row_elements = int(np.prod([d for d in shape[1:] if d is not None], dtype=np.int64))
    elements = int(np.prod(dims, dtype=object))  # python ints: no overflow for hostile dims
    itemsize = 1 if np.dtype(dtype) == object else np.dtype(dtype).itemsize
    if elements > max(_carried_elements(proto, itemsize), max_rows * row_elements):
        raise ServingError(
            "INVALID_ARGUMENT", f"Input {key!r} declares shape {dims} ({elements} values), more than it carries.",
        )


def _to_array(proto, dtype, shape, key: str, max_rows: int) -> np.ndarray:
    import tensorflow as tf

    want = tf.string if np.dtype(dtype) == object else tf.as_dtype(dtype)
    if proto.dtype != want.as_datatype_enum:
        got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "an unset dtype"
        raise ServingError("INVALID_ARGUMENT", f"Input {key!r} must be {dtype_name(dtype)} but {got} was provided.")
    _check_declared_shape(proto, dtype, shape, key, max_rows)
    try:
        arr = tf.make_ndarray(proto)
    except Exception as exc:  # noqa: BLE001 - any decoding problem is the caller's malformed tensor
        raise ServingError("INVALID_ARGUMENT", f"Input {key!r} is not a valid TensorProto ({exc}).") from None
    return arr.astype(object) if want == tf.string else arr


class _Malformed:
    """Stands in for a request whose bytes did not parse (so the method can answer INVALID_ARGUMENT)."""

    def __init__(self, exc: Exception):
        self.reason = f"{type(exc).__name__}: {exc}".strip()


def _safe_deserializer(deserialize):
    def parse(data: bytes):
        try:
            return deserialize(data)
        except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and friends
            return _Malformed(exc)

    return parse


def _guard(method, message_name: str):
    def handle(request, context):
        if isinstance(request, _Malformed):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"Request bytes are not a valid {message_name} protobuf message ({request.reason}).")
        return method(request, context)

    return handle


class _SafeHandlers(grpc.GenericRpcHandler):
    """The generated handlers of a service, with undecodable requests answered INVALID_ARGUMENT (gRPC's own
    deserialisation failure is INTERNAL, which blames the server for the client's bytes)."""

    def __init__(self, add_to_server, servicer):
        collected = []
        add_to_server(servicer, type("_Collect", (), {"add_generic_rpc_handlers": lambda self, h: collected.extend(h),
                                                      "add_registered_method_handlers": lambda *a: None})())
        self._inner, self._cache = collected, {}

    def service(self, details):
        method = details.method
        if method not in self._cache:
            handler = next((h for h in (inner.service(details) for inner in self._inner) if h is not None), None)
            if handler is not None and handler.unary_unary is not None and handler.request_deserializer is not None:
                name = method.rsplit("/", 1)[-1] + "Request"
                handler = handler._replace(request_deserializer=_safe_deserializer(handler.request_deserializer),
                                           unary_unary=_guard(handler.unary_unary, name))
            self._cache[method] = handler
        return self._cache[method]


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def Predict(self, request, context):  # noqa: N802 - gRPC API
        import tensorflow as tf

        try:
            name, version, label = _spec(request.model_spec)
            lv, asked = self.predictor.resolve(name, version, label, request.model_spec.signature_name or None)
            sig = self.predictor.route(lv, asked, request.inputs.keys())  # serving_default + truncation -> truncated
            rows = self.predictor.max_rows
            inputs = {
                k: (_to_array(v, *sig.inputs[k], k, rows) if k in sig.inputs else np.zeros(0))
                for k, v in request.inputs.items()
            }
            unknown = [k for k in request.output_filter if k not in sig.outputs]
            if unknown:
                raise ServingError(
                    "INVALID_ARGUMENT",
                    f"output_filter names {unknown[0]!r}, which is not an output of signature {sig.name!r} "
                    f"({', '.join(sorted(sig.outputs))}).",
                )
            outputs = self.predictor.run(lv, sig, inputs)
            response = predict_pb2.PredictResponse()
            response.model_spec.name = lv.name
            response.model_spec.version.value = lv.version
            response.model_spec.signature_name = asked.name
            for key in request.output_filter or outputs:
                response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key]))
            return response
        except Exception as exc:  # noqa: BLE001 - every failure becomes a gRPC status, the server lives on
            _abort(context, exc)

    def GetModelMetadata(self, request, context):  # noqa: N802 - gRPC API
        try:
            name, version, label = _spec(request.model_spec)
            return messages.metadata_response(self.predictor.store.resolve(name, version, label), request.metadata_field)
        except Exception as exc:  # noqa: BLE001
            _abort(context, exc)

    def Classify(self, request, context):  # noqa: N802 - gRPC API
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Classify is not supported by this server; use Predict.")

    def Regress(self, request, context):  # noqa: N802 - gRPC API
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "Regress is not supported by this server; use Predict.")

    def MultiInference(self, request, context):  # noqa: N802 - gRPC API
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not supported by this server; use Predict.")


class _ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def GetModelStatus(self, request, context):  # noqa: N802 - gRPC API
        try:
            name, version, label = _spec(request.model_spec)
            return messages.status_response(self.predictor.store, name, version, label)
        except Exception as exc:  # noqa: BLE001
            _abort(context, exc)

    def HandleReloadConfigRequest(self, request, context):  # noqa: N802 - gRPC API
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            "HandleReloadConfigRequest is not supported; the local server re-reads version directories by polling.",
        )


class GrpcServer:
    """The gRPC listener.

    Args:
        predictor: request validation and model calls.
        host: address to bind (127.0.0.1 by default).
        port: TCP port, 0 picks a free one (see :attr:`port`).
        max_workers: request threads.
        max_message_bytes: largest request message received (>= 1); larger ones get RESOURCE_EXHAUSTED.
    """

    def __init__(self, predictor: Predictor, host: str = "127.0.0.1", port: int = 8500, max_workers: int = 16,
                 max_message_bytes: int = MAX_MESSAGE_BYTES):
        self.predictor, self.host, self.requested_port = predictor, host, int(port)
        self.max_workers = int(max_workers)
        self.max_message_bytes = int(max_message_bytes)
        self.port: int | None = None
        self._server = None

    def start(self) -> None:
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="tfaug-grpc"),
                             options=options)
        server.add_generic_rpc_handlers((
            _SafeHandlers(prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server,
                          _PredictionService(self.predictor)),
            _SafeHandlers(model_service_pb2_grpc.add_ModelServiceServicer_to_server, _ModelService(self.predictor)),
        ))
        host = f"[{self.host}]" if ":" in self.host else self.host
        try:
            port = server.add_insecure_port(f"{host}:{self.requested_port}")
        except RuntimeError:
            port = 0
        if not port:
            server.stop(None)
            raise TfaugError(
                f"Cannot listen for gRPC on {self.host}:{self.requested_port} (address in use or not available); "
                "choose another --grpc-port (0 picks a free one)."
            )
        server.start()
        self._server, self.port = server, port

    def stop(self, grace: float = 1.0) -> None:
        if self._server is not None:
            self._server.stop(grace).wait(timeout=grace + 5)  # bounded: shutdown must never hang
            self._server = None
