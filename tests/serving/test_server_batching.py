"""Server-side batching: merged requests give the same images as sequential ones, and merging really happens."""
import threading
import time

import numpy as np
import pytest

from tfaug.serving.batching import Batcher, BatchingOptions, BatchStats


def _concurrently(n, fn):
    barrier, out, errors = threading.Barrier(n), [None] * n, []

    def run(i):
        barrier.wait()
        try:
            out[i] = fn(i)
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out, errors


def test_batcher_merges_splits_and_isolates_errors():
    calls = []

    def fn(inputs):
        x = inputs["x"]
        calls.append(len(x))
        if (x < 0).any():
            raise ValueError("negative input")
        return {"y": x * 2, "x": x}

    stats = BatchStats()
    batcher = Batcher(fn, BatchingOptions(max_batch_size=16, timeout_ms=300), stats)
    try:
        out, errors = _concurrently(6, lambda i: batcher.submit({"x": np.arange(i, i + 2) * (-1 if i == 3 else 1)}, 2))
        assert len(errors) == 1 and "negative" in str(errors[0])  # only the bad request fails
        for i, res in enumerate(out):
            if i != 3:
                np.testing.assert_array_equal(res["y"], np.arange(i, i + 2) * 2)
        assert max(calls) > 2 and stats.merged_batches == 0  # merge tried, failed, retried one by one
        out, errors = _concurrently(6, lambda i: batcher.submit({"x": np.arange(i, i + 2)}, 2))
        assert not errors and stats.merged_batches >= 1 and stats.merged_requests >= 2
        for i, res in enumerate(out):
            np.testing.assert_array_equal(res["y"], np.arange(i, i + 2) * 2)
        calls.clear()
        big = batcher.submit({"x": np.arange(40)}, 40)  # above max_batch_size: runs alone, in one call
        assert calls == [40] and big["y"].shape == (40,)
    finally:
        batcher.close()
    closed = batcher.submit({"x": np.arange(3)}, 3)  # after close: still answered (inline)
    np.testing.assert_array_equal(closed["y"], np.arange(3) * 2)


def test_concurrent_server_requests_are_merged_without_changing_images(model_server, rest, grpc_stubs, grpc_request,
                                                                      toy_reference):
    import tensorflow as tf

    server = model_server.server
    rng = np.random.default_rng(0)
    sizes = (1, 3, 2, 5, 1, 4, 2, 3)
    jobs = [(rng.integers(0, 3, size=k).tolist(), rng.integers(-2**40, 2**40, size=k).tolist()) for k in sizes]
    sequential = [toy_reference(c, s) for c, s in jobs]

    def request(i):
        cls, seeds = jobs[i]
        if i % 2:
            resp = grpc_stubs.predict.Predict(grpc_request("toy", cls, seeds), timeout=60)
            return tf.make_ndarray(resp.outputs["images"])
        status, body = rest("/v1/models/toy:predict", {"inputs": {"class_id": cls, "seed": seeds}})
        assert status == 200, body
        return np.array(body["outputs"]["images"], np.uint8)

    before = server.stats()
    saved = server.batching.timeout_ms
    server.batching.timeout_ms = 300  # a wide window so the concurrent requests certainly meet
    try:
        out, errors = _concurrently(len(jobs), request)
    finally:
        server.batching.timeout_ms = saved
    assert not errors
    for got, want in zip(out, sequential):
        np.testing.assert_array_equal(got, want)
    after = server.stats()
    assert after["merged_batches"] > before["merged_batches"]
    assert after["requests"] - before["requests"] == len(jobs)
    assert after["batches"] - before["batches"] < len(jobs)


@pytest.mark.parametrize("max_batch_size", [1, 3])
def test_batch_size_limit_is_respected(max_batch_size):
    calls = []

    def fn(inputs):
        calls.append(len(inputs["x"]))
        return {"x": inputs["x"]}

    batcher = Batcher(fn, BatchingOptions(max_batch_size=max_batch_size, timeout_ms=100), BatchStats())
    try:
        out, errors = _concurrently(5, lambda i: batcher.submit({"x": np.array([i])}, 1))
    finally:
        batcher.close()
    assert not errors and sorted(int(o["x"][0]) for o in out) == list(range(5))
    assert max(calls) <= max_batch_size and sum(calls) == 5


def test_default_batching_is_opportunistic():
    """Timeout 0 (the default): requests that queue while the model runs form the next batch; a lone request
    runs at once, alone."""
    assert BatchingOptions().timeout_ms == 0
    running, release, sizes = threading.Event(), threading.Event(), []

    def fn(inputs):
        sizes.append(len(inputs["x"]))
        if len(sizes) == 1:  # the first call holds the model until the others have queued
            running.set()
            assert release.wait(30)
        return {"y": inputs["x"] + 1}

    stats = BatchStats()
    batcher = Batcher(fn, BatchingOptions(), stats)
    try:
        first = threading.Thread(target=batcher.submit, args=({"x": np.zeros(1)}, 1))
        first.start()
        assert running.wait(30)
        out = [None] * 3
        threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, batcher.submit({"x": np.full(2, i)}, 2)))
                   for i in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while batcher._queue.qsize() < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        for t in (first, *threads):
            t.join(30)
        assert sizes == [1, 6] and stats.merged_batches == 1  # the three queued requests ran as one batch
        for i in range(3):
            np.testing.assert_array_equal(out[i]["y"], np.full(2, i) + 1)
        assert batcher.submit({"x": np.zeros(4)}, 4)["y"].shape == (4,) and sizes[-1] == 4  # lone: alone
    finally:
        batcher.close()
