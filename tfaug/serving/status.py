"""Request errors with TF Serving's canonical codes, and their HTTP / gRPC equivalents.

A :class:`ServingError` carries a gRPC status code name (``"NOT_FOUND"``, ``"INVALID_ARGUMENT"`` ...) and one
sentence. The REST front end turns it into ``{"error": message}`` with the HTTP status TF Serving uses for that
code (``tensorflow_serving/util/net_http`` mapping); the gRPC front end aborts the call with the same code.
No TensorFlow or grpc imports here.
"""
from __future__ import annotations

from tfaug.errors import TfaugError

__all__ = ["ServingError", "HTTP_STATUS", "http_status"]

# TF Serving's ToHTTPStatusCode: canonical error code -> HTTP status.
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class ServingError(TfaugError):
    """A request the server refuses, with a canonical code name (see :data:`HTTP_STATUS`) and one sentence."""

    def __init__(self, code: str, message: str):
        if code not in HTTP_STATUS or code == "OK":
            raise ValueError(f"not an error code: {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message


def http_status(code: str) -> int:
    """HTTP status for a canonical code name (500 for anything unknown)."""
    return HTTP_STATUS.get(code, 500)
