"""gRPC front end under hostile input (issue 19.2, 19.6): declared shapes checked before decoding, message size
capped, undecodable bytes answered INVALID_ARGUMENT."""
import grpc
import numpy as np
import pytest


def _huge_request(rows):
    """A tiny message declaring ``rows`` rows with one value each (TensorProto broadcasts a single value)."""
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow_serving.apis import predict_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = "toy"
    for key, dtype, field in (("class_id", types_pb2.DT_INT32, "int_val"), ("seed", types_pb2.DT_INT64, "int64_val")):
        proto = tensor_pb2.TensorProto(dtype=dtype)
        proto.tensor_shape.dim.add(size=rows)
        getattr(proto, field).append(1)
        req.inputs[key].CopyFrom(proto)
    return req


def test_declared_shape_is_checked_before_decoding(grpc_stubs, monkeypatch):
    """1e8 declared rows in a message of a few dozen bytes must be refused without expanding the tensor."""
    import tensorflow as tf

    decoded = []
    real = tf.make_ndarray
    monkeypatch.setattr(tf, "make_ndarray", lambda proto: decoded.append(proto.tensor_shape.dim[0].size) or real(proto))
    req = _huge_request(10**8)
    assert req.ByteSize() < 100
    with pytest.raises(grpc.RpcError) as info:
        grpc_stubs.predict.Predict(req, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 1024" in info.value.details()
    assert decoded == []  # nothing was expanded
    for rows, shape_msg in ((-5, "negative"), (3, None)):
        req = _huge_request(rows)
        if shape_msg:
            with pytest.raises(grpc.RpcError) as info:
                grpc_stubs.predict.Predict(req, timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and shape_msg in info.value.details()
        else:  # a small broadcast is still fine
            out = grpc_stubs.predict.Predict(req, timeout=30)
            assert tuple(d.size for d in out.outputs["images"].tensor_shape.dim)[0] == 3


def test_values_beyond_the_declared_shape_are_refused(grpc_stubs, grpc_request):
    import tensorflow as tf

    req = grpc_request("toy", [1, 2], [5, 6])
    proto = tf.make_tensor_proto(np.array([1, 2], np.int32))
    proto.tensor_shape.dim[0].size = 3  # 3 declared, 2 carried
    req.inputs["class_id"].CopyFrom(proto)
    with pytest.raises(grpc.RpcError) as info:
        grpc_stubs.predict.Predict(req, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_garbage_bytes_are_invalid_argument_not_internal(model_server):
    channel = grpc.insecure_channel(model_server.grpc_target)
    try:
        for method in ("/tensorflow.serving.PredictionService/Predict", "/tensorflow.serving.ModelService/GetModelStatus"):
            call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            with pytest.raises(grpc.RpcError) as info:
                call(b"\xff\xff\xff\xff garbage", timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
            assert "not a valid" in info.value.details()
    finally:
        channel.close()


def test_message_size_cap_follows_max_images_per_request(serving_models, grpc_request):
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    from tfaug.serving.server import GRPC_BYTES_PER_IMAGE, GRPC_MESSAGE_OVERHEAD, LocalModelServer, ServerConfig

    base = ServerConfig(model_base=serving_models.base)
    assert base.grpc_max_message_bytes == GRPC_BYTES_PER_IMAGE * 1024 + GRPC_MESSAGE_OVERHEAD
    assert ServerConfig(model_base=serving_models.base, max_images_per_request=2).grpc_max_message_bytes < \
        base.grpc_max_message_bytes
    with LocalModelServer(model_config_file=serving_models.config, rest_port=0, grpc_port=0,
                          max_grpc_message_bytes=64 << 10) as server:
        channel = grpc.insecure_channel(server.grpc_target)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            assert stub.Predict(grpc_request("toy", [1], [5]), timeout=30).outputs["images"].tensor_shape.dim
            import tensorflow as tf

            big = grpc_request("toy", [1], [5])
            big.inputs["padding"].CopyFrom(tf.make_tensor_proto(np.zeros(100 << 10, np.uint8)))
            with pytest.raises(grpc.RpcError) as info:
                stub.Predict(big, timeout=30)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            channel.close()
    with pytest.raises(Exception, match="max_grpc_message_bytes"):
        ServerConfig(model_base=serving_models.base, max_grpc_message_bytes=0)
