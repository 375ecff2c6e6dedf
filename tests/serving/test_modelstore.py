"""ModelStore version policy and hot-reload rules, with a fake loader (no TensorFlow): issue 19.3 and 19.4."""
import os
import types

import pytest

from tfaug.serving.config import ModelSpec
from tfaug.serving.modelstore import ModelStore
from tfaug.serving.status import ServingError


class FakeLoader:
    """Loads a version dir unless it holds a file named ``broken``; records every load attempt."""

    def __init__(self):
        self.attempts = []

    def __call__(self, name, version, path):
        self.attempts.append(version)
        if (path / "broken").exists():
            raise ValueError(f"{path} is garbage")
        return types.SimpleNamespace(name=name, version=version, close=lambda: None)


def _version(base, v, broken=False):
    d = base / str(v)
    (d / "variables").mkdir(parents=True)
    (d / "saved_model.pb").write_bytes(b"pb")
    (d / "variables" / "variables.index").write_bytes(b"index")
    (d / "variables" / "variables.data-00000-of-00001").write_bytes(b"data")
    if broken:
        (d / "broken").write_bytes(b"x")
    return d


def _store(base, **policy):
    loader = FakeLoader()
    store = ModelStore(lambda: [ModelSpec(name="m", base_path=base, **policy)], poll_seconds=60, loader=loader)
    return store, loader


def test_deleting_the_serving_version_falls_back_to_the_highest_loadable_one(tmp_path):
    """v1, v2 valid, v4 garbage, v5 serving: deleting v5 must serve v2 (TF Serving's latest = highest that loads)."""
    import shutil

    for v, broken in ((1, False), (2, False), (4, True), (5, False)):
        _version(tmp_path, v, broken)
    store, _ = _store(tmp_path)
    store.poll_once()
    assert store.served() == {"m": [5]}
    shutil.rmtree(tmp_path / "5")
    store.poll_once()
    assert store.served() == {"m": [2]} and store.resolve("m").version == 2
    assert [row[:2] for row in store.status("m")] == [(4, "END"), (2, "AVAILABLE")]
    # A new good version takes over; the fallback goes only once it is loaded.
    _version(tmp_path, 6)
    store.poll_once()
    assert store.served() == {"m": [6]}


def test_the_only_loaded_version_stays_until_a_replacement_is_ready(tmp_path):
    import shutil

    _version(tmp_path, 1, broken=True)
    _version(tmp_path, 3)
    store, _ = _store(tmp_path)
    store.poll_once()
    assert store.served() == {"m": [3]}
    shutil.rmtree(tmp_path / "3")  # nothing else loads: keep serving v3 from memory
    store.poll_once()
    assert store.resolve("m").version == 3
    (tmp_path / "1" / "broken").unlink()  # v1 is repaired: it replaces v3
    store.poll_once()
    assert store.served() == {"m": [1]}


def test_latest_with_two_versions_skips_broken_ones(tmp_path):
    for v, broken in ((1, False), (2, False), (3, True)):
        _version(tmp_path, v, broken)
    store, _ = _store(tmp_path, num_versions=2)
    store.poll_once()
    assert store.served() == {"m": [1, 2]}


@pytest.mark.parametrize("changed", ["variables/variables.data-00000-of-00001", "assets/extra.txt", "saved_model.pb"])
def test_a_failed_version_is_retried_when_any_of_its_files_changes(tmp_path, changed):
    d = _version(tmp_path, 1, broken=True)
    store, loader = _store(tmp_path)
    store.poll_once()
    store.poll_once()
    assert loader.attempts == [1] and store.served() == {"m": []}  # unchanged: not retried
    dir_stat = d.stat()
    target = d / changed
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"completed data")  # size changes
    (d / "broken").unlink()
    os.utime(d, ns=(dir_stat.st_atime_ns, dir_stat.st_mtime_ns))  # only the file itself tells
    store.poll_once()
    assert loader.attempts == [1, 1] and store.served() == {"m": [1]}


def test_same_size_rewrite_is_noticed_by_mtime(tmp_path):
    d = _version(tmp_path, 1, broken=True)
    store, loader = _store(tmp_path)
    store.poll_once()
    data = d / "variables" / "variables.data-00000-of-00001"
    dir_stat, st = d.stat(), data.stat()
    (d / "broken").unlink()
    os.utime(d, ns=(dir_stat.st_atime_ns, dir_stat.st_mtime_ns))
    data.write_bytes(b"DATA")  # same size, new mtime
    os.utime(data, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    store.poll_once()
    assert loader.attempts == [1, 1] and store.served() == {"m": [1]}


def test_not_found_messages_do_not_list_other_models(tmp_path):
    _version(tmp_path, 1)
    store, _ = _store(tmp_path)
    store.poll_once()
    with pytest.raises(ServingError) as err:
        store.resolve("secret-probe")
    assert err.value.code == "NOT_FOUND" and "'m'" not in err.value.message and "served models" not in err.value.message
