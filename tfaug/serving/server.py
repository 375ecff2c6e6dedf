"""A local model server that speaks TensorFlow Serving's REST and gRPC APIs, for development and tests.

TF Serving itself cannot be installed on the development machines; :class:`LocalModelServer` serves the same
SavedModels from the same ``models.config`` (or a ``saved_models/`` directory) so a client cannot tell the
difference::

    from tfaug.serving.server import LocalModelServer

    with LocalModelServer(model_base="saved_models", rest_port=0, grpc_port=0) as server:
        print(server.rest_url, server.grpc_target)   # http://127.0.0.1:PORT, 127.0.0.1:PORT

Parts: :mod:`~tfaug.serving.config` (what to serve), :mod:`~tfaug.serving.modelstore` (loading, version
policies, labels, hot reload by polling), :mod:`~tfaug.serving.predict` (validation) and
:mod:`~tfaug.serving.batching` (merging concurrent requests on a worker thread), :mod:`~tfaug.serving.rest`
and :mod:`~tfaug.serving.grpc_service` (the two front ends).
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from tfaug.errors import TfaugError

__all__ = ["LocalModelServer", "ServerConfig", "GRPC_BYTES_PER_IMAGE", "GRPC_MESSAGE_OVERHEAD"]

log = logging.getLogger("tfaug.serving")
# Default gRPC receive cap: room for max_images_per_request rows of this many bytes (a 64x64x3 uint8 image for a
# classifier is 12 KiB; a generator row is 12 bytes) plus a fixed allowance for the envelope.
GRPC_BYTES_PER_IMAGE = 16 << 10
GRPC_MESSAGE_OVERHEAD = 1 << 20


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Everything a :class:`LocalModelServer` needs (validated on construction).

    Attributes:
        model_config_file: a ``models.config`` (ModelServerConfig text proto); exclusive with ``model_base``.
        model_base: a directory of ``NAME/VERSION`` SavedModels; every NAME is served at its latest version.
        host: address to bind; 127.0.0.1 (loopback only) by default.
        rest_port: REST port, 0 picks a free one.
        grpc_port: gRPC port, 0 picks a free one, None disables gRPC.
        poll_seconds: seconds between scans of the base paths for new/removed versions (> 0).
        max_batch_size: most rows merged into one model call (>= 1).
        batch_timeout_ms: longest wait for more requests before running a batch (>= 0; 0, the default, batches
            opportunistically: see ``tfaug.serving.batching.BatchingOptions``).
        max_images_per_request: largest N one request may ask for (>= 1).
        max_body_bytes: largest REST request body (>= 1).
        monitoring_config_file: a ``monitoring.config`` (MonitoringConfig text proto); with
            ``prometheus_config { enable: true }`` the REST port serves Prometheus metrics at its path.
        max_grpc_message_bytes: largest gRPC request message (>= 1); None (default) means
            ``GRPC_BYTES_PER_IMAGE * max_images_per_request + GRPC_MESSAGE_OVERHEAD`` (17 MiB at 1024 images),
            see :attr:`grpc_max_message_bytes`.
        rest_timeout_seconds: a REST connection that sends nothing for this long is closed (> 0).
        rest_max_connections: most REST connections served at once (>= 1); more wait in the listen backlog
            (as long again), and beyond that the kernel refuses them.
    """

    model_config_file: str | os.PathLike | None = None
    model_base: str | os.PathLike | None = None
    host: str = "127.0.0.1"
    rest_port: int = 8501
    grpc_port: int | None = 8500
    poll_seconds: float = 2.0
    max_batch_size: int = 64
    batch_timeout_ms: float = 0.0
    max_images_per_request: int = 1024
    max_body_bytes: int = 16 << 20
    monitoring_config_file: str | os.PathLike | None = None
    max_grpc_message_bytes: int | None = None
    rest_timeout_seconds: float = 30.0
    rest_max_connections: int = 64

    @property
    def grpc_max_message_bytes(self) -> int:
        """The gRPC receive cap in bytes: ``max_grpc_message_bytes`` or its default in proportion to
        ``max_images_per_request``."""
        if self.max_grpc_message_bytes is not None:
            return int(self.max_grpc_message_bytes)
        return GRPC_BYTES_PER_IMAGE * int(self.max_images_per_request) + GRPC_MESSAGE_OVERHEAD

    def __post_init__(self):
        if (self.model_config_file is None) == (self.model_base is None):
            raise TfaugError("Give exactly one of a model config file (--config) or a model base directory (--model-base).")
        for name in ("rest_port", "grpc_port"):
            port = getattr(self, name)
            if port is None and name == "grpc_port":
                continue
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise TfaugError(f"{name} must be an integer in [0, 65535] (0 picks a free port), got {port!r}.")
        checks = {
            "poll_seconds": self.poll_seconds > 0,
            "max_batch_size": self.max_batch_size >= 1,
            "batch_timeout_ms": self.batch_timeout_ms >= 0,
            "max_images_per_request": self.max_images_per_request >= 1,
            "max_body_bytes": self.max_body_bytes >= 1,
            "max_grpc_message_bytes": self.max_grpc_message_bytes is None or self.max_grpc_message_bytes >= 1,
            "rest_timeout_seconds": self.rest_timeout_seconds > 0,
            "rest_max_connections": self.rest_max_connections >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise TfaugError(f"{name} is out of range: {getattr(self, name)!r}.")
        if not self.host:
            raise TfaugError("host must be an address such as 127.0.0.1.")


class LocalModelServer:
    """REST + gRPC model server with TF Serving's APIs, hot reload and server-side batching.

    Takes the fields of :class:`ServerConfig` as arguments (or ``config=ServerConfig(...)``); see there for
    their meaning and ranges. :attr:`batching` (max_batch_size, timeout_ms) may be changed while running.
    :meth:`start` returns once both listeners are up and the initial versions are loaded; it raises
    :class:`~tfaug.errors.TfaugError` for a bad config or a port that cannot be bound.
    """

    def __init__(
        self,
        model_config_file: str | os.PathLike | None = None,
        model_base: str | os.PathLike | None = None,
        host: str = "127.0.0.1",
        rest_port: int = 8501,
        grpc_port: int | None = 8500,
        poll_seconds: float = 2.0,
        max_batch_size: int = 64,
        batch_timeout_ms: float = 0.0,
        max_images_per_request: int = 1024,
        max_body_bytes: int = 16 << 20,
        max_grpc_message_bytes: int | None = None,
        rest_timeout_seconds: float = 30.0,
        rest_max_connections: int = 64,
        *,
        monitoring_config_file: str | os.PathLike | None = None,
        config: ServerConfig | None = None,
    ):
        self.config = config or ServerConfig(
            model_config_file=model_config_file, model_base=model_base, host=host, rest_port=rest_port,
            grpc_port=grpc_port, poll_seconds=poll_seconds, max_batch_size=max_batch_size,
            batch_timeout_ms=batch_timeout_ms, max_images_per_request=max_images_per_request,
            max_body_bytes=max_body_bytes, monitoring_config_file=monitoring_config_file,
            max_grpc_message_bytes=max_grpc_message_bytes,
            rest_timeout_seconds=rest_timeout_seconds, rest_max_connections=rest_max_connections,
        )
        from tfaug.serving.batching import BatchingOptions, BatchStats

        self.batching = BatchingOptions(self.config.max_batch_size, self.config.batch_timeout_ms)
        self.batch_stats = BatchStats()
        self.store = self._rest = self._grpc = None
        self.metrics = None  # ServingMetrics while running with an enabled monitoring config

    # ------------------------------------------------------------------------------------------ ports

    @property
    def rest_port(self) -> int | None:
        return self._rest.port if self._rest else None

    @property
    def grpc_port(self) -> int | None:
        return self._grpc.port if self._grpc else None

    @property
    def rest_url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.rest_port}"

    @property
    def metrics_url(self) -> str | None:
        """The Prometheus endpoint (``rest_url`` + the monitoring config's path), or None when not enabled."""
        return f"{self.rest_url}{self.metrics.path}" if self.metrics is not None and self._rest else None

    @property
    def grpc_target(self) -> str | None:
        if self._grpc is None:
            return None
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"{host}:{self.grpc_port}"

    # ---------------------------------------------------------------------------------------- lifecycle

    def _specs_fn(self):
        from tfaug.serving.config import read_model_config, scan_model_base

        cfg = self.config
        if cfg.model_config_file is not None:
            specs = read_model_config(cfg.model_config_file)
            return lambda: specs
        base = Path(cfg.model_base)
        scan_model_base(base)  # raises now for a missing directory
        return lambda: scan_model_base(base)

    def start(self) -> "LocalModelServer":
        """Load the initial versions, open the REST (and gRPC) listeners and start polling."""
        if self.store is not None:
            raise TfaugError("This server is already running; stop() it first.")
        from tfaug.serving.modelstore import ModelStore
        from tfaug.serving.predict import Predictor
        from tfaug.serving.rest import RestServer

        cfg = self.config
        specs = self._specs_fn()
        self.metrics = None
        settings = _monitoring(cfg.monitoring_config_file)  # before loading anything: a bad file is one sentence
        if settings.enable:
            from tfaug.serving.monitoring import ServingMetrics

            self.metrics = ServingMetrics(settings.path)
        self.store = ModelStore(specs, poll_seconds=cfg.poll_seconds)
        predictor = Predictor(self.store, self.batching, self.batch_stats, cfg.max_images_per_request, self.metrics)
        try:
            self.store.poll_once()
            self._rest = RestServer(predictor, cfg.host, cfg.rest_port, cfg.max_body_bytes, metrics=self.metrics,
                                    timeout_seconds=cfg.rest_timeout_seconds, max_connections=cfg.rest_max_connections)
            self._rest.start()
            if cfg.grpc_port is not None:
                from tfaug.serving.grpc_service import GrpcServer

                self._grpc = GrpcServer(predictor, cfg.host, cfg.grpc_port,
                                        max_message_bytes=cfg.grpc_max_message_bytes)
                self._grpc.start()
        except BaseException:
            self.stop()
            raise
        # TensorFlow's object graph is large and long-lived: move it out of the collector's view so the many
        # short-lived containers of JSON replies do not trigger full collections over it (REST latency tail).
        import gc

        gc.collect()
        gc.freeze()
        self.store.start_polling()
        for name, versions in self.served().items():
            if not versions:
                log.warning("model %s has no loadable version yet; it is served once one appears", name)
        return self

    def stop(self) -> None:
        """Close the listeners, stop polling and unload every model (idempotent)."""
        if self._grpc is not None:
            self._grpc.stop()
            self._grpc = None
        if self._rest is not None:
            self._rest.stop()
            self._rest = None
        if self.store is not None:
            self.store.stop()
            self.store = None

    def __enter__(self) -> "LocalModelServer":
        return self.start() if self.store is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------ state

    def served(self) -> dict[str, list[int]]:
        """Model name -> loaded versions, ascending ({} when stopped)."""
        return self.store.served() if self.store is not None else {}

    def stats(self) -> dict:
        """Batching counters: requests, batches (model calls), merged_batches, merged_requests, rows."""
        return self.batch_stats.as_dict()


def _monitoring(path):
    """MonitoringSettings of a monitoring config file (disabled when there is none)."""
    from tfaug.serving.monitoring import MonitoringSettings, read_monitoring_config

    return read_monitoring_config(path) if path is not None else MonitoringSettings()
