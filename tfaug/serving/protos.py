"""TF Serving's protobuf messages and tensors for the gRPC client, without importing TensorFlow (issue 21).

The generated ``tensorflow_serving.apis`` modules import ``tensorflow.core.framework``, which runs
``tensorflow/__init__`` (seconds on an idle machine, 20-30 s on a busy one): that import, not the RPC, made one
``tfaug query --grpc`` take 8 s against 1 s over REST. Here the messages come from the same descriptors, read
(not executed) from the installed ``*_pb2.py`` files: each holds its ``.proto`` file as one serialized
``FileDescriptorProto`` literal, which :func:`message` loads with its dependencies into a private
``DescriptorPool`` (private, so the messages never clash with TensorFlow's own when a process also imports
TensorFlow). The wire format is TF Serving's, field for field.

:func:`to_tensor_proto` / :func:`from_tensor_proto` convert numpy arrays like ``tf.make_tensor_proto`` /
``tf.make_ndarray``: numeric values as little-endian ``tensor_content``, strings as ``string_val``; replies that use
the typed repeated fields (``int_val``, ``float_val`` ...) are read too, a short list filling the shape with its
last value as TensorFlow does.
"""
from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
from pathlib import Path

import numpy as np

from tfaug.errors import TfaugError

__all__ = ["message", "dtype_enum_name", "to_tensor_proto", "from_tensor_proto"]

# numpy dtype name -> TensorFlow DataType name.
_TF_DTYPES = {"float32": "DT_FLOAT", "float64": "DT_DOUBLE", "float16": "DT_HALF", "int8": "DT_INT8",
              "int16": "DT_INT16", "int32": "DT_INT32", "int64": "DT_INT64", "uint8": "DT_UINT8",
              "uint16": "DT_UINT16", "uint32": "DT_UINT32", "uint64": "DT_UINT64", "bool": "DT_BOOL",
              "complex64": "DT_COMPLEX64", "complex128": "DT_COMPLEX128"}
_NP_DTYPES = {v: k for k, v in _TF_DTYPES.items()}
# Typed repeated field of a TensorProto holding each dtype when tensor_content is empty.
_VALUE_FIELDS = {"float32": "float_val", "float64": "double_val", "int32": "int_val", "int16": "int_val",
                 "int8": "int_val", "uint8": "int_val", "uint16": "int_val", "int64": "int64_val",
                 "bool": "bool_val", "uint32": "uint32_val", "uint64": "uint64_val", "float16": "half_val"}


def _serialized_descriptor(proto_file: str) -> bytes:
    """The serialized FileDescriptorProto of ``proto_file`` (e.g. ``tensorflow/core/framework/tensor.proto``)."""
    if proto_file.startswith("google/protobuf/"):
        module = importlib.import_module(proto_file[:-len(".proto")].replace("/", ".") + "_pb2")
        return module.DESCRIPTOR.serialized_pb
    module_file = proto_file[:-len(".proto")] + "_pb2.py"
    # TensorFlow ships XLA's and TSL's protos (xla/..., tsl/...) under tensorflow/compiler/ and tensorflow/.
    candidates = [root / prefix / module_file for root in _roots() for prefix in _PREFIXES]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        raise TfaugError(f"the gRPC client cannot find the generated module of {proto_file}; install "
                         "tensorflow-serving-api (pip install tensorflow-serving-api)")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile" and node.args
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, bytes)):
            return node.args[0].value
    raise TfaugError(f"{path} holds no serialized descriptor; reinstall tensorflow-serving-api")


_PREFIXES = ("", "tensorflow/compiler", "tensorflow")


@functools.lru_cache(maxsize=None)
def _roots() -> tuple[Path, ...]:
    """The folders holding the ``tensorflow_serving`` and ``tensorflow`` packages (found, not imported)."""
    roots = []
    for top in ("tensorflow_serving", "tensorflow"):
        spec = importlib.util.find_spec(top)
        if spec is None or not spec.submodule_search_locations:
            raise TfaugError(f"the gRPC client needs the {top} package (pip install tensorflow-serving-api)")
        root = Path(list(spec.submodule_search_locations)[0]).parent
        if root not in roots:
            roots.append(root)
    return tuple(roots)


@functools.lru_cache(maxsize=None)
def _pool():
    from google.protobuf import descriptor_pb2, descriptor_pool

    pool, added = descriptor_pool.DescriptorPool(), set()

    def add(proto_file: str) -> None:
        if proto_file in added:
            return
        fdp = descriptor_pb2.FileDescriptorProto.FromString(_serialized_descriptor(proto_file))
        for dep in fdp.dependency:
            add(dep)
        pool.Add(fdp)
        added.add(proto_file)

    for f in ("tensorflow_serving/apis/predict.proto", "tensorflow_serving/apis/get_model_metadata.proto",
              "tensorflow_serving/apis/get_model_status.proto"):
        add(f)
    return pool


@functools.lru_cache(maxsize=None)
def message(full_name: str):
    """The message class of ``full_name`` (``tensorflow.serving.PredictRequest``, ``tensorflow.TensorProto`` ...)."""
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(full_name))


def dtype_enum_name(number: int) -> str:
    """TensorFlow ``DataType`` number -> its name (``1`` -> ``DT_FLOAT``)."""
    values = _pool().FindEnumTypeByName("tensorflow.DataType").values_by_number
    return values[int(number)].name if int(number) in values else "DT_INVALID"


def _dtype_number(name: str) -> int:
    return _pool().FindEnumTypeByName("tensorflow.DataType").values_by_name[name].number


def to_tensor_proto(array):
    """numpy array (numeric, bool, or bytes/str) -> ``tensorflow.TensorProto`` (this module's class)."""
    array = np.asarray(array)
    proto = message("tensorflow.TensorProto")()
    for size in array.shape:
        proto.tensor_shape.dim.add().size = int(size)
    if array.dtype.kind in "OSU":
        proto.dtype = _dtype_number("DT_STRING")
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.reshape(-1))
        return proto
    if array.dtype.name not in _TF_DTYPES:
        raise TfaugError(f"cannot send a {array.dtype} array over gRPC; use one of {', '.join(_TF_DTYPES)}")
    proto.dtype = _dtype_number(_TF_DTYPES[array.dtype.name])
    proto.tensor_content = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    return proto


def from_tensor_proto(proto) -> np.ndarray:
    """``TensorProto`` -> numpy (strings as an object array of ``bytes``), as ``tf.make_ndarray`` returns it."""
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    n = int(np.prod(shape, dtype=np.int64))
    name = dtype_enum_name(proto.dtype)
    if name == "DT_STRING":
        values = list(proto.string_val)
        out = np.empty(n, dtype=object)
        out[:] = _filled(values, n, b"")
        return out.reshape(shape)
    if name not in _NP_DTYPES:
        raise TfaugError(f"the server answered a {name} tensor, which this client cannot read")
    dtype = np.dtype(_NP_DTYPES[name])
    if proto.tensor_content:
        return np.frombuffer(proto.tensor_content, dtype.newbyteorder("<")).astype(dtype).reshape(shape)
    field = _VALUE_FIELDS.get(dtype.name)
    if field is None:
        raise TfaugError(f"the server answered a {name} tensor without tensor_content, which this client cannot read")
    values = list(getattr(proto, field))
    if dtype == np.float16:  # half_val holds the float16 bit patterns
        return np.array(_filled(values, n, 0), np.uint16).view(np.float16).reshape(shape)
    return np.array(_filled(values, n, 0), dtype).reshape(shape)


def _filled(values: list, n: int, zero) -> list:
    """``values`` stretched to ``n`` entries with its last value (TensorFlow's rule); zeros when empty."""
    if len(values) >= n:
        return values[:n]
    return values + [values[-1] if values else zero] * (n - len(values))
