"""Hot reload: a new version is picked up while requests flow (none fail); a broken one never replaces it."""
import os
import shutil
import threading
import time

import numpy as np

BODY = {"inputs": {"class_id": [0, 1, 2], "seed": [11, 12, 13]}}


def _wait_for(predicate, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _states(rest):
    status, body = rest("/v1/models/hot")
    return {r["version"]: r["state"] for r in body["model_version_status"]} if status == 200 else {}


def _publish_copy(src, dst):
    """Publish ``src`` as version dir ``dst`` the way export does: hidden temp dir, then rename."""
    tmp = dst.parent / f".{dst.name}.tmp-test"
    shutil.copytree(src, tmp)
    os.rename(tmp, dst)


def test_new_version_hot_swapped_without_failed_requests_and_broken_one_ignored(
    model_server, rest, grpc_stubs, serving_helpers
):
    export_tiny_generator = serving_helpers.export_tiny_generator
    in_process_images = serving_helpers.in_process_images
    from tensorflow_serving.apis import get_model_status_pb2

    models = model_server.models
    hot = models.hot_base
    assert rest("/v1/models/hot")[0] == 404  # configured, but no version yet
    _publish_copy(models.toy_path, hot / "1")
    _wait_for(lambda: _states(rest) == {"1": "AVAILABLE"}, "version 1 of 'hot'")
    v1 = in_process_images(models.toy_path, [0, 1, 2], [11, 12, 13])

    results, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            status, body = rest("/v1/models/hot:predict", BODY)
            results.append((status, np.array(body["outputs"]["images"], np.uint8) if status == 200 else body))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        v2_path = export_tiny_generator(hot.parent, "hot", version=2, seed=1)  # published while requests flow
        v2 = in_process_images(v2_path, [0, 1, 2], [11, 12, 13])
        assert not np.array_equal(v1, v2)
        _wait_for(lambda: any(s == 200 and np.array_equal(img, v2) for s, img in results[-3:]), "requests served by v2")
        (hot / ".3.tmp-broken").mkdir()
        (hot / ".3.tmp-broken" / "saved_model.pb").write_bytes(b"not a SavedModel")
        os.rename(hot / ".3.tmp-broken", hot / "3")
        _wait_for(lambda: _states(rest).get("3") == "END", "version 3 to be tried")
        n = len(results)
        _wait_for(lambda: len(results) > n + 3, "more requests after the broken version")
    finally:
        stop.set()
        thread.join(timeout=60)

    failures = [r for s, r in results if s != 200]
    assert not failures, failures[:3]
    served = [("v1" if np.array_equal(img, v1) else "v2" if np.array_equal(img, v2) else "?") for _, img in results]
    assert "?" not in served and served[0] == "v1" and served[-1] == "v2"
    assert "v1" not in served[served.index("v2"):]  # a clean switch, never back
    status, body = rest("/v1/models/hot")
    rows = {r["version"]: r for r in body["model_version_status"]}
    assert set(rows) == {"3", "2"}  # latest{1}: v1 unloaded once v2 was available
    assert rows["2"]["state"] == "AVAILABLE"
    assert rows["3"]["state"] == "END" and rows["3"]["status"]["error_code"] == "UNKNOWN"
    assert rows["3"]["status"]["error_message"]
    assert rest("/v1/models/hot/versions/3:predict", BODY)[0] == 404
    assert rest("/v1/models/hot/versions/2:predict", BODY)[0] == 200
    req = get_model_status_pb2.GetModelStatusRequest()
    req.model_spec.name = "hot"
    states = {s.version: s.state for s in grpc_stubs.model.GetModelStatus(req, timeout=30).model_version_status}
    assert states == {3: get_model_status_pb2.ModelVersionStatus.END, 2: get_model_status_pb2.ModelVersionStatus.AVAILABLE}
