"""gRPC transport for :class:`tfaug.serving.client.ServingClient` (TF Serving's PredictionService/ModelService).

Uses the ``tensorflow_serving.apis`` stubs: ``Predict`` with ``TensorProto`` inputs, ``GetModelMetadata``
(``signature_def``) and ``GetModelStatus``. The channel raises gRPC's 4 MiB message limit (a 256-image
request of 64x64 RGB is 3 MiB already) and every call has a deadline. Importing this module loads TensorFlow
(the serving protos depend on TensorFlow's).
"""
from __future__ import annotations

import threading

import numpy as np

from tfaug.errors import TfaugError
from tfaug.serving.client import TransientError, dtype_name, model_label, with_retries

__all__ = ["GrpcTransport", "to_tensor_proto", "from_tensor_proto"]


def to_tensor_proto(array: np.ndarray):
    """numpy array (numeric, bool, or bytes/str) -> ``tensorflow.TensorProto``."""
    import tensorflow as tf

    array = np.asarray(array)
    if array.dtype.kind == "U":
        array = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array)
    return tf.make_tensor_proto(array)


def from_tensor_proto(proto) -> np.ndarray:
    """``TensorProto`` -> numpy (strings as an object array of ``bytes``)."""
    import tensorflow as tf

    return tf.make_ndarray(proto)


class GrpcTransport:
    """gRPC transport over one insecure channel (thread-safe; call :meth:`close` when done)."""

    def __init__(self, target: str, timeout: float = 30.0, retries: int = 2, max_message_bytes: int = 256 * 1024**2):
        import grpc

        target = str(target)
        if "://" in target or ":" not in target:
            raise TfaugError(f"gRPC target must be host:port such as 127.0.0.1:8500, got {target!r}.")
        if not float(timeout) > 0 or int(retries) < 0:
            raise TfaugError(f"timeout must be > 0 and retries >= 0, got {timeout} and {retries}.")
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.target, self.timeout, self.retries = target, float(timeout), int(retries)
        options = [("grpc.max_send_message_length", int(max_message_bytes)),
                   ("grpc.max_receive_message_length", int(max_message_bytes))]
        self._grpc = grpc
        self._channel = grpc.insecure_channel(target, options=options)
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)
        self._lock = threading.Lock()
        self.requests_sent = 0  # every RPC attempt, retries included

    @property
    def address(self) -> str:
        return self.target

    def close(self) -> None:
        self._channel.close()

    def _spec(self, spec, model: str, version, label, signature: str | None = None) -> None:
        spec.name = model
        if version is not None:
            spec.version.value = int(version)
        elif label is not None:
            spec.version_label = label
        if signature is not None:
            spec.signature_name = signature

    def _once(self, method, request, what: str):
        grpc = self._grpc
        with self._lock:
            self.requests_sent += 1
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            code, details = exc.code(), " ".join(str(exc.details() or "").split())[:500]
            if code == grpc.StatusCode.UNAVAILABLE:
                why = "connection refused" if "connection refused" in details.lower() else f"UNAVAILABLE: {details}"
                raise TransientError(f"no model server at {self.target} ({why})")
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise TfaugError(f"the model server at {self.target} did not answer {what} within {self.timeout:g} s;"
                                 " raise the timeout or ask for fewer images per request") from None
            if code == grpc.StatusCode.NOT_FOUND:
                raise TfaugError(f"{what} not found on the server at {self.target}: {details}") from None
            if code == grpc.StatusCode.UNIMPLEMENTED:
                raise TfaugError(f"the server at {self.target} does not implement this call for {what}: "
                                 f"{details}") from None
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise TfaugError(f"the request or reply for {what} is too large for the server at {self.target} "
                                 f"({details}); ask for fewer images per request") from None
            raise TfaugError(f"the server rejected the request for {what} ({code.name}): {details}") from None

    def _call(self, method, request, what: str):
        return with_retries(lambda: self._once(method, request, what), self.retries)

    # ------------------------------------------------------------------------------------------ endpoints

    def predict(self, model: str, version, label, signature: str, inputs: dict[str, np.ndarray]) -> dict:
        from tensorflow_serving.apis import predict_pb2

        what = model_label(model, version, label)
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, version, label, signature)
        for name, array in inputs.items():
            request.inputs[name].CopyFrom(to_tensor_proto(array))
        reply = self._call(self._predict.Predict, request, what)
        return {name: from_tensor_proto(proto) for name, proto in reply.outputs.items()}

    def status(self, model: str, version, label) -> list[dict]:
        from tensorflow_serving.apis import get_model_status_pb2

        what = model_label(model, version, label)
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, version, label)
        reply = self._call(self._models.GetModelStatus, request, what)
        states = get_model_status_pb2.ModelVersionStatus.State
        out = []
        for item in reply.model_version_status:
            code = int(item.status.error_code)
            error = item.status.error_message or ("" if code == 0 else f"error code {code}")
            out.append({"version": int(item.version), "state": states.Name(item.state), "error": error})
        return out

    def metadata(self, model: str, version, label) -> dict:
        from tensorflow_serving.apis import get_model_metadata_pb2

        what = model_label(model, version, label)
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, version, label)
        reply = self._call(self._predict.GetModelMetadata, request, what)
        sig_map = get_model_metadata_pb2.SignatureDefMap()
        if "signature_def" in reply.metadata and not reply.metadata["signature_def"].Unpack(sig_map):
            raise TfaugError(f"the server's metadata for {what} is not a SignatureDefMap; is it TF Serving?")
        return {
            "model": reply.model_spec.name or model,
            "version": int(reply.model_spec.version.value) if reply.model_spec.HasField("version") else None,
            "signature_def": {name: _signature(sig) for name, sig in sorted(sig_map.signature_def.items())},
        }


def _signature(sig) -> dict:
    from tensorflow.core.framework import types_pb2

    def tensors(group) -> dict:
        out = {}
        for name, info in sorted(group.items()):
            dims = None if info.tensor_shape.unknown_rank else [
                None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim]
            out[name] = {"dtype": dtype_name(types_pb2.DataType.Name(info.dtype)), "shape": dims}
        return out

    return {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs), "method_name": sig.method_name}
