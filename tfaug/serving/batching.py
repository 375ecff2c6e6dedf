"""Server-side batching: merge concurrent predict requests for one model version + signature.

A :class:`Batcher` owns one worker thread. Request threads :meth:`~Batcher.submit` their input arrays and
block; the worker takes the first queued request, keeps collecting queued requests for at most
``timeout_ms`` or until ``max_batch_size`` rows, concatenates them along the batch axis, runs the model once
and splits every output back by row counts. Requests with more rows than ``max_batch_size`` run alone.
If a merged batch fails, its requests are retried one by one so an error reaches only the request that
caused it. Generator images depend only on (class_id, seed), so merging never changes an image.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Callable

import numpy as np

__all__ = ["BatchingOptions", "BatchStats", "Batcher"]


@dataclasses.dataclass
class BatchingOptions:
    """Mutable batching knobs shared by every batcher of a server (read on every batch).

    Attributes:
        max_batch_size: most rows one model call may hold (>= 1).
        timeout_ms: longest time the worker waits for more requests before running a batch (>= 0). The default 0
            batches opportunistically: a batch holds the requests that queued while the model ran the previous
            one, and a lone request never waits (TF Serving's batching guide starts from 0; Ray Serve's default).
            On the 2-core Xeon with 4 clients, 5 ms gave one-image requests a p99 of 2.8-2.9x in-process, 0 gave
            1.7-2.0x over gRPC and 1.9-4.3x over REST; 5 ms merged more at 16 images per request over gRPC (0.81 of
            in-process images/s against 0.70-0.73; benchmarks/results/serving.md).
    """

    max_batch_size: int = 64
    timeout_ms: float = 0.0


class BatchStats:
    """Thread-safe counters: requests, model calls (batches), merged batches (> 1 request), rows."""

    def __init__(self):
        self._lock = threading.Lock()
        self.requests = self.batches = self.merged_batches = self.merged_requests = self.rows = 0
        self.largest_batch_rows = 0

    def record(self, requests: int, rows: int) -> None:
        with self._lock:
            self.requests += requests
            self.batches += 1
            self.rows += rows
            self.largest_batch_rows = max(self.largest_batch_rows, rows)
            if requests > 1:
                self.merged_batches += 1
                self.merged_requests += requests

    def as_dict(self) -> dict:
        with self._lock:
            return {
                "requests": self.requests,
                "batches": self.batches,
                "merged_batches": self.merged_batches,
                "merged_requests": self.merged_requests,
                "rows": self.rows,
                "largest_batch_rows": self.largest_batch_rows,
            }


_CLOSED = object()  # the close() sentinel, seen while collecting a batch


class _Task:
    __slots__ = ("inputs", "rows", "done", "result", "error")

    def __init__(self, inputs: dict, rows: int):
        self.inputs, self.rows = inputs, rows
        self.done = threading.Event()
        self.result = self.error = None


class Batcher:
    """Runs ``fn(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]`` on merged batches on a worker thread.

    Args:
        fn: the model call; every output must keep the batch dimension to be split (else requests run alone).
        options: shared :class:`BatchingOptions`.
        stats: shared :class:`BatchStats`.
        name: worker thread name.
    """

    def __init__(self, fn: Callable[[dict], dict], options: BatchingOptions, stats: BatchStats, name: str = "batcher"):
        self._fn, self._options, self._stats = fn, options, stats
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name=f"tfaug-batcher-{name}", daemon=True)
        self._thread.start()

    def submit(self, inputs: dict, rows: int) -> dict:
        """Queue one request of ``rows`` rows and wait for its outputs (exceptions are re-raised here)."""
        task = _Task(inputs, rows)
        with self._lock:
            closed = self._closed
            if not closed:
                self._queue.put(task)
        if closed:  # the version was unloaded after this request resolved it: still answer, inline
            self._run([task])
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.result

    def close(self) -> None:
        """Stop the worker after the requests already queued."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)

    def _work(self) -> None:
        carry = None  # a request that did not fit into the previous batch
        while True:
            task = carry if carry is not None else self._queue.get()
            carry = None
            if task is None:  # closed: everything queued before close() has been answered
                return
            batch, rows = [task], task.rows
            limit = max(int(self._options.max_batch_size), 1)
            deadline = time.monotonic() + max(float(self._options.timeout_ms), 0.0) / 1000.0
            while rows < limit:
                try:
                    nxt = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if nxt is None or rows + nxt.rows > limit:
                    carry = nxt if nxt is not None else _CLOSED
                    break
                batch.append(nxt)
                rows += nxt.rows
            self._run(batch)
            if carry is _CLOSED:
                return

    def _run(self, batch: list) -> None:
        if len(batch) > 1:
            try:
                names = list(batch[0].inputs)
                merged = {k: np.concatenate([t.inputs[k] for t in batch], axis=0) for k in names}
                outputs = self._fn(merged)
                total = sum(t.rows for t in batch)
                if all(np.ndim(v) >= 1 and np.shape(v)[0] == total for v in outputs.values()):
                    self._stats.record(len(batch), total)
                    start = 0
                    for t in batch:
                        t.result = {k: v[start : start + t.rows] for k, v in outputs.items()}
                        start += t.rows
                        t.done.set()
                    return
            except Exception:  # noqa: BLE001 - rerun one by one so the error reaches only its own request
                pass
        for t in batch:
            try:
                t.result = self._fn(t.inputs)
                self._stats.record(1, t.rows)
            except Exception as exc:  # noqa: BLE001 - handed to the waiting request thread
                t.error = exc
            finally:
                t.done.set()
