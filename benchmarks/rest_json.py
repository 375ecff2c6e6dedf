"""Cost of one REST predict reply of N generated images: standard-library JSON, tfaug.serving.fastjson (orjson,
nested lists) and tfaug.serving.jsonarrays (numbers read straight into numpy), and the gRPC equivalent.

Not a test. Times, for an ``images`` output of N x 28x28x1 (``--dtype`` uint8, the ``generate`` signature's,
or float32) plus ``class_id`` and ``seed``, in TF Serving's columnar format: the server's encoding
(``predict_response`` + dumps; orjson printing the arrays, and tfaug's uint8 lane), the client's parsing of the
reply and its conversion to numpy; with ``--grpc`` also the gRPC server's ``tf.make_tensor_proto`` + serialisation
and the client's parse + ``from_tensor_proto`` (this imports TensorFlow). Each figure is the best of ``--repeats``
runs, in one process.

    .venv/bin/python benchmarks/rest_json.py --n 256 [--dtype float32] [--grpc]
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import time

import numpy as np


def best_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=256, help="images per reply (default 256)")
    p.add_argument("--dtype", choices=["uint8", "float32"], default="uint8", help="images dtype (default uint8)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--grpc", action="store_true", help="also time the gRPC tensor path (imports TensorFlow)")
    args = p.parse_args(argv)
    from tfaug.serving import fastjson
    from tfaug.serving.jsonarrays import loads_arrays
    from tfaug.serving.jsontensor import predict_response
    from tfaug.serving.rest_client import _to_array

    rng = np.random.default_rng(0)
    images = (rng.integers(0, 256, (args.n, 28, 28, 1), dtype=np.uint8) if args.dtype == "uint8"
              else rng.random((args.n, 28, 28, 1), dtype=np.float32))
    out = {"images": images, "class_id": np.zeros(args.n, np.int32), "seed": np.arange(args.n, dtype=np.int64)}
    slow_body = json.dumps(predict_response(out, "columnar"), separators=(",", ":")).encode()
    fast_body = fastjson.dumps(predict_response(out, "columnar", fast=True))
    lists, arrays = fastjson.loads(fast_body)["outputs"]["images"], loads_arrays(fast_body)["outputs"]["images"]
    assert isinstance(arrays, np.ndarray) and _to_array(arrays, args.dtype).tobytes() == images.tobytes()
    r = args.repeats
    import orjson

    plain = {"outputs": {k: v for k, v in out.items()}}  # orjson printing every array itself (before issue 21's
    assert orjson.dumps(plain, option=orjson.OPT_SERIALIZE_NUMPY) == fast_body  # uint8 lane): the same bytes
    rows = [
        ("server encode",
         best_ms(lambda: json.dumps(predict_response(out, "columnar"), separators=(",", ":")).encode(), r),
         best_ms(lambda: orjson.dumps(plain, option=orjson.OPT_SERIALIZE_NUMPY), r), None),
        ("server encode, tfaug (uint8 lane of fastjson)", None,
         best_ms(lambda: fastjson.dumps(predict_response(out, "columnar", fast=True)), r), None),
        ("client parse", best_ms(lambda: json.loads(slow_body), r), best_ms(lambda: fastjson.loads(fast_body), r),
         best_ms(lambda: loads_arrays(fast_body), r)),
        ("client parse, collector paused", None, best_ms(lambda: _paused(fastjson.loads, fast_body), r),
         best_ms(lambda: _paused(loads_arrays, fast_body), r)),
        ("client -> numpy", best_ms(lambda: _to_array(lists, args.dtype), r),
         best_ms(lambda: _to_array(lists, args.dtype), r),
         best_ms(lambda: _to_array(arrays, args.dtype), r)),
    ]
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{args.n} images of 28x28x1 {args.dtype}, reply {len(slow_body):,} bytes (json) / {len(fast_body):,} bytes "
          f"(orjson); best of {r}; load average {load}")
    print("| step | json (ms) | orjson, nested lists (ms) | orjson + jsonarrays (ms) |\n|---|---:|---:|---:|")
    for name, *cells in rows:
        print(f"| {name} | " + " | ".join("-" if c is None else f"{c:.1f}" for c in cells) + " |")
    if args.grpc:
        _grpc(out, r)
    return 0


def _paused(fn, body):
    gc.disable()
    try:
        return fn(body)
    finally:
        gc.enable()


def _grpc(out: dict, r: int) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2  # the server's classes (tfaug.serving.grpc_service)

    from tfaug.serving.protos import from_tensor_proto, message

    response = message("tensorflow.serving.PredictResponse")  # the client's (tfaug.serving.grpc_client)

    def encode():
        reply = predict_pb2.PredictResponse()
        for k, v in out.items():
            reply.outputs[k].CopyFrom(tf.make_tensor_proto(v))
        return reply.SerializeToString()

    wire = encode()

    def decode():
        reply = response()
        reply.ParseFromString(wire)
        return {k: from_tensor_proto(v) for k, v in reply.outputs.items()}

    assert decode()["images"].tobytes() == out["images"].tobytes()
    print(f"gRPC reply {len(wire):,} bytes: server make_tensor_proto + serialise {best_ms(encode, r):.2f} ms, "
          f"client parse + from_tensor_proto {best_ms(decode, r):.2f} ms")


if __name__ == "__main__":
    raise SystemExit(main())
