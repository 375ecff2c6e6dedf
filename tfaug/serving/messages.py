"""GetModelStatus / GetModelMetadata responses as TF Serving protos, and their REST JSON form.

Both front ends build the same protos (``tensorflow_serving.apis``); REST prints them the way TF Serving's
``http_rest_api_handler`` does: proto field names, int64 as strings, enums by name, default values included,
and the metadata ``Any`` unpacked into ``{"signature_def": {"signature_def": {...}}}``.
"""
from __future__ import annotations

from tfaug.serving.modelstore import LoadedVersion, ModelStore
from tfaug.serving.status import ServingError

__all__ = ["status_response", "metadata_response", "status_json", "metadata_json", "proto_to_dict"]

SIGNATURE_DEF_FIELD = "signature_def"


def proto_to_dict(message) -> dict:
    """A proto as TF Serving's JSON (proto field names, defaults printed)."""
    from google.protobuf import json_format

    return json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )


def status_response(store: ModelStore, name: str, version=None, label=None):
    """GetModelStatusResponse for a model (all versions, or the one ``version``/``label`` names)."""
    from tensorflow_serving.apis import get_model_status_pb2

    response = get_model_status_pb2.GetModelStatusResponse()
    states = get_model_status_pb2.ModelVersionStatus.State
    for number, state, code, message in store.status(name, version, label):
        row = response.model_version_status.add()
        row.version = int(number)
        row.state = states.Value(state)
        row.status.error_code = _error_code(code)
        row.status.error_message = message
    return response


def _error_code(name: str) -> int:
    try:
        from tensorflow.core.protobuf import error_codes_pb2
    except ImportError:  # pragma: no cover - older TF layouts
        from tensorflow.core.lib.core import error_codes_pb2
    return error_codes_pb2.Code.Value(name)


def metadata_response(lv: LoadedVersion, fields=(SIGNATURE_DEF_FIELD,)):
    """GetModelMetadataResponse with the SignatureDefMap (the only metadata field TF Serving supports)."""
    from tensorflow_serving.apis import get_model_metadata_pb2

    fields = list(fields)
    if not fields:
        raise ServingError("INVALID_ARGUMENT", "GetModelMetadataRequest must specify at least one metadata_field.")
    for field in fields:
        if field != SIGNATURE_DEF_FIELD:
            raise ServingError("INVALID_ARGUMENT", f"Metadata field {field!r} is not supported; use 'signature_def'.")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = lv.name
    response.model_spec.version.value = lv.version
    response.metadata[SIGNATURE_DEF_FIELD].Pack(lv.signature_def_map)
    return response


def status_json(store: ModelStore, name: str, version=None, label=None) -> dict:
    """The REST body of ``GET /v1/models/{name}[/versions/{v}|/labels/{l}]``."""
    return proto_to_dict(status_response(store, name, version, label))


def metadata_json(lv: LoadedVersion) -> dict:
    """The REST body of ``GET .../metadata``: model_spec plus the unpacked SignatureDefMap."""
    response = metadata_response(lv)
    return {
        "model_spec": proto_to_dict(response.model_spec),
        "metadata": {SIGNATURE_DEF_FIELD: proto_to_dict(lv.signature_def_map)},
    }
