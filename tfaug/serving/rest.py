"""TF Serving's REST API over stdlib ``http.server`` (one thread per connection, HTTP/1.1 keep-alive).

Routes (case-insensitive, as TF Serving's ``http_rest_api_handler``):

* ``GET  /v1/models/{name}[/versions/{v}|/labels/{l}]``            -> GetModelStatus JSON
* ``GET  /v1/models/{name}[/versions/{v}|/labels/{l}]/metadata``   -> GetModelMetadata JSON
* ``POST /v1/models/{name}[/versions/{v}|/labels/{l}]:predict``    -> predictions / outputs
* ``POST ...:classify`` / ``...:regress``                          -> 501 (not supported by tfaug models)
* ``GET  /monitoring/prometheus/metrics`` (the monitoring config's path) -> Prometheus text, when enabled

A ``serving_default`` predict whose rows/columns also carry ``truncation`` runs the ``truncated`` signature
(:meth:`~tfaug.serving.predict.Predictor.route`).

Every error is ``{"error": "<one sentence>"}`` with TF Serving's HTTP status for its code, including the replies
``http.server`` itself makes (malformed request line, unknown method); HEAD replies carry headers only. Bodies
larger than ``max_body_bytes`` are refused from the Content-Length header (413) before any of them is read, a
repeated Content-Length is refused (400), and JSON nested too deeply to parse is a 400. A connection that sends
nothing for ``timeout_seconds`` is closed; at most ``max_connections`` connections are served at once (one thread
each), the next ones wait in a listen backlog as long, and one that finds no free slot within
:data:`BUSY_WAIT_SECONDS` gets a 503.
"""
from __future__ import annotations

import logging
import re
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tfaug.errors import TfaugError
from tfaug.serving import fastjson, messages
from tfaug.serving.jsontensor import parse_predict_request, predict_response
from tfaug.serving.predict import Predictor
from tfaug.serving.status import ServingError, http_status

__all__ = ["RestServer", "BUSY_WAIT_SECONDS"]

log = logging.getLogger("tfaug.serving")
BUSY_WAIT_SECONDS = 1.0  # how long a new connection waits for a free connection slot before its 503

_MODEL = r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
_GET = re.compile(_MODEL + r"(?P<metadata>/metadata)?/?", re.IGNORECASE)
_POST = re.compile(_MODEL + r":(?P<verb>classify|regress|predict)", re.IGNORECASE)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Keep-alive replies are written in pieces; without TCP_NODELAY each one waits ~40 ms for a delayed ACK.
    disable_nagle_algorithm = True
    server_version = "tfaug-model-server"
    predictor: Predictor
    max_body_bytes: int
    metrics = None  # ServingMetrics answering GET metrics.path, or None

    # ---------------------------------------------------------------------------------------- plumbing

    def log_message(self, fmt, *args):  # noqa: D401 - quiet: requests are not worth a stderr line each
        log.debug("%s - " + fmt, self.address_string(), *args)

    def _send(self, status: int, body: dict) -> None:
        data = fastjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # a HEAD reply has the headers of the body it does not send
            self.wfile.write(data)

    def send_error(self, code, message=None, explain=None):  # noqa: D102 - http.server's own errors, as JSON
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":  # an unparsable request line: answer in 1.1
            self.request_version = self.protocol_version
        if not hasattr(self, "_headers_buffer"):  # http.server's error path may come before send_response set it up
            self._headers_buffer = []
        short = self.responses.get(code, ("Error",))[0]
        self._send(code, {"error": f"{(message or short).rstrip('.')}."})

    def _send_metrics(self) -> None:
        data, content_type = self.metrics.render()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, code: str, message: str, status: int | None = None) -> None:
        self._send(status or http_status(code), {"error": message})

    def _path(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    def _content_length(self) -> int:
        """The Content-Length (0 when absent), or -1 when it is not one non-negative integer (also when repeated:
        two lengths make the end of the body ambiguous, the root of request smuggling)."""
        values = self.headers.get_all("Content-Length") or ["0"]
        try:
            return int(values[0]) if len(values) == 1 and values[0].strip().isdigit() else -1
        except ValueError:
            return -1

    def _discard_body(self) -> None:
        """Read and drop an unread request body so the kept-alive connection stays in sync (or close it)."""
        length = self._content_length()
        if 0 <= length <= self.max_body_bytes and self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _route(self, method: str):
        path = self._path()
        get, post = _GET.fullmatch(path), _POST.fullmatch(path)
        if (method == "GET" and get) or (method == "POST" and post):
            return get if method == "GET" else post
        self._discard_body()
        if get or post:
            allowed = "GET" if get else "POST"
            self._error("INVALID_ARGUMENT", f"Method {method} is not allowed on {path}; use {allowed}.", status=405)
        else:
            # TF Serving answers any URL outside its API with INVALID_ARGUMENT "Malformed request".
            self._error("INVALID_ARGUMENT", f"Malformed request: {method} {path}")
        return None

    @staticmethod
    def _spec(match) -> tuple:
        version, label = match.group("version"), match.group("label")
        unquote = urllib.parse.unquote  # TF Serving URL-decodes the name and label after matching
        return unquote(match.group("name")), (int(version) if version is not None else None), (
            unquote(label) if label is not None else None
        )

    # ------------------------------------------------------------------------------------------ verbs

    def do_GET(self):  # noqa: N802 - http.server API
        if self.metrics is not None and self._path() == self.metrics.path:  # Prometheus (--monitoring-config)
            return self._send_metrics()
        match = self._route("GET")
        if match is None:
            return
        name, version, label = self._spec(match)
        try:
            if match.group("metadata"):
                body = messages.metadata_json(self.predictor.store.resolve(name, version, label))
            else:
                body = messages.status_json(self.predictor.store, name, version, label)
        except ServingError as exc:
            return self._error(exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - never kill the connection thread on a bug
            log.exception("status/metadata request failed")
            return self._error("INTERNAL", f"Internal error: {type(exc).__name__}: {exc}")
        self._send(200, body)

    def do_POST(self):  # noqa: N802 - http.server API
        match = self._route("POST")
        if match is None:
            return
        body = self._read_body()
        if body is None:
            return
        verb = match.group("verb").lower()
        if verb in ("classify", "regress"):
            return self._error("UNIMPLEMENTED", f"The {verb} API is not supported by this server; use :predict.")
        name, version, label = self._spec(match)
        try:
            self._send(200, self._predict(body["json"], name, version, label))
        except ServingError as exc:
            self._error(exc.code, exc.message)
        except RecursionError:
            self._error("INVALID_ARGUMENT", "Request inputs are nested too deeply.")
        except Exception as exc:  # noqa: BLE001 - never kill the connection thread on a bug
            log.exception("predict request failed")
            self._error("INTERNAL", f"Internal error: {type(exc).__name__}: {exc}")

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            self._error("INVALID_ARGUMENT", "Chunked request bodies are not supported; send a Content-Length.", status=411)
            return None
        length = self._content_length()
        if length < 0:
            self.close_connection = True
            self._error("INVALID_ARGUMENT", "Content-Length header must appear once, as a non-negative integer.")
            return None
        if length > self.max_body_bytes:
            self.close_connection = True  # the unread body must not be parsed as the next request
            self._error(
                "INVALID_ARGUMENT",
                f"Request body of {length} bytes exceeds this server's limit of {self.max_body_bytes} bytes.",
                status=413,
            )
            return None
        raw = self.rfile.read(length) if length else b""
        if not raw:
            self._error("INVALID_ARGUMENT", "Request body is empty; send a JSON object with 'instances' or 'inputs'.")
            return None
        try:
            return {"json": fastjson.loads(raw)}
        except (UnicodeDecodeError, ValueError) as exc:
            self._error("INVALID_ARGUMENT", f"Request body is not valid JSON: {exc}.")
            return None
        except RecursionError:
            self._error("INVALID_ARGUMENT", "Request body is JSON nested too deeply to parse.")
            return None

    def _predict(self, body, name, version, label) -> dict:
        lv = self.predictor.store.resolve(name, version, label)
        _, inputs, fmt, sig = parse_predict_request(body, lv.signature,
                                                    route=lambda sig, names: self.predictor.route(lv, sig, names))
        outputs = self.predictor.run(lv, sig, inputs)
        return predict_response(outputs, fmt, fast=True)

    def _not_allowed(self):
        self._route(self.command)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed


class _Server(ThreadingHTTPServer):
    """Threading HTTP server that can also close its open keep-alive connections on stop."""

    daemon_threads = True
    allow_reuse_address = True
    max_connections = 64  # set per server by RestServer; also the listen backlog

    def __init__(self, *args, **kwargs):
        self._open: set = set()
        self._open_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self.request_queue_size = self.max_connections
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        # Bounded threads: wait briefly for a slot (the accept loop pauses, the kernel backlog holds newcomers).
        if not self._slots.acquire(timeout=BUSY_WAIT_SECONDS):
            self._refuse_busy(request)
            return
        with self._open_lock:
            self._open.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse_busy(self, request) -> None:
        body = fastjson.dumps({"error": f"Server busy: all {self.max_connections} connections are in use; retry later."})
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n")
        try:
            request.settimeout(BUSY_WAIT_SECONDS)
            request.sendall(head.encode("utf-8") + body)
        except OSError:
            pass
        super().shutdown_request(request)

    def shutdown_request(self, request):
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # A client that hangs up mid-reply is routine; never print a traceback to the server's stderr.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_open_connections(self) -> None:
        with self._open_lock:
            open_now = list(self._open)
        for sock in open_now:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class RestServer:
    """The REST listener: binds at construction time of :meth:`start`, serves on a daemon thread.

    Args:
        predictor: request validation and model calls.
        host: address to bind (127.0.0.1 by default: loopback only).
        port: TCP port, 0 picks a free one (see :attr:`port`).
        max_body_bytes: largest accepted request body.
        metrics: a :class:`~tfaug.serving.monitoring.ServingMetrics` served at its ``path``, or None.
        timeout_seconds: a connection idle (or sending a request slowly) this long is closed (> 0).
        max_connections: most connections served at once (>= 1), also the listen backlog.
    """

    def __init__(self, predictor: Predictor, host: str = "127.0.0.1", port: int = 8501, max_body_bytes: int = 16 << 20,
                 metrics=None, timeout_seconds: float = 30.0, max_connections: int = 64):
        self.predictor, self.host, self.requested_port = predictor, host, int(port)
        self.metrics = metrics
        self.max_body_bytes = int(max_body_bytes)
        self.timeout_seconds, self.max_connections = float(timeout_seconds), int(max_connections)
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        return self._httpd.server_address[1] if self._httpd else None

    def start(self) -> None:
        handler = type("Handler", (_Handler,), {"predictor": self.predictor, "max_body_bytes": self.max_body_bytes,
                                            "metrics": self.metrics, "timeout": self.timeout_seconds})
        attrs = {"max_connections": self.max_connections}
        if ":" in self.host:
            attrs["address_family"] = socket.AF_INET6
        server_class = type("Server", (_Server,), attrs)
        try:
            self._httpd = server_class((self.host, self.requested_port), handler)
        except OSError as exc:
            raise TfaugError(
                f"Cannot listen for REST on {self.host}:{self.requested_port} ({exc.strerror or exc}); "
                "choose another --rest-port (0 picks a free one)."
            ) from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="tfaug-rest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd.close_open_connections()
            self._thread.join(timeout=10)
            self._httpd = self._thread = None
