"""REST front end under hostile HTTP (issue 19.6): every reply is one JSON error, HEAD has no body, duplicate
Content-Length is refused, idle sockets time out and the connection threads are bounded."""
import http.client
import json
import socket
import time

import pytest

GOOD = {"instances": [{"class_id": 1, "seed": 5}]}


def _raw(port, data: bytes, timeout=10.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
    return b"".join(chunks)


def _json_reply(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def test_deeply_nested_json_is_a_400(rest):
    depth = 100_000
    status, body = rest("/v1/models/toy:predict", raw=b"[" * depth + b"]" * depth)
    assert status == 400 and "nested" in body["error"], body
    status, body = rest("/v1/models/toy:predict", raw=b'{"inputs": {"class_id": ' + b"[" * depth + b"]" * depth
                        + b', "seed": [1]}}')
    assert status == 400 and set(body) == {"error"}
    assert rest("/v1/models/toy:predict", GOOD)[0] == 200


def test_head_replies_carry_no_body(model_server):
    conn = http.client.HTTPConnection("127.0.0.1", model_server.server.rest_port, timeout=30)
    try:
        for path in ("/v1/models/toy", "/v1/models/nope"):
            conn.request("HEAD", path)
            resp = conn.getresponse()
            assert resp.read() == b"" and resp.status in (404, 405)
            conn.request("GET", "/v1/models/toy")  # the kept-alive connection is still in sync
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["model_version_status"]
    finally:
        conn.close()
    reply = _raw(model_server.server.rest_port, b"HEAD /v1/models/toy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 ") and body == b""


@pytest.mark.parametrize("method", ["BREW", "TRACE", "CONNECT"])
def test_unknown_methods_get_a_json_error(model_server, method):
    reply = _raw(model_server.server.rest_port, f"{method} /v1/models/toy HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    status, body = _json_reply(reply)
    assert status in (405, 501) and set(body) == {"error"} and method in body["error"], body
    assert b"<html" not in reply.lower() and b"content-type: application/json" in reply.lower()


def test_malformed_request_line_gets_a_json_error(model_server):
    status, body = _json_reply(_raw(model_server.server.rest_port, b"GET\r\n\r\n"))
    assert status == 400 and set(body) == {"error"}


def test_overlong_request_line_gets_a_json_error(model_server):
    status, body = _json_reply(_raw(model_server.server.rest_port, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"))
    assert status == 414 and set(body) == {"error"}


def test_duplicate_content_length_is_refused(model_server):
    payload = json.dumps(GOOD).encode()
    request = (b"POST /v1/models/toy:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               + f"Content-Length: {len(payload)}\r\nContent-Length: {len(payload) + 7}\r\n\r\n".encode() + payload)
    status, body = _json_reply(_raw(model_server.server.rest_port, request))
    assert status == 400 and "Content-Length" in body["error"]


def test_seed_beyond_int64_is_reported_as_out_of_range(rest):
    status, body = rest("/v1/models/toy:predict", {"inputs": {"class_id": [0, 1], "seed": [2**63, -1]}})
    assert status == 400 and "outside the int64 range" in body["error"] and str(2**63) in body["error"], body
    status, body = rest("/v1/models/toy:predict", {"inputs": {"class_id": [0, 1], "seed": [-(2**63) - 1, 1]}})
    assert status == 400 and "outside the int64 range" in body["error"], body
    status, body = rest("/v1/models/toy:predict", {"inputs": {"class_id": [0, 1], "seed": [1.5, 2**63]}})
    assert status == 400 and "float" in body["error"], body


@pytest.fixture
def small_rest_server():
    """start(timeout_seconds) -> a RestServer over an empty model store, serving at most 2 connections at once."""
    from tfaug.serving.batching import BatchingOptions, BatchStats
    from tfaug.serving.modelstore import ModelStore
    from tfaug.serving.predict import Predictor
    from tfaug.serving.rest import RestServer

    servers = []

    def start(timeout_seconds):
        predictor = Predictor(ModelStore(lambda: []), BatchingOptions(8, 1.0), BatchStats(), 16)
        server = RestServer(predictor, port=0, timeout_seconds=timeout_seconds, max_connections=2)
        server.start()
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def test_idle_and_half_sent_requests_time_out(small_rest_server):
    server = small_rest_server(0.5)
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/models/m:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")  # never finished
        sock.recv(65536)  # the server hangs up instead of waiting (socket.timeout after 10 s without the fix)
    assert time.monotonic() - t0 < 8


def test_connections_beyond_the_bound_are_refused_not_threaded(small_rest_server):
    from tfaug.serving.rest import BUSY_WAIT_SECONDS

    server = small_rest_server(10 * BUSY_WAIT_SECONDS)
    port = server.port
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
    try:
        time.sleep(0.1)
        status, body = _json_reply(_raw(port, b"GET /v1/models/m HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert status == 503 and "busy" in body["error"], body
    finally:
        for sock in idle:
            sock.close()
    # The idle connections closed: their slots are free again.
    status, body = _json_reply(_raw(port, b"GET /v1/models/m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
    assert status == 404 and body["error"] == "Model 'm' is not served by this server."
