"""Shared fixtures: quiet TensorFlow, seeded tiny datasets, the optional shared MNIST file, and the one
mirrored-strategy subprocess shared by the distribution tests."""
import json
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TFAUG_NO_DOWNLOAD", "1")  # tests never reach for the network
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import pytest

from tests_helpers import toy_images  # noqa: F401  (re-exported for tests)

MNIST10K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist10k.npz"
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def mnist10k_path():
    """Path of ../shared/data/mnist10k.npz; the test is skipped when the file is absent (end users lack it)."""
    if not MNIST10K.exists():
        pytest.skip(f"shared MNIST sample not found at {MNIST10K}")
    return MNIST10K


@pytest.fixture
def toy():
    """(images uint8 [60, 8, 8, 1], labels int32 [60]) with 3 separable classes."""
    return toy_images()


@pytest.fixture(scope="session")
def mirrored_check(tmp_path_factory):
    """``(RESULT dict, run directory, CLI run directory)`` of tests/training/mirrored_check.py, run once per
    session in a fresh Python: the CPU must be split into 2 logical devices before TensorFlow initialises, which
    this process has already done. Its GAN-step part is read by tests/training/test_distribute.py, its
    ``classifier`` part by tests/training/test_classifier_runtime.py, its ``cli`` part by tests/test_cli_runtime.py;
    one interpreter (one TensorFlow import) serves the three.

    Under pytest-xdist (``make test`` runs 2 workers) the workers share one run: the first to take the file lock in
    the session's common temporary directory runs the script and the others read its result."""
    import fcntl

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    base = tmp_path_factory.getbasetemp()
    base = (base.parent if worker else base) / "mirrored-shared"
    base.mkdir(parents=True, exist_ok=True)
    run, cli_out, done = base / "run", base / "clf", base / "result.json"
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)]),
                   "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
            env.pop("TF_CONFIG", None)
            proc = subprocess.run([sys.executable, str(TESTS / "training" / "mirrored_check.py"), str(run),
                                   str(cli_out)], capture_output=True, text=True, timeout=600, env=env, cwd=TESTS.parent)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            assert proc.returncode == 0 and lines, proc.stdout[-2000:] + proc.stderr[-4000:]
            done.write_text(lines[-1][len("RESULT "):])
    return json.loads(done.read_text()), run, cli_out
