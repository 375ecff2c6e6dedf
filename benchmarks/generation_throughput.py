"""Images/s and latency of an exported tfaug generator: in-process, through the local server over REST and gRPC.

Not a test. Exports a generator with tfaug's exporter: the run given by ``--run DIR`` (``tfaug.export.export_run``,
its ``last`` checkpoint), or else a cDCGAN trained here for ``--train-steps`` steps on synthetic 28x28x1 images of
10 classes (weights do not change the cost of a forward pass). Then, for each batch size (default 1, 16, 256),
one client sends ``generate`` requests back to back, one at a time, for at most ``--seconds`` and at most
``--requests`` requests after one untimed warm-up request, on three paths:

* ``in-process``: ``tf.saved_model.load(...).signatures["serving_default"]`` called in this process;
* ``REST`` and ``gRPC``: ``tfaug serve`` started in a child process on free 127.0.0.1 ports
  (``benchmarks/serving_load.start_server``), called with ``ServingClient.rest`` / ``ServingClient.grpc``.

It prints images/s and latency p50/p95 per path and batch size, and writes ``--out`` (Markdown, plus the same
name with ``.json``). For concurrent clients use ``benchmarks/serving_load.py``.

    .venv/bin/python benchmarks/generation_throughput.py --quick                  # smoke run
    .venv/bin/python benchmarks/generation_throughput.py --out benchmarks/results/generation_throughput.md
    .venv/bin/python benchmarks/generation_throughput.py --run runs/digits --out /tmp/gen.md
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = Path(__file__).resolve().parent
MODEL_NAME = "bench_generator"


def _args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default=None, help="export this run directory instead of training a tiny cdcgan")
    p.add_argument("--batch-sizes", default="1,16,256", help="images per request (default 1,16,256)")
    p.add_argument("--seconds", type=float, default=10.0, help="time cap per path and batch size (default 10)")
    p.add_argument("--requests", type=int, default=500, help="request cap per path and batch size (default 500)")
    p.add_argument("--paths", default="in-process,REST,gRPC", help="paths to measure (default all three)")
    p.add_argument("--width", type=int, default=32, help="width of the trained cdcgan (default 32)")
    p.add_argument("--train-steps", type=int, default=5,
                   help="steps of the trained cdcgan (default 5; 0 exports it untrained, skipping training)")
    p.add_argument("--quick", action="store_true", help="smoke run: width 8, 2 steps, sizes 1,16, 1 s, 5 requests")
    p.add_argument("--out", default=None, help="write the Markdown report here and its data to the same name .json")
    args = p.parse_args(argv)
    if args.quick:
        args.width, args.seconds, args.requests = 8, 1.0, 5
        args.train_steps = 2 if args.train_steps == 5 else args.train_steps
        args.batch_sizes = "1,16" if args.batch_sizes == "1,16,256" else args.batch_sizes
    args.sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    args.path_list = [s.strip() for s in args.paths.split(",") if s.strip()]
    bad = [s for s in args.path_list if s not in ("in-process", "REST", "gRPC")]
    if bad or not args.path_list:
        p.error(f"--paths takes in-process, REST and gRPC, got {args.paths!r}")
    if args.train_steps < 0:
        p.error("--train-steps must be >= 0")
    if not args.sizes or min(args.sizes) < 1 or not (0 < args.seconds <= 300) or not (1 <= args.requests <= 100_000):
        p.error("bounds: batch sizes >= 1, 0 < --seconds <= 300, 1 <= --requests <= 100000")
    return args


def export(args, base: Path) -> tuple[Path, int]:
    """Export the generator to ``base/MODEL_NAME/1``; returns the version directory and the class count."""
    from tfaug.config import GANConfig
    from tfaug.export.savedmodel import export_generator, export_run, read_metadata

    run = Path(args.run) if args.run else None
    cfg = GANConfig(model="cdcgan", width=args.width, steps=max(1, args.train_steps), batch_size=64,
                    sample_every=0, checkpoint_every=0, seed=0)
    if run is None and args.train_steps == 0:
        import keras

        from tfaug.models.cgan import build_conditional_gan

        keras.utils.set_random_seed(0)
        gan = build_conditional_gan((28, 28, 1), 10, cfg)
        path = export_generator(gan.sampling_network, z_dim=cfg.z_dim, num_classes=10,
                                metadata={"model_kind": "cdcgan"}, name=MODEL_NAME, version=1, base=base)
        return path, 10
    if run is None:
        from tfaug.training.gan_runner import train_gan

        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (200, 28, 28, 1), dtype=np.uint8)
        labels = (np.arange(200) % 10).astype(np.int32)
        run = base.parent / "run"
        train_gan(images, labels, class_names=[str(i) for i in range(10)], cfg=cfg, out=run, progress=False)
    path = export_run(run, MODEL_NAME, version=1, base=base)
    return path, int(read_metadata(path)["num_classes"])


def measure(call, size: int, num_classes: int, seconds: float, max_requests: int) -> dict:
    """Back-to-back requests of ``size`` images through ``call(class_ids, seeds) -> uint8 images``."""
    rng = np.random.default_rng(size)
    call(np.zeros(size, np.int32), np.arange(size, dtype=np.int64))  # warm-up: tracing, connections
    latencies, deadline = [], time.monotonic() + seconds
    t0 = time.perf_counter()
    while len(latencies) < max_requests and time.monotonic() < deadline:
        cls = rng.integers(0, num_classes, size).astype(np.int32)
        seeds = rng.integers(0, 2**31, size).astype(np.int64)
        start = time.perf_counter()
        images = call(cls, seeds)
        latencies.append(time.perf_counter() - start)
        if len(images) != size:
            raise SystemExit(f"asked for {size} images, got {len(images)}")
    elapsed = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1e3
    return {"requests": len(lat), "images_per_s": len(lat) * size / elapsed,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95))}


def table(rows: list[dict]) -> str:
    lines = ["| path | batch | requests | images/s | p50 ms | p95 ms |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['path']} | {r['batch']} | {r['requests']} | {r['images_per_s']:.0f} | "
                     f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = _args(argv)
    sys.path.insert(0, str(HERE))
    import tfaug  # noqa: F401 - before TensorFlow: tfaug's defaults (oneDNN on unless set) apply, as in the server
    import tensorflow as tf

    from serving_load import start_server
    from tfaug.serving.client import ServingClient

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    header = (f"{os.cpu_count()} CPU cores, GPUs: {len(tf.config.list_physical_devices('GPU'))}, "
              f"TF {tf.__version__}; load average {load:.1f} at the start")
    print(header, flush=True)
    rows, proc = [], None
    with tempfile.TemporaryDirectory(prefix="tfaug-genbench-") as tmp:
        base = Path(tmp) / "saved_models"
        path, num_classes = export(args, base)
        print(f"exported {path}", flush=True)

        def run(label: str, call) -> None:
            for size in args.sizes:
                r = {"path": label, "batch": size, **measure(call, size, num_classes, args.seconds, args.requests)}
                rows.append(r)
                print(table([r]).splitlines()[-1], flush=True)

        try:
            if "in-process" in args.path_list:
                fn = tf.saved_model.load(str(path)).signatures["serving_default"]
                run("in-process", lambda c, s: fn(class_id=tf.constant(c), seed=tf.constant(s))["images"].numpy())
            served = [p for p in ("REST", "gRPC") if p in args.path_list]
            if served:
                proc, url, target, log = start_server(base, MODEL_NAME)
                for label in served:
                    client = (ServingClient.rest(url, timeout=120, retries=0) if label == "REST"
                              else ServingClient.grpc(target, timeout=120, retries=0))
                    try:
                        run(label, lambda c, s, client=client: client.generate(MODEL_NAME, c, s))
                    finally:
                        client.close()
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except Exception:
                    proc.kill()
                    proc.wait(timeout=30)
    text = table(rows)
    print(text)
    if args.out:
        from bench_report import command_line, write_report

        command = command_line("generation_throughput.py", argv)
        source = f"the run {args.run}" if args.run else (f"a cdcgan (width {args.width}) trained for "
                                                         f"{args.train_steps} steps on synthetic 28x28x1 images"
                                                         if args.train_steps else
                                                         f"an untrained cdcgan generator (width {args.width})")
        md = (f"# Generation throughput of an exported generator\n\nCommand: `{command}`\n\nMachine: {header}\n\n"
              f"Model: {source}, exported with tfaug's exporter. One client, requests back to back after one "
              f"warm-up request, at most {args.requests} requests or {args.seconds:g} s per row.\n\n{text}\n")
        write_report(args.out, md, {"command": command, "machine": header, "args": vars(args), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
