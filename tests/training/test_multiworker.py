"""Two-worker MultiWorkerMirroredStrategy on 127.0.0.1: a few cdcgan steps through train_gan, and exactly one run
directory (the chief's) is written. Two subprocesses, bounded by a timeout and killed on failure."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 150


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_two_workers_train_and_only_the_chief_writes(tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    outs = [tmp_path / "chief_run", tmp_path / "worker1_run"]
    procs = []
    try:
        for i in range(2):
            env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
                   "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})}
            procs.append(subprocess.Popen([sys.executable, str(ROOT / "tests/training/multiworker_check.py"),
                                           str(outs[i])], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env=env, cwd=ROOT))
        results = [p.communicate(timeout=TIMEOUT_S) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    for (out, err), p in zip(results, procs):
        assert p.returncode == 0 and "DONE step=3 finite=True" in out, out[-1000:] + err[-3000:]
    chief, other = outs
    assert (chief / "checkpoints" / "generator.keras").is_file()
    assert json.loads((chief / "checkpoints" / "last" / "state.json").read_text()) == {"step": 3, "finished": True}
    assert json.loads((chief / "config.json").read_text())["runtime"]["strategy"] == "multiworker"
    assert len((chief / "history.jsonl").read_text().splitlines()) == 3
    assert not other.exists()  # worker 1 wrote only to a scratch directory, now deleted
