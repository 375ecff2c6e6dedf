"""``tfaug serve`` (and ``tfaug query``): the serving subcommands of the ``tfaug`` CLI.

Thin wrappers over :mod:`tfaug.serving.server` and :mod:`tfaug.serving.client`; no TensorFlow import at module
level so ``tfaug --help`` stays instant. Registered through ``tfaug.cli.EXTENSIONS``.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from tfaug.cli_args import (class_choice, non_negative_float, non_negative_int, positive_float, positive_int,
                            truncation_psi)

__all__ = ["add_parsers", "serve"]


def _port(text: str) -> int:
    value = non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port in [0, 65535], got {value}")
    return value


def _grpc_port(text: str) -> int | None:
    """argparse type: a port, or 'none'/'off' to disable gRPC."""
    return None if text.strip().lower() in ("none", "off") else _port(text)


def add_parsers(sub) -> None:
    """Add the serving subcommands to the ``tfaug`` subparsers."""
    _add_serve(sub)
    _add_query(sub)


def _add_serve(sub) -> None:
    s = sub.add_parser(
        "serve", help="serve exported SavedModels over TF Serving's REST and gRPC APIs (local development server)"
    )
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", metavar="MODELS_CONFIG", help="TF Serving models.config (ModelServerConfig text proto)")
    what.add_argument("--model-base", metavar="DIR",
                      help="directory of NAME/VERSION SavedModels (latest version of each NAME)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--rest-port", type=_port, default=8501, help="REST port (default 8501; 0 picks a free one)")
    s.add_argument("--grpc-port", type=_grpc_port, default=8500,
                   help="gRPC port (default 8500; 0 picks a free one; 'none' disables gRPC)")
    s.add_argument("--poll-seconds", type=positive_float, default=2.0,
                   help="seconds between scans for new model versions (default 2)")
    s.add_argument("--max-batch-size", type=positive_int, default=64,
                   help="most rows merged into one model call (default 64)")
    s.add_argument("--batch-timeout-ms", type=non_negative_float, default=0.0,
                   help="longest wait for more requests before a batch runs (default 0: a batch holds what "
                        "queued while the model ran; raise it to trade latency for throughput)")
    s.add_argument("--max-images-per-request", type=positive_int, default=1024,
                   help="largest N one request may ask for (default 1024)")
    s.add_argument("--monitoring-config", metavar="MONITORING_CONFIG",
                   help="TF Serving monitoring.config (MonitoringConfig text proto); with prometheus_config "
                        "{ enable: true } the REST port serves Prometheus metrics at its path")
    s.add_argument("--max-grpc-message-bytes", type=positive_int, default=None,
                   help="largest gRPC request message (default: 16 KiB per --max-images-per-request image + 1 MiB)")
    s.add_argument("--rest-timeout-seconds", type=positive_float, default=30.0,
                   help="close a REST connection that sends nothing for this long (default 30)")
    s.add_argument("--rest-max-connections", type=positive_int, default=64,
                   help="most REST connections served at once; more wait, then get 503 (default 64)")
    s.set_defaults(func="tfaug.serving.cli:serve")


def serve(args: argparse.Namespace) -> int:
    """Run the local model server until Ctrl-C (or SIGTERM); returns 0 after a clean shutdown."""
    import logging

    from tfaug.serving.server import LocalModelServer, ServerConfig

    config = ServerConfig(
        model_config_file=args.config,
        model_base=args.model_base,
        host=args.host,
        rest_port=args.rest_port,
        grpc_port=args.grpc_port,
        poll_seconds=args.poll_seconds,
        max_batch_size=args.max_batch_size,
        batch_timeout_ms=args.batch_timeout_ms,
        max_images_per_request=args.max_images_per_request,
        monitoring_config_file=args.monitoring_config,
        max_grpc_message_bytes=args.max_grpc_message_bytes,
        rest_timeout_seconds=args.rest_timeout_seconds,
        rest_max_connections=args.rest_max_connections,
    )
    if args.config is not None:  # fail fast, before TensorFlow is imported
        from tfaug.serving.config import read_model_config

        read_model_config(args.config)
    if args.monitoring_config is not None:
        from tfaug.serving.monitoring import read_monitoring_config

        read_monitoring_config(args.monitoring_config)
    logging.basicConfig(level=logging.INFO, format="tfaug serve: %(message)s")
    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()  # signal handlers only work there
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main else None
    server = LocalModelServer(config=config)
    try:
        # Ctrl-C anywhere in here (even while loading, or right after a print) is the normal way to stop.
        try:
            server.start()
            print(f"tfaug serve: REST  {server.rest_url}/v1/models/NAME", flush=True)
            if server.grpc_target:
                print(f"tfaug serve: gRPC  {server.grpc_target}", flush=True)
            if server.metrics_url:
                print(f"tfaug serve: metrics {server.metrics_url}", flush=True)
            for name, versions in server.served().items():
                shown = ", ".join(map(str, versions)) if versions else "no version yet (waiting for one)"
                print(f"tfaug serve: model {name}: version(s) {shown}", flush=True)
            print("tfaug serve: press Ctrl-C to stop", flush=True)
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        server.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    print("tfaug serve: stopped", file=sys.stderr, flush=True)
    return 0


def _add_query(sub) -> None:
    q = sub.add_parser(
        "query",
        help="ask a model server (TF Serving or `tfaug serve`) for N images of a class, or its status/metadata",
        description="Fetch images (class C, seeds S..S+N-1) from a served generator over REST or gRPC and write "
        "class{C}_seed{S}.png files and grid.png; or print the model's --status / --metadata as JSON.",
    )
    q.add_argument("name", metavar="NAME", help="served model name, e.g. digits_cdcgan")
    q.add_argument("--class-id", type=class_choice, metavar="CLASS",
                   help="class to generate, by id or by name (required for images; names are read from "
                        "--saved-models/NAME's metadata)")
    q.add_argument("--saved-models", default="saved_models", metavar="DIR",
                   help="where the served SavedModels lie, to look up class names (default saved_models)")
    q.add_argument("--n", type=positive_int, default=64, help="number of images (default 64)")
    q.add_argument("--seed", type=int, default=0, help="first seed; image j uses seed + j (default 0)")
    q.add_argument("--out", help="output directory for the PNGs and grid.png (required for images)")
    q.add_argument("--truncation", type=truncation_psi, metavar="PSI",
                   help="truncation psi in [0, 1]: lower is closer to the class's average image (default: none)")
    where = q.add_mutually_exclusive_group()
    where.add_argument("--url", help="REST address (default http://127.0.0.1:8501)")
    where.add_argument("--grpc", metavar="HOST:PORT", help="gRPC address instead of REST, e.g. 127.0.0.1:8500")
    pick = q.add_mutually_exclusive_group()
    pick.add_argument("--version", type=non_negative_int, help="model version (default: the server's default)")
    pick.add_argument("--label", help="version label, e.g. stable or canary")
    what = q.add_mutually_exclusive_group()
    what.add_argument("--status", action="store_true", help="print the model's version status as JSON")
    what.add_argument("--metadata", action="store_true", help="print the model's signatures as JSON")
    q.add_argument("--batch-size", type=positive_int, default=64, help="images per request (default 64)")
    q.add_argument("--timeout", type=positive_float, default=30.0, help="seconds per request (default 30)")
    q.add_argument("--retries", type=non_negative_int, default=2,
                   help="retries when the server is unreachable or fails with 5xx/UNAVAILABLE (default 2)")
    q.add_argument("--no-progress", action="store_true")
    q.set_defaults(func="tfaug.serving.query:run_query")
