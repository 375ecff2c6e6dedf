"""models.config parsing, version policies and labels, the model store's reconcile rules, and `tfaug serve`."""
from pathlib import Path

import pytest

from tfaug.errors import TfaugError
from tfaug.serving.config import ModelSpec, parse_model_config, read_model_config, scan_model_base
from tfaug.serving.modelstore import ModelStore
from tfaug.serving.status import ServingError

CONFIG = """
model_config_list {
  config { name: "a" base_path: "models/a" model_platform: "tensorflow" }
  config { name: "b" base_path: "/abs/b" model_version_policy { latest { num_versions: 2 } } }
  config { name: "c" base_path: "c" model_version_policy { specific { versions: 1 versions: 3 } }
           version_labels { key: "stable" value: 1 } version_labels { key: "canary" value: 3 } }
  config { name: "d" base_path: "d" model_version_policy { all {} } }
}
"""


def test_parse_policies_labels_and_relative_paths(tmp_path):
    a, b, c, d = parse_model_config(CONFIG, tmp_path)
    assert a.base_path == (tmp_path / "models" / "a").resolve() and b.base_path == Path("/abs/b")
    assert (a.policy, a.num_versions, b.policy, b.num_versions) == ("latest", 1, "latest", 2)
    assert c.policy == "specific" and c.versions == (1, 3) and c.labels == {"stable": 1, "canary": 3}
    present = [1, 2, 3, 5]
    assert a.wanted(present) == [5] and b.wanted(present) == [3, 5]
    assert c.wanted(present) == [1, 3] and d.wanted(present) == present and a.wanted([]) == []


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("model_config_list { config { name: 'a' base_path: 'x' model_platform: 'onnx' } }", "only 'tensorflow'"),
        ("model_config_list { config { name: 'a' base_path: 'x' } config { name: 'a' base_path: 'y' } }", "more than once"),
        ("model_config_list { config { base_path: 'x' } }", "without a name"),
        ("model_config_list { config { name: 'a' } }", "no base_path"),
        ("model_config_list { config { name: 'a' base_path: 'x' ", "not a valid ModelServerConfig"),
        ("", "no model_config_list"),
    ],
)
def test_bad_configs_are_one_sentence_errors(tmp_path, text, fragment):
    with pytest.raises(TfaugError, match=fragment):
        parse_model_config(text, tmp_path)


def test_missing_files_and_model_base_scan(tmp_path):
    with pytest.raises(TfaugError, match="does not exist"):
        read_model_config(tmp_path / "nope.config")
    with pytest.raises(TfaugError, match="does not exist"):
        scan_model_base(tmp_path / "nope")
    for d in ["m1", "m2", ".hidden"]:
        (tmp_path / d).mkdir()
    (tmp_path / "file.txt").write_text("x")
    assert [s.name for s in scan_model_base(tmp_path)] == ["m1", "m2"]


def _fake_version_dir(base: Path, v: int, ok: bool = True):
    (base / str(v)).mkdir(parents=True)
    (base / str(v) / "saved_model.pb").write_bytes(b"ok" if ok else b"broken")


def test_store_reconcile_is_availability_preserving(tmp_path):
    """Fake loader: versions whose saved_model.pb says 'broken' fail; the policy and labels are applied."""

    def loader(name, version, path):
        if (path / "saved_model.pb").read_bytes() != b"ok":
            raise ValueError("corrupt")
        return type("LV", (), {"name": name, "version": version, "close": lambda self: None})()

    spec = ModelSpec(name="m", base_path=tmp_path, labels={"stable": 1, "next": 2})
    store = ModelStore(lambda: [spec], loader=loader)
    store.poll_once()
    with pytest.raises(ServingError, match="no version available") as info:
        store.resolve("m")
    assert info.value.code == "NOT_FOUND"
    _fake_version_dir(tmp_path, 1)
    (tmp_path / "7").mkdir()  # no saved_model.pb yet (copy in progress): not ready, not an error
    store.poll_once()
    assert store.resolve("m").version == 1 and store.resolve("m", label="stable").version == 1
    _fake_version_dir(tmp_path, 2, ok=False)
    store.poll_once()
    assert store.resolve("m").version == 1  # the broken newer version does not take the model down
    assert store.status("m") == [(2, "END", "UNKNOWN", "ValueError: corrupt"), (1, "AVAILABLE", "OK", "")]
    with pytest.raises(ServingError, match="not available"):
        store.resolve("m", label="next")
    (tmp_path / "2" / "saved_model.pb").write_bytes(b"ok")  # fixed in place: retried
    __import__("os").utime(tmp_path / "2" / "saved_model.pb", ns=(1, 1))
    store.poll_once()
    assert store.status("m") == [(2, "AVAILABLE", "OK", "")]  # latest{1}: v1 unloaded once v2 is available
    for bad in [dict(version=5), dict(label="nope")]:
        with pytest.raises(ServingError) as info:
            store.resolve("m", **bad)
        assert info.value.code == "NOT_FOUND"
    with pytest.raises(ServingError, match="not served"):
        store.status("x")


def test_tfaug_serve_bad_config_exits_2_with_one_line(tmp_path, capsys):
    from tfaug.serving.cli import add_parsers, serve  # noqa: F401 - the module the CLI registers

    from tfaug.cli import EXTENSIONS, main

    assert "tfaug.serving.cli" in EXTENSIONS
    assert main(["serve", "--config", str(tmp_path / "missing.config")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfaug serve: error:") and "missing.config" in err and len(err.splitlines()) == 1
    (tmp_path / "bad.config").write_text("model_config_list {")
    assert main(["serve", "--config", str(tmp_path / "bad.config")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["serve", "--model-base", str(tmp_path / "nope"), "--rest-port", "0"]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["serve", "--model-base", str(tmp_path), "--rest-port", "70000"])
    assert info.value.code == 2


def test_tfaug_serve_runs_until_ctrl_c_and_exits_0(serving_models):
    import os
    import signal
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "tfaug", "serve", "--model-base", str(serving_models.base), "--rest-port", "0",
           "--grpc-port", "0", "--poll-seconds", "5"]
    # A terminal's Ctrl-C: SIGINT handled by default in the child even when this test runs as a background job
    # (which inherits SIGINT ignored, and Python then keeps ignoring it).
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        lines, deadline = [], time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if "press Ctrl-C" in line:
                break
        assert any(l.startswith("tfaug serve: REST  http://127.0.0.1:") for l in lines), lines
        assert "tfaug serve: model toy: version(s) 1" in lines
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and "tfaug serve: stopped" in err


def test_tfaug_serve_passes_the_limit_flags(tmp_path, monkeypatch, capsys):
    """--max-grpc-message-bytes, --rest-timeout-seconds and --rest-max-connections reach the ServerConfig."""
    from tfaug.cli import main
    from tfaug.errors import TfaugError
    from tfaug.serving.server import LocalModelServer

    seen = {}

    def fake_start(self):
        seen["config"] = self.config
        raise TfaugError("stop here")

    monkeypatch.setattr(LocalModelServer, "start", fake_start)
    assert main(["serve", "--model-base", str(tmp_path), "--max-grpc-message-bytes", "4096",
                 "--rest-timeout-seconds", "2.5", "--rest-max-connections", "3", "--max-images-per-request", "8"]) == 2
    cfg = seen["config"]
    assert (cfg.grpc_max_message_bytes, cfg.rest_timeout_seconds, cfg.rest_max_connections) == (4096, 2.5, 3)
    assert main(["serve", "--model-base", str(tmp_path), "--max-images-per-request", "8"]) == 2
    assert seen["config"].grpc_max_message_bytes == 8 * (16 << 10) + (1 << 20)  # the default follows the image cap
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["serve", "--model-base", str(tmp_path), "--rest-max-connections", "0"])
    assert info.value.code == 2
