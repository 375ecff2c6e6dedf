"""gRPC transport for :class:`tfaug.serving.client.ServingClient` (TF Serving's PredictionService/ModelService).

Calls TF Serving's ``Predict`` with ``TensorProto`` inputs, ``GetModelMetadata`` (``signature_def``) and
``GetModelStatus``, with the messages of :mod:`tfaug.serving.protos` (TF Serving's own descriptors, loaded
without importing TensorFlow: that import was most of a ``tfaug query --grpc`` call). The channel raises gRPC's
4 MiB message limit (a 256-image request of 64x64 RGB is 3 MiB already) and every call has a deadline.
"""
from __future__ import annotations

import threading

import numpy as np

from tfaug.errors import TfaugError
from tfaug.serving.client import TransientError, dtype_name, model_label, with_retries
from tfaug.serving.protos import dtype_enum_name, from_tensor_proto, message, to_tensor_proto

__all__ = ["GrpcTransport", "to_tensor_proto", "from_tensor_proto"]
_PREDICTION, _MODELS = "/tensorflow.serving.PredictionService/", "/tensorflow.serving.ModelService/"


class GrpcTransport:
    """gRPC transport over one insecure channel (thread-safe; call :meth:`close` when done)."""

    def __init__(self, target: str, timeout: float = 30.0, retries: int = 2, max_message_bytes: int = 256 * 1024**2):
        import grpc

        target = str(target)
        if "://" in target or ":" not in target:
            raise TfaugError(f"gRPC target must be host:port such as 127.0.0.1:8500, got {target!r}.")
        if not float(timeout) > 0 or int(retries) < 0:
            raise TfaugError(f"timeout must be > 0 and retries >= 0, got {timeout} and {retries}.")
        self.target, self.timeout, self.retries = target, float(timeout), int(retries)
        options = [("grpc.max_send_message_length", int(max_message_bytes)),
                   ("grpc.max_receive_message_length", int(max_message_bytes))]
        self._grpc = grpc
        self._channel = grpc.insecure_channel(target, options=options)
        self._predict_rpc = self._method(_PREDICTION + "Predict", "PredictResponse")
        self._metadata_rpc = self._method(_PREDICTION + "GetModelMetadata", "GetModelMetadataResponse")
        self._status_rpc = self._method(_MODELS + "GetModelStatus", "GetModelStatusResponse")
        self._lock = threading.Lock()
        self.requests_sent = 0  # every RPC attempt, retries included

    def _method(self, path: str, reply: str):
        return self._channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=message(f"tensorflow.serving.{reply}").FromString)

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
        what = model_label(model, version, label)
        request = message("tensorflow.serving.PredictRequest")()
        self._spec(request.model_spec, model, version, label, signature)
        for name, array in inputs.items():
            request.inputs[name].CopyFrom(to_tensor_proto(array))
        reply = self._call(self._predict_rpc, request, what)
        return {name: from_tensor_proto(proto) for name, proto in reply.outputs.items()}

    def status(self, model: str, version, label) -> list[dict]:
        what = model_label(model, version, label)
        request = message("tensorflow.serving.GetModelStatusRequest")()
        self._spec(request.model_spec, model, version, label)
        reply = self._call(self._status_rpc, request, what)
        states = message("tensorflow.serving.ModelVersionStatus").DESCRIPTOR.enum_types_by_name["State"]
        out = []
        for item in reply.model_version_status:
            code = int(item.status.error_code)
            error = item.status.error_message or ("" if code == 0 else f"error code {code}")
            state = states.values_by_number.get(int(item.state))
            out.append({"version": int(item.version), "state": state.name if state else str(item.state),
                        "error": error})
        return out

    def metadata(self, model: str, version, label) -> dict:
        what = model_label(model, version, label)
        request = message("tensorflow.serving.GetModelMetadataRequest")(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, version, label)
        reply = self._call(self._metadata_rpc, request, what)
        sig_map = message("tensorflow.serving.SignatureDefMap")()
        if "signature_def" in reply.metadata:
            packed = reply.metadata["signature_def"]
            if packed.type_url.rsplit("/", 1)[-1] != sig_map.DESCRIPTOR.full_name:
                raise TfaugError(f"the server's metadata for {what} is not a SignatureDefMap; is it TF Serving?")
            sig_map.ParseFromString(packed.value)
        return {
            "model": reply.model_spec.name or model,
            "version": int(reply.model_spec.version.value) if reply.model_spec.HasField("version") else None,
            "signature_def": {name: _signature(sig) for name, sig in sorted(sig_map.signature_def.items())},
        }


def _signature(sig) -> dict:
    def tensors(group) -> dict:
        out = {}
        for name, info in sorted(group.items()):
            dims = None if info.tensor_shape.unknown_rank else [
                None if d.size < 0 else int(d.size) for d in info.tensor_shape.dim]
            out[name] = {"dtype": dtype_name(dtype_enum_name(info.dtype)), "shape": dims}
        return out

    return {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs), "method_name": sig.method_name}
