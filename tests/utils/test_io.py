import os

import numpy as np
import pytest

from tfaug.utils.images import make_grid, to_float, to_uint8
from tfaug.utils.io import append_jsonl, atomic_directory, atomic_write_text, read_jsonl


def test_atomic_write_leaves_no_temp_files(tmp_path):
    p = atomic_write_text(tmp_path / "a" / "f.txt", "hello")
    assert p.read_text() == "hello"
    assert os.listdir(tmp_path / "a") == ["f.txt"]


def test_atomic_directory_publishes_only_on_success(tmp_path):
    final = tmp_path / "m" / "1"
    with pytest.raises(RuntimeError):
        with atomic_directory(final) as tmp:
            (tmp / "x").write_text("partial")
            raise RuntimeError("crash")
    assert not final.exists() and os.listdir(tmp_path / "m") == []
    with atomic_directory(final) as tmp:
        (tmp / "x").write_text("ok")
    assert (final / "x").read_text() == "ok"
    with pytest.raises(FileExistsError):
        with atomic_directory(final):
            pass


def test_jsonl_ignores_truncated_last_line(tmp_path):
    p = tmp_path / "h.jsonl"
    append_jsonl(p, {"step": 1})
    with open(p, "a") as f:
        f.write('{"step": 2, "d_lo')
    assert read_jsonl(p) == [{"step": 1}]


def test_uint8_float_round_trip_and_grid():
    x = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)
    assert np.array_equal(to_uint8(to_float(x)), x)
    assert to_float(x).min() == -1.0 and to_float(x).max() == 1.0
    g = make_grid(x, ncols=2, pad=1)
    assert g.shape == (2 * 9 + 1, 2 * 9 + 1, 1)


def test_outputs_are_not_private(tmp_path):
    """Atomic writes must not leave 0600/0700 files (a TF Serving container runs as another user)."""
    mask = os.umask(0o022)
    try:
        p = atomic_write_text(tmp_path / "f.txt", "x")
        with atomic_directory(tmp_path / "d") as tmp:
            (tmp / "a").write_text("y")
    finally:
        os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_portable_text_and_scrub_paths_drop_local_directories():
    from tfaug.utils.io import portable_text, scrub_paths

    assert portable_text("/home/ann/runs/pets-gan") == "pets-gan"
    assert portable_text("folder:/home/ann/pets/") == "folder:pets"
    assert portable_text("npz:~/data/x.npz") == "npz:x.npz"
    assert portable_text("C:") == "C:"  # not absolute on POSIX: kept
    for kept in ("digits", "tfds:mnist:test", "folder:pets", "cdcgan", "a/b", ""):
        assert portable_text(kept) == kept
    meta = {"run_dir": "/tmp/x/run", "n": 3, "nested": [{"spec": "folder:/srv/scans"}, 1.5, None, True]}
    assert scrub_paths(meta) == {"run_dir": "run", "n": 3, "nested": [{"spec": "folder:scans"}, 1.5, None, True]}
