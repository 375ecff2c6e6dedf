"""ServingClient over loopback against the local server: REST == gRPC == in-process, routes, errors, retries, CLI."""
import http.server
import io
import json
import socket
import threading
import time
import types

import numpy as np
import pytest

from tfaug.errors import TfaugError

SHAPE = (8, 8, 1)  # the tiny generator of tests/serving/conftest.py: 3 classes, 8x8x1
CLASSES = np.array([0, 1, 2, 2, 0], np.int32)
SEEDS = np.array([42, 42, 7, -3, 2**40], np.int64)


@pytest.fixture(scope="module")
def served(model_server):
    """REST and gRPC clients of the session's local server (conftest: 'toy' v1 with label 'stable', 'clf')."""
    import tensorflow as tf

    from tfaug.serving.client import ServingClient

    models = model_server.models
    rest = ServingClient.rest(model_server.rest_url, timeout=30, retries=2)
    grpc = ServingClient.grpc(model_server.grpc_target, timeout=30, retries=2)
    yield types.SimpleNamespace(rest=rest, grpc=grpc, loaded=tf.saved_model.load(str(models.toy_path)),
                                clf=tf.saved_model.load(str(models.clf_path)))
    grpc.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rest_and_grpc_generate_equal_in_process_savedmodel(served):
    import tensorflow as tf

    expected = served.loaded.signatures["serving_default"](class_id=tf.constant(CLASSES), seed=tf.constant(SEEDS))
    expected = expected["images"].numpy()
    via_rest = served.rest.generate("toy", CLASSES, SEEDS)
    via_grpc = served.grpc.generate("toy", CLASSES.tolist(), SEEDS.tolist())
    assert via_rest.dtype == np.uint8 and via_rest.shape == (5, *SHAPE)
    np.testing.assert_array_equal(via_rest, expected)
    np.testing.assert_array_equal(via_grpc, expected)
    assert not np.array_equal(via_rest[0], via_rest[1])  # same seed, other class: another image


def test_generate_png_decodes_to_the_same_images(served):
    from PIL import Image

    images = served.rest.generate("toy", CLASSES[:2], SEEDS[:2])
    for client in (served.rest, served.grpc):
        pngs = client.generate_png("toy", CLASSES[:2], SEEDS[:2])
        assert len(pngs) == 2 and all(p.startswith(b"\x89PNG") for p in pngs)
        decoded = np.stack([np.asarray(Image.open(io.BytesIO(p))) for p in pngs])
        np.testing.assert_array_equal(decoded.reshape(images.shape), images)


def test_version_and_label_routes(served):
    for client in (served.rest, served.grpc):
        assert client.status("toy") == [{"version": 1, "state": "AVAILABLE", "error": ""}]
        assert client.status("toy", label="stable") == client.status("toy", version=1) == client.status("toy")
        assert client.metadata("toy", version=1)["version"] == 1
        np.testing.assert_array_equal(client.generate("toy", [1], [5], label="stable"),
                                      client.generate("toy", [1], [5], version=1))
        with pytest.raises(TfaugError, match="either a version or a label"):
            client.generate("toy", [1], [5], version=1, label="stable")
        with pytest.raises(TfaugError, match="label 'canary' not found"):
            client.generate("toy", [1], [5], label="canary")


def test_served_generator_meets_the_generator_contract(served, model_server, tmp_path):
    from tfaug.serving.client import ServedGenerator
    from tfaug.synthesis.loader import Generator, SavedModelGenerator
    from tfaug.synthesis.sample import write_samples

    gen = ServedGenerator(served.grpc, "toy", num_classes=3, label="stable", batch_size=2)
    assert isinstance(gen, Generator) and gen.image_shape == SHAPE
    x = gen.sample(CLASSES, SEEDS)
    assert x.dtype == np.float32 and x.shape == (5, *SHAPE) and -1 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(x, SavedModelGenerator(model_server.models.toy_path).sample(CLASSES, SEEDS))
    with pytest.raises(TfaugError, match="Class ids must be in 0..2"):
        gen.sample([3], [0])
    assert len(write_samples(gen, 1, 3, 0, tmp_path)) == 4


def test_metadata_is_plain_signature_dicts_on_both_transports(served):
    rest, grpc = served.rest.metadata("toy"), served.grpc.metadata("toy")
    assert rest["signature_def"] == grpc["signature_def"] and rest["model"] == grpc["model"] == "toy"
    sig = rest["signature_def"]["serving_default"]
    assert sig["inputs"] == {"class_id": {"dtype": "int32", "shape": [None]}, "seed": {"dtype": "int64", "shape": [None]}}
    assert sig["outputs"]["images"] == {"dtype": "uint8", "shape": [None, *SHAPE]}
    assert rest["signature_def"]["generate_png"]["outputs"] == {"png_bytes": {"dtype": "string", "shape": [None]}}


def test_predict_on_an_exported_classifier(served):
    import tensorflow as tf

    images = served.rest.generate("toy", CLASSES, SEEDS)
    expected = served.clf.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    for client in (served.rest, served.grpc):
        out = client.predict("clf", {"images": images})
        assert set(out) == {"probabilities"} and out["probabilities"].dtype == np.float32
        np.testing.assert_allclose(out["probabilities"], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_errors_are_one_clear_tfaug_error_and_4xx_is_not_retried(served, transport):
    client = getattr(served, transport)
    sent = client.transport.requests_sent
    with pytest.raises(TfaugError, match="model 'nope' not found"):
        client.generate("nope", [0], [0])
    with pytest.raises(TfaugError, match=r"class_id 5 is out of range"):  # the server's own message
        client.generate("toy", [5], [0])
    with pytest.raises(TfaugError, match="version 7 not found"):
        client.status("toy", version=7)
    assert client.transport.requests_sent - sent == 3  # retries=2, yet each 4xx/NOT_FOUND was sent once
    with pytest.raises(TfaugError, match="equal length"):
        client.generate("toy", [0, 1], [0])
    assert client.transport.requests_sent - sent == 3  # rejected before sending


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_no_server_fails_quickly_with_a_hint(transport):
    from tfaug.serving.client import ServingClient

    port = _free_port()
    client = (ServingClient.rest(f"http://127.0.0.1:{port}", retries=2) if transport == "rest"
              else ServingClient.grpc(f"127.0.0.1:{port}", retries=2))
    t0 = time.monotonic()
    with pytest.raises(TfaugError, match=r"no model server at .*connection refused.* after 3 attempts; start one with"):
        client.generate("toy", [0], [0])
    assert time.monotonic() - t0 < 5 and client.transport.requests_sent == 3
    client.close()


def test_5xx_is_retried_with_backoff_and_a_timeout_is_not():
    from tfaug.serving.client import ServingClient

    hits = []

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if "slow" in self.path:
                time.sleep(0.5)
            body = b'{"error": "model store is reloading"}'
            self.send_response(503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):  # the timed-out client hung up: expected
            pass

    httpd = Quiet(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        client = ServingClient.rest(f"http://127.0.0.1:{httpd.server_address[1]}", timeout=5, retries=2)
        with pytest.raises(TfaugError, match=r"HTTP 503 \(model store is reloading\) after 3 attempts"):
            client.status("toy")
        assert hits == ["/v1/models/toy"] * 3
        impatient = ServingClient.rest(client.address, timeout=0.2, retries=2)
        with pytest.raises(TfaugError, match=r"did not answer model 'slow' within 0.2 s"):
            impatient.status("slow")
        assert hits.count("/v1/models/slow") == 1
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_query_cli_writes_pngs_and_grid(served, tmp_path, capsys):
    from PIL import Image

    from tfaug.cli import main

    url = served.rest.address
    out = tmp_path / "q"
    assert main(["query", "toy", "--class-id", "2", "--n", "5", "--seed", "40", "--url", url, "--out", str(out),
                 "--batch-size", "2", "--no-progress"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"class2_seed{s}.png" for s in range(40, 45)] + ["grid.png"])
    expected = served.rest.generate("toy", [2] * 5, range(40, 45))
    got = np.stack([np.asarray(Image.open(out / f"class2_seed{s}.png")) for s in range(40, 45)])
    np.testing.assert_array_equal(got.reshape(expected.shape), expected)
    assert "wrote 5 images" in capsys.readouterr().out
    assert main(["query", "toy", "--status", "--grpc", served.grpc.address]) == 0
    assert '"state": "AVAILABLE"' in capsys.readouterr().out
    assert main(["query", "toy", "--metadata", "--url", url]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["signature_def"]["serving_default"]["inputs"]["seed"] == {"dtype": "int64", "shape": [None]}


def test_query_cli_exits_2_with_one_line_when_the_server_is_down(tmp_path, capsys):
    from tfaug.cli import main

    code = main(["query", "toy", "--class-id", "0", "--n", "2", "--url", f"http://127.0.0.1:{_free_port()}",
                 "--retries", "0", "--out", str(tmp_path / "q")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no model server" in err and "Traceback" not in err
    assert not (tmp_path / "q").exists()
