"""TF Serving's messages without TensorFlow (tfaug.serving.protos): the client never imports TensorFlow, and its
tensors cross the wire to and from TensorFlow's own TensorProto unchanged for every dtype."""
import subprocess
import sys

import numpy as np
import pytest

from tfaug.serving import protos

ARRAYS = {
    "uint8": np.array([[0, 255], [7, 128]], np.uint8),
    "int32": np.array([np.iinfo(np.int32).min, -1, 0, np.iinfo(np.int32).max], np.int32),
    "int64": np.array([[np.iinfo(np.int64).min], [np.iinfo(np.int64).max]], np.int64),
    "float32": np.array([0.1, -0.0, 1e-45, np.inf, 3.4028235e38], np.float32),
    "float16": np.array([0.5, -2.0, 65504.0], np.float16),
    "bool": np.array([True, False, True]),
    "string": np.array([b"\x89PNG\x00", b"", "é".encode()], object),
}


def test_the_grpc_client_does_not_import_tensorflow():
    code = ("import sys, numpy as np; from tfaug.serving.grpc_client import GrpcTransport, to_tensor_proto; "
            "t = GrpcTransport('127.0.0.1:9'); from tfaug.serving.protos import message; "
            "r = message('tensorflow.serving.PredictRequest')(); r.inputs['x'].CopyFrom(to_tensor_proto(np.arange(3))); "
            "back = type(r).FromString(r.SerializeToString()).inputs['x']; "
            "t.close(); print(back.tensor_shape.dim[0].size, len(back.tensor_content), 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["3", "24", "False"]  # 3 int64 values; TensorFlow never loaded


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_tensors_round_trip_through_tensorflows_protos(name):
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    arr = ARRAYS[name]
    # ours -> wire -> TensorFlow's message -> tf.make_ndarray
    theirs = tensor_pb2.TensorProto.FromString(protos.to_tensor_proto(arr).SerializeToString())
    back = tf.make_ndarray(theirs)
    # TensorFlow's make_tensor_proto -> wire -> ours
    ours = protos.message("tensorflow.TensorProto").FromString(tf.make_tensor_proto(arr).SerializeToString())
    mine = protos.from_tensor_proto(ours)
    for got in (back, mine):
        assert got.shape == arr.shape
        if name == "string":
            assert got.tolist() == arr.tolist()
        else:
            assert got.dtype == arr.dtype and got.tobytes() == arr.tobytes()


def test_typed_value_fields_fill_the_shape_like_tensorflow():
    import tensorflow as tf

    cls = protos.message("tensorflow.TensorProto")
    for value, dtype, shape in [(7, tf.int32, [2, 3]), (1.5, tf.float32, [4]), (3, tf.int64, [2]),
                                (True, tf.bool, [3]), (b"ab", tf.string, [2])]:
        proto = tf.make_tensor_proto(value, dtype=dtype, shape=shape)  # one typed value for the whole shape
        got = protos.from_tensor_proto(cls.FromString(proto.SerializeToString()))
        want = tf.make_ndarray(proto)
        assert got.shape == want.shape and got.tolist() == want.tolist()
    assert protos.dtype_enum_name(1) == "DT_FLOAT" and protos.dtype_enum_name(999) == "DT_INVALID"
