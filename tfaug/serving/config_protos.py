"""Parse TF Serving's text-proto config files (models.config, batching.config, monitoring.config).

``tensorflow-serving-api`` ships ``ModelServerConfig`` but not ``BatchingParameters``
(``tensorflow_serving/servables/tensorflow/session_bundle_config.proto``) nor ``MonitoringConfig``
(``tensorflow_serving/config/monitoring_config.proto``). When the import fails, this module builds those two
messages at runtime from a descriptor that copies the upstream field names and numbers
(``tensorflow.serving`` package), so a misspelt field in ``serving/*.config`` fails to parse here exactly as
it would in ``tensorflow_model_server``.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

from tfaug.errors import TfaugError

__all__ = ["batching_parameters_class", "monitoring_config_class", "model_server_config_class", "parse_config"]

_PACKAGE = "tensorflow.serving"
_FILE = "tfaug/serving/tf_serving_extra_configs.proto"


@functools.lru_cache(maxsize=None)
def _extra_messages() -> dict:
    """``{"BatchingParameters": cls, "MonitoringConfig": cls}`` built from a hand-written descriptor."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    f = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name=_FILE, package=_PACKAGE, syntax="proto3",
                                             dependency=["google/protobuf/wrappers.proto"])

    def add(message, fields):
        m = fdp.message_type.add(name=message)
        for name, number, ftype, type_name, repeated in fields:
            field = m.field.add(name=name, number=number, type=ftype,
                                label=f.LABEL_REPEATED if repeated else f.LABEL_OPTIONAL)
            if type_name:
                field.type_name = type_name

    msg = f.TYPE_MESSAGE
    i64, s = ".google.protobuf.Int64Value", ".google.protobuf.StringValue"
    # session_bundle_config.proto, message BatchingParameters (fields 1-7).
    add("BatchingParameters", [
        ("max_batch_size", 1, msg, i64, False),
        ("batch_timeout_micros", 2, msg, i64, False),
        ("max_enqueued_batches", 3, msg, i64, False),
        ("num_batch_threads", 4, msg, i64, False),
        ("thread_pool_name", 5, msg, s, False),
        ("allowed_batch_sizes", 6, f.TYPE_INT64, None, True),
        ("pad_variable_length_inputs", 7, f.TYPE_BOOL, None, False),
    ])
    # monitoring_config.proto
    add("PrometheusConfig", [("enable", 1, f.TYPE_BOOL, None, False), ("path", 2, f.TYPE_STRING, None, False)])
    add("MonitoringConfig", [("prometheus_config", 1, msg, f".{_PACKAGE}.PrometheusConfig", False)])

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(fdp)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in ("BatchingParameters", "MonitoringConfig")}


def batching_parameters_class():
    """``tensorflow.serving.BatchingParameters`` (the real one when installed, else the built copy)."""
    try:
        from tensorflow_serving.servables.tensorflow import session_bundle_config_pb2

        return session_bundle_config_pb2.BatchingParameters
    except ImportError:
        return _extra_messages()["BatchingParameters"]


def monitoring_config_class():
    """``tensorflow.serving.MonitoringConfig`` (the real one when installed, else the built copy)."""
    try:
        from tensorflow_serving.config import monitoring_config_pb2

        return monitoring_config_pb2.MonitoringConfig
    except ImportError:
        return _extra_messages()["MonitoringConfig"]


def model_server_config_class():
    """``tensorflow.serving.ModelServerConfig`` from tensorflow-serving-api."""
    from tensorflow_serving.config import model_server_config_pb2

    return model_server_config_pb2.ModelServerConfig


def parse_config(path: str | os.PathLike, message_class):
    """Parse the text proto at ``path`` into ``message_class()``.

    Raises:
        TfaugError: the file is missing or is not valid text format for that message (unknown field, bad value).
    """
    from google.protobuf import text_format

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TfaugError(f"cannot read {path} ({exc.strerror or exc}); check the path.") from None
    try:
        return text_format.Parse(text, message_class())
    except text_format.ParseError as exc:
        raise TfaugError(f"{path} is not a valid {message_class.DESCRIPTOR.name} text proto: {exc}") from None
