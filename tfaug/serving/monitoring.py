"""Prometheus metrics of ``tfaug serve``, switched on like TF Serving's ``--monitoring_config_file``.

``serving/monitoring.config`` is TF Serving's ``MonitoringConfig`` text proto::

    prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }

With ``enable: true`` the REST port answers ``GET <path>`` (default ``/monitoring/prometheus/metrics``, as TF
Serving) with Prometheus' text format, made by the ``prometheus_client`` library:

* ``tfaug_serving_request_count_total{model_name, model_version, signature_name, status}``: predict requests
  that reached a model version (REST and gRPC), ``status`` ``OK`` or the TF Serving error code
  (``INVALID_ARGUMENT`` ...). TF Serving's own counter is ``:tensorflow:serving:request_count``.
* ``tfaug_serving_request_latency_seconds{model_name, model_version, signature_name}``: a histogram of the time
  from validation to the model's outputs (queueing for a batch included, JSON/protobuf encoding not), in
  seconds (TF Serving's ``:tensorflow:serving:request_latency`` counts microseconds).

``signature_name`` is the signature that ran (``truncated`` for a ``serving_default`` request with a truncation).
Each :class:`ServingMetrics` has its own ``CollectorRegistry``, so several servers in one process never mix
their counts (and nothing lands in ``prometheus_client``'s global registry).
"""
from __future__ import annotations

import dataclasses
import os

from tfaug.errors import TfaugError

__all__ = ["DEFAULT_PATH", "MonitoringSettings", "ServingMetrics", "read_monitoring_config"]

DEFAULT_PATH = "/monitoring/prometheus/metrics"
# seconds: 1 ms .. 1 min (a 1-image call takes milliseconds, a 1024-image batch on a CPU seconds)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclasses.dataclass(frozen=True)
class MonitoringSettings:
    """What a monitoring config asks for: Prometheus on (``enable``) at ``path`` (an absolute URL path)."""

    enable: bool = False
    path: str = DEFAULT_PATH


def read_monitoring_config(path: str | os.PathLike) -> MonitoringSettings:
    """Parse a ``MonitoringConfig`` text proto (TF Serving's ``--monitoring_config_file``).

    An empty ``path`` means TF Serving's default ``/monitoring/prometheus/metrics``.

    Raises:
        TfaugError: unreadable file, invalid text proto, or a path that is not ``/...`` without spaces or ``?#``.
    """
    from tfaug.serving.config_protos import monitoring_config_class, parse_config

    message = parse_config(path, monitoring_config_class())
    prom = message.prometheus_config
    url_path = prom.path or DEFAULT_PATH
    if not url_path.startswith("/") or any(c in url_path for c in " ?#\t\n"):
        raise TfaugError(f"{path}: prometheus_config.path must be a URL path such as {DEFAULT_PATH!r}, "
                         f"got {url_path!r}.")
    if url_path.lower().startswith("/v1/"):
        raise TfaugError(f"{path}: prometheus_config.path {url_path!r} would hide TF Serving's /v1/ API; "
                         f"use {DEFAULT_PATH!r}.")
    return MonitoringSettings(enable=bool(prom.enable), path=url_path)


class ServingMetrics:
    """Request counts and latencies of one server, in a registry of its own.

    Args:
        path: the URL path the REST server answers with :meth:`render`.
    """

    def __init__(self, path: str = DEFAULT_PATH):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.path = path
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["model_name", "model_version", "signature_name"]
        self.requests = Counter("tfaug_serving_request_count", "Predict requests that reached a model version.",
                                labels + ["status"], registry=self.registry)
        self.latency = Histogram("tfaug_serving_request_latency_seconds",
                                 "Seconds from validation to outputs of a predict request (batch queueing included).",
                                 labels, buckets=LATENCY_BUCKETS, registry=self.registry)

    def observe(self, model_name: str, version: int, signature_name: str, seconds: float, status: str = "OK") -> None:
        """Count one request (``status`` OK or a TF Serving error code) and record its latency (>= 0 s)."""
        labels = (str(model_name), str(int(version)), str(signature_name))
        self.requests.labels(*labels, status).inc()
        self.latency.labels(*labels).observe(max(0.0, float(seconds)))

    def render(self) -> tuple[bytes, str]:
        """(body, Content-Type) in Prometheus' text exposition format."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
