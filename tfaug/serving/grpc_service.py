"""TF Serving's gRPC API: ``tensorflow.serving.PredictionService`` and ``tensorflow.serving.ModelService``.

Implemented: ``Predict`` (TensorProto in/out via ``tf.make_ndarray``/``tf.make_tensor_proto``, optional
``output_filter``; a ``serving_default`` request with a ``truncation`` input runs the ``truncated`` signature),
``GetModelMetadata`` (``metadata_field: "signature_def"`` -> SignatureDefMap packed in ``Any``) and
``GetModelStatus``. ``Classify``, ``Regress``, ``MultiInference`` and
``HandleReloadConfigRequest`` answer UNIMPLEMENTED. Request errors abort with the same canonical codes as the
REST API; message size limits are raised to :data:`MAX_MESSAGE_BYTES`.
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


def _to_array(proto, dtype, key: str) -> np.ndarray:
    import tensorflow as tf

    want = tf.string if np.dtype(dtype) == object else tf.as_dtype(dtype)
    if proto.dtype != want.as_datatype_enum:
        got = tf.dtypes.as_dtype(proto.dtype).name if proto.dtype else "an unset dtype"
        raise ServingError("INVALID_ARGUMENT", f"Input {key!r} must be {dtype_name(dtype)} but {got} was provided.")
    try:
        arr = tf.make_ndarray(proto)
    except Exception as exc:  # noqa: BLE001 - any decoding problem is the caller's malformed tensor
        raise ServingError("INVALID_ARGUMENT", f"Input {key!r} is not a valid TensorProto ({exc}).") from None
    return arr.astype(object) if want == tf.string else arr


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, predictor: Predictor):
        self.predictor = predictor

    def Predict(self, request, context):  # noqa: N802 - gRPC API
        import tensorflow as tf

        try:
            name, version, label = _spec(request.model_spec)
            lv, asked = self.predictor.resolve(name, version, label, request.model_spec.signature_name or None)
            sig = self.predictor.route(lv, asked, request.inputs.keys())  # serving_default + truncation -> truncated
            inputs = {
                k: (_to_array(v, sig.inputs[k][0], k) if k in sig.inputs else np.zeros(0)) for k, v in request.inputs.items()
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
    """

    def __init__(self, predictor: Predictor, host: str = "127.0.0.1", port: int = 8500, max_workers: int = 16):
        self.predictor, self.host, self.requested_port = predictor, host, int(port)
        self.max_workers = int(max_workers)
        self.port: int | None = None
        self._server = None

    def start(self) -> None:
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="tfaug-grpc"),
                             options=options)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_PredictionService(self.predictor), server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelService(self.predictor), server)
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
