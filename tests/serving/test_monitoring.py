"""Prometheus metrics of `tfaug serve` (--monitoring-config, as TF Serving): the config parser, request counts and
latencies per model/version/signature over REST and gRPC, one registry per server, and the CLI flag."""
import urllib.error
import urllib.request

import pytest

from tfaug.errors import TfaugError

METRICS = "/monitoring/prometheus/metrics"
ENABLED = 'prometheus_config {\n  enable: true\n  path: "%s"\n}\n'


def _scrape(url):
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=30) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _count(samples, name, version, signature, status="OK"):
    key = ("tfaug_serving_request_count_total", tuple(sorted(
        {"model_name": name, "model_version": str(version), "signature_name": signature, "status": status}.items())))
    return samples.get(key, 0.0)


def _latency(samples, suffix, name, version, signature, le=None):
    labels = {"model_name": name, "model_version": str(version), "signature_name": signature}
    if le is not None:
        labels["le"] = le
    return samples.get((f"tfaug_serving_request_latency_seconds_{suffix}", tuple(sorted(labels.items()))), 0.0)


def test_monitoring_config_parsing(tmp_path):
    from tfaug.serving.monitoring import read_monitoring_config

    shipped = read_monitoring_config("serving/monitoring.config")
    assert shipped.enable and shipped.path == METRICS
    f = tmp_path / "m.config"
    f.write_text('prometheus_config { enable: true path: "/metrics" }')
    assert read_monitoring_config(f).path == "/metrics"
    f.write_text("prometheus_config { enable: true }")
    assert read_monitoring_config(f).path == METRICS  # TF Serving's default path
    f.write_text("prometheus_config { enable: false }")
    assert not read_monitoring_config(f).enable
    f.write_text('prometheus_config { enable: true path: "metrics" }')
    with pytest.raises(TfaugError, match="URL path"):
        read_monitoring_config(f)
    f.write_text("prometheus_config { enabled: true }")
    with pytest.raises(TfaugError, match="not a valid MonitoringConfig"):
        read_monitoring_config(f)
    with pytest.raises(TfaugError, match="cannot read"):
        read_monitoring_config(tmp_path / "missing.config")


@pytest.fixture(scope="module")
def two_servers(serving_models, tmp_path_factory):
    from tfaug.serving.server import LocalModelServer

    cfg = tmp_path_factory.mktemp("monitoring") / "monitoring.config"
    cfg.write_text(ENABLED % METRICS)
    servers = [LocalModelServer(model_base=serving_models.base, rest_port=0, grpc_port=0, poll_seconds=5,
                                batch_timeout_ms=1, monitoring_config_file=cfg) for _ in range(2)]
    plain = LocalModelServer(model_base=serving_models.base, rest_port=0, grpc_port=None, poll_seconds=5)
    for s in (*servers, plain):
        s.start()
    yield servers, plain
    for s in (*servers, plain):
        s.stop()


def test_requests_are_counted_per_model_version_signature_and_status(two_servers, serving_helpers):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    (server, other), _ = two_servers
    http = serving_helpers.http
    assert server.metrics_url == server.rest_url + METRICS
    before = _scrape(server.metrics_url)
    assert _count(before, "toy", 1, "serving_default") == 0
    for seed in range(3):
        status, _ = http(server.rest_url, "/v1/models/toy:predict", {"inputs": {"class_id": [1], "seed": [seed]}})
        assert status == 200
    status, _ = http(server.rest_url, "/v1/models/toy:predict",
                     {"inputs": {"class_id": [1, 2], "seed": [3, 4], "truncation": [0.5, 0.5]}})
    assert status == 200
    status, _ = http(server.rest_url, "/v1/models/toy:predict", {"inputs": {"class_id": [7], "seed": [0]}})
    assert status == 400
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        stub.Predict(serving_helpers.grpc_predict_request("toy", [0, 1], [5, 6]), timeout=30)
        stub.Predict(serving_helpers.grpc_predict_request("toy", [0], [5], signature="generate_png"), timeout=30)
    status, _ = http(server.rest_url, "/v1/models/clf:predict", {"instances": [[[[0]] * 8] * 8]})
    assert status == 200
    after = _scrape(server.metrics_url)
    assert _count(after, "toy", 1, "serving_default") == 4  # 3 REST + 1 gRPC
    assert _count(after, "toy", 1, "truncated") == 1  # serving_default + truncation runs 'truncated'
    assert _count(after, "toy", 1, "serving_default", "INVALID_ARGUMENT") == 1
    assert _count(after, "toy", 1, "generate_png") == 1
    assert _count(after, "clf", 1, "serving_default") == 1
    # the histogram holds every request that reached the model, successful or not, with a positive time
    assert _latency(after, "count", "toy", 1, "serving_default") == 5
    assert _latency(after, "bucket", "toy", 1, "serving_default", le="+Inf") == 5
    assert _latency(after, "sum", "toy", 1, "serving_default") > 0
    # the other server in this process has its own registry: none of these requests are in it
    assert _count(_scrape(other.metrics_url), "toy", 1, "serving_default") == 0


def test_without_monitoring_config_there_is_no_metrics_endpoint(two_servers, serving_helpers):
    _, plain = two_servers
    assert plain.metrics_url is None
    status, body = serving_helpers.http(plain.rest_url, METRICS)
    assert status == 400 and "Malformed request" in body["error"]


def test_serve_cli_flag(tmp_path, capsys):
    from tfaug.cli import main

    bad = tmp_path / "bad.config"
    bad.write_text("prometheus_config { enable: yes please }")
    assert main(["serve", "--model-base", str(tmp_path), "--monitoring-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "not a valid MonitoringConfig" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "--monitoring-config" in capsys.readouterr().out
