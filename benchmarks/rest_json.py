"""Cost of one REST predict reply of N generated images, standard-library JSON vs tfaug.serving.fastjson (orjson).

Not a test. Times, for a uint8 [N, 28, 28, 1] ``images`` output (plus ``class_id`` and ``seed``) in TF Serving's
columnar format: the server's encoding (``predict_response`` + dumps), the client's parsing (loads) and its
conversion of the nested lists to a numpy array, each the best of ``--repeats`` runs, in one process.

    .venv/bin/python benchmarks/rest_json.py --n 256
"""
from __future__ import annotations

import argparse
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
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    from tfaug.serving import fastjson
    from tfaug.serving.jsontensor import predict_response
    from tfaug.serving.rest_client import _to_array

    rng = np.random.default_rng(0)
    out = {"images": rng.integers(0, 256, (args.n, 28, 28, 1), dtype=np.uint8),
           "class_id": np.zeros(args.n, np.int32), "seed": np.arange(args.n, dtype=np.int64)}
    slow_body = json.dumps(predict_response(out, "columnar"), separators=(",", ":")).encode()
    fast_body = fastjson.dumps(predict_response(out, "columnar", fast=True))
    doc = fastjson.loads(fast_body)
    rows = [
        ("server encode", best_ms(lambda: json.dumps(predict_response(out, "columnar"), separators=(",", ":")).encode(),
                                  args.repeats),
         best_ms(lambda: fastjson.dumps(predict_response(out, "columnar", fast=True)), args.repeats)),
        ("client parse", best_ms(lambda: json.loads(slow_body), args.repeats),
         best_ms(lambda: fastjson.loads(fast_body), args.repeats)),
        ("client nested lists -> numpy", best_ms(lambda: _to_array(doc["outputs"]["images"], "uint8"), args.repeats),
         best_ms(lambda: _to_array(doc["outputs"]["images"], "uint8"), args.repeats)),
    ]
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"{args.n} images of 28x28x1, reply {len(slow_body):,} bytes (json) / {len(fast_body):,} bytes (orjson); "
          f"best of {args.repeats}; load average {load}")
    print("| step | json (ms) | orjson (ms) |\n|---|---:|---:|")
    for name, a, b in rows:
        print(f"| {name} | {a:.1f} | {b:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
