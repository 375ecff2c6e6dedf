"""Quiet native TensorFlow logs (tfaug.utils.quiet): the line filter, the descriptor-2 redirect and the switch."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfaug.utils.quiet import is_noise, verbose_requested

ROOT = Path(__file__).resolve().parents[2]
# Lines TensorFlow 2.21 printed on this machine for `tfaug train-gan` (issue 20).
NOISE = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796426744.609860    7509 port.cc:153] oneDNN custom operations are on. You may see slightly "
    b"different numerical results due to floating-point round-off errors.",
    b"I0000 00:00:1796426744.614346    7509 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    b"not be used.",
    b"E0000 00:00:1796426750.638908    7509 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    b"call to cuInit: UNKNOWN ERROR (303)",
    b"E0000 00:00:1796426758.293229    7509 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: Mutation::Apply "
    b"error: fanout 'gradient_tape/x/LeakyReluGrad' exist for missing node 'x/BiasAdd'.",
    b"W1204 23:41:07.123456   12345 some_file.cc:42] a warning after InitializeLog",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow.",
]
KEPT = [b"tfaug train-gan: error: no training images", b"trained cdcgan on 50 images",
        b"F0000 00:00:1796426758.293229    7509 foo.cc:1] Check failed: a fatal line explains a crash",
        b"I0000 is not enough to look like a log line", b""]


@pytest.mark.parametrize("line", NOISE)
def test_native_log_lines_are_noise(line):
    assert is_noise(line) and is_noise(line + b"\n")


@pytest.mark.parametrize("line", KEPT)
def test_other_lines_are_kept(line):
    assert not is_noise(line)


def test_verbose_switch(monkeypatch):
    monkeypatch.delenv("TFAUG_VERBOSE", raising=False)
    assert not verbose_requested() and verbose_requested(True)
    for value, on in (("1", True), ("yes", True), ("0", False), ("", False)):
        monkeypatch.setenv("TFAUG_VERBOSE", value)
        assert verbose_requested() is on


_SCRIPT = r"""
import os, sys
from tfaug.utils.quiet import quiet_native_logs
f = quiet_native_logs()
os.write(2, NOISE + b"\nnative but not a log line\npartial")  # what C++ writes to descriptor 2
print("tfaug: a python line", file=sys.stderr)
print("to stdout")
if f is not None:
    f.stop()
print("after stop", file=sys.stderr)
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_descriptor_2_is_filtered_unless_verbose(verbose):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TFAUG_VERBOSE", None)
    if verbose:
        env["TFAUG_VERBOSE"] = "1"
    script = _SCRIPT.replace("NOISE", repr(b"\n".join(NOISE)))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "to stdout\n"
    for needle in ("tfaug: a python line", "native but not a log line", "partial", "after stop"):
        assert needle in r.stderr
    for needle in ("absl::InitializeLog", "oneDNN", "cuInit", "remapper failed", "To enable the following"):
        assert (needle in r.stderr) is verbose


def test_a_replaced_stderr_is_left_alone(capsys, monkeypatch):
    """Under pytest's capture (or in a notebook) sys.stderr is not descriptor 2: no redirect, nothing swallowed."""
    from tfaug.utils.quiet import owns_stderr, quiet_native_logs

    monkeypatch.delenv("TFAUG_VERBOSE", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    before = sys.stderr
    assert not owns_stderr() and quiet_native_logs() is None and sys.stderr is before
    print("still captured", file=sys.stderr)
    assert "still captured" in capsys.readouterr().err
