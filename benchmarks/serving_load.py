"""Load benchmark of a served generator: N concurrent clients for T seconds over REST and gRPC.

Not a test. By default it exports an untrained cDCGAN generator (28x28x1, 10 classes: the MNIST size; weights do
not change the cost of a forward pass) to a temporary ``saved_models`` directory, starts ``tfaug serve`` on it
in a child process on free loopback ports, and for each transport and request size (1 and 16 images for
``--seconds`` each, then 256 images for a few requests) runs ``--clients`` threads that send ``generate``
requests back to back. It prints requests/s, images/s, p50/p90/p99 latency and the error count per phase,
then the in-process throughput of the same SavedModel (``tf.saved_model.load``, same client threads and
request sizes) and the ratio served/in-process.

Bounded: ``--seconds`` per phase (default 10), ``--max-requests`` per phase, loopback only unless
``--allow-remote``. ``--url``/``--grpc`` target a running server instead (with ``--model``).

    .venv/bin/python benchmarks/serving_load.py --seconds 10
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

IMAGE_SHAPE, NUM_CLASSES, Z_DIM = (28, 28, 1), 10, 64
BIG = 256


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def export_model(base: Path, name: str) -> Path:
    """Export an untrained cDCGAN generator (28x28x1, 10 classes) to ``base/name/1``."""
    import keras

    from tfaug.export.savedmodel import export_generator
    from tfaug.models.networks.generators import build_generator

    keras.utils.set_random_seed(0)
    model = build_generator(IMAGE_SHAPE, NUM_CLASSES, z_dim=Z_DIM)
    return export_generator(model, z_dim=Z_DIM, num_classes=NUM_CLASSES, metadata={"model_kind": "cdcgan"},
                            name=name, base=base, version=1)


def start_server(model_base: Path, name: str, timeout: float = 180.0, extra: list | None = None):
    """``tfaug serve`` (with ``extra`` arguments) in a child process; returns ``(process, rest_url, grpc_target)``
    once the model is AVAILABLE."""
    from tfaug.errors import TfaugError
    from tfaug.serving.client import ServingClient

    rest_port, grpc_port = _free_port(), _free_port()
    log = tempfile.NamedTemporaryFile(prefix="serving_load-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "tfaug", "serve", "--model-base", str(model_base),
                             "--rest-port", str(rest_port), "--grpc-port", str(grpc_port), *(extra or [])],
                            stdout=log, stderr=subprocess.STDOUT)
    url, target = f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"
    client = ServingClient.rest(url, timeout=5, retries=0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"tfaug serve exited with {proc.returncode}; see {log.name}")
        try:
            if any(s["state"] == "AVAILABLE" for s in client.status(name)):
                return proc, url, target, log.name
        except TfaugError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit(f"tfaug serve did not make {name} available within {timeout:.0f} s; see {log.name}")


def run_phase(make_client, model: str, size: int, clients: int, seconds: float, max_requests: int) -> dict:
    """``clients`` threads sending ``generate`` requests of ``size`` images until time or count runs out."""
    from tfaug.errors import TfaugError

    lock, latencies, errors, sent = threading.Lock(), [], [], [0]
    deadline = [0.0]
    warm_gate, start_gate = threading.Barrier(clients + 1), threading.Barrier(clients + 1)

    def worker(k: int):
        client = make_client()
        rng = np.random.default_rng(k)
        try:  # warm-up, untimed: connection set-up, first-call tracing, server-side caches
            client(model, np.zeros(size, np.int32), np.arange(size, dtype=np.int64))
        except TfaugError as exc:
            with lock:
                errors.append(f"warm-up: {exc}")
        warm_gate.wait()
        start_gate.wait()
        while time.monotonic() < deadline[0]:
            with lock:
                if sent[0] >= max_requests:
                    break
                sent[0] += 1
            cls = rng.integers(0, NUM_CLASSES, size).astype(np.int32)
            seeds = rng.integers(0, 2**31, size).astype(np.int64)
            t0 = time.perf_counter()
            try:
                images = client(model, cls, seeds)
                assert len(images) == size
                with lock:
                    latencies.append(time.perf_counter() - t0)
            except (TfaugError, AssertionError) as exc:
                with lock:
                    errors.append(str(exc) or type(exc).__name__)

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    warm_gate.wait()
    deadline[0] = time.monotonic() + seconds
    t0 = time.perf_counter()
    start_gate.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lat = np.asarray(latencies) * 1000.0
    p = np.percentile(lat, [50, 90, 99]) if len(lat) else [float("nan")] * 3
    return {"requests": len(lat), "seconds": elapsed, "rps": len(lat) / elapsed, "ips": len(lat) * size / elapsed,
            "p50": p[0], "p90": p[1], "p99": p[2], "errors": len(errors), "first_error": errors[0] if errors else ""}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=4, help="concurrent client threads (default 4)")
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per phase (default 10)")
    ap.add_argument("--max-requests", type=int, default=5000, help="cap on requests per phase (default 5000)")
    ap.add_argument("--big-requests", type=int, default=8, help=f"requests in the size-{BIG} phase (default 8)")
    ap.add_argument("--sizes", default="1,16", help="timed request sizes (default 1,16)")
    ap.add_argument("--url", help="benchmark a running REST server instead of starting one (needs --model)")
    ap.add_argument("--grpc", help="benchmark a running gRPC server instead of starting one (needs --model)")
    ap.add_argument("--model", default="bench_cdcgan", help="served model name (default bench_cdcgan)")
    ap.add_argument("--serve-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for the started `tfaug serve`, repeatable (e.g. --serve-arg=--batch-timeout-ms=0)")
    ap.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --url/--grpc host")
    args = ap.parse_args(argv)
    if not (1 <= args.clients <= 64 and 0 < args.seconds <= 120 and 1 <= args.max_requests <= 100_000):
        ap.error("bounds: 1 <= --clients <= 64, 0 < --seconds <= 120, 1 <= --max-requests <= 100000")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    hosts = [urllib.parse.urlsplit(args.url).hostname or ""] if args.url else []
    hosts += [args.grpc.rsplit(":", 1)[0]] if args.grpc else []
    if not args.allow_remote and not all(_is_loopback(h) for h in hosts):
        ap.error(f"refusing non-loopback host(s) {hosts}; pass --allow-remote to load-test another machine")

    import tensorflow as tf

    from tfaug.serving.client import ServingClient

    print(f"machine: {os.cpu_count()} CPU cores, GPUs: {len(tf.config.list_physical_devices('GPU'))}, "
          f"TF {tf.__version__}; {args.clients} clients, {args.seconds:g} s per phase, "
          f"max {args.max_requests} requests per phase, {args.big_requests} requests of {BIG}"
          + (f"; serve {' '.join(args.serve_arg)}" if args.serve_arg else ""), flush=True)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?") \
        if os.path.exists("/proc/cpuinfo") else "?"
    print(f"cpu: {cpu}; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    proc, log, tmp = None, None, tempfile.TemporaryDirectory(prefix="serving_load-")
    try:
        export = None
        if args.url or args.grpc:
            url, target = args.url, args.grpc
        else:
            export = export_model(Path(tmp.name), args.model)
            print(f"exported {export}; starting tfaug serve ...", flush=True)
            proc, url, target, log = start_server(Path(tmp.name), args.model, extra=args.serve_arg)
        transports = [("REST", url, ServingClient.rest), ("gRPC", target, ServingClient.grpc)]
        rows = []
        print(f"{'transport':9} {'size':>4} {'requests':>8} {'req/s':>8} {'images/s':>9} {'p50 ms':>8} "
              f"{'p90 ms':>8} {'p99 ms':>8} {'errors':>6}", flush=True)
        for label, address, factory in transports:
            if not address:
                continue
            for size, cap in [(s, args.max_requests) for s in sizes] + [(BIG, args.big_requests)]:
                def make_client(factory=factory, address=address):
                    return factory(address, timeout=120, retries=0).generate
                r = run_phase(make_client, args.model, size, args.clients, args.seconds, cap)
                rows.append((label, size, r))
                print(f"{label:9} {size:>4} {r['requests']:>8} {r['rps']:>8.1f} {r['ips']:>9.0f} {r['p50']:>8.1f} "
                      f"{r['p90']:>8.1f} {r['p99']:>8.1f} {r['errors']:>6}" + (f"  first error: {r['first_error']}"
                                                                             if r["errors"] else ""), flush=True)
        if export is None:
            return 0
        if proc is not None:  # in-process numbers must not share the CPU with an idle server's pollers
            proc.terminate()
            proc.wait(timeout=30)
            proc = None
        fn = tf.saved_model.load(str(export)).signatures["serving_default"]

        def in_process():
            def call(model, cls, seeds):
                return fn(class_id=tf.constant(cls), seed=tf.constant(seeds))["images"].numpy()
            return call

        print(f"\nin-process tf.saved_model.load, {args.clients} threads (same request sizes):")
        local = {}
        for size, cap in [(s, args.max_requests) for s in sizes] + [(BIG, args.big_requests)]:
            r = run_phase(in_process, args.model, size, args.clients, args.seconds, cap)
            local[size] = r
            print(f"{'local':9} {size:>4} {r['requests']:>8} {r['rps']:>8.1f} {r['ips']:>9.0f} {r['p50']:>8.1f} "
                  f"{r['p90']:>8.1f} {r['p99']:>8.1f} {r['errors']:>6}", flush=True)
        print("\nserved / in-process images/s:")
        for label, size, r in rows:
            print(f"  {label:5} size {size:>4}: {r['ips'] / max(local[size]['ips'], 1e-9):.2f}")
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        tmp.cleanup()


if __name__ == "__main__":
    sys.exit(main())
