"""Smoke tests of the throughput benchmarks: they run end to end with tiny settings and write their tables.

Timings are never asserted (the machine is shared); shapes of the output, the parameter-count match of the
PyTorch twin and the analytic FLOP count are. PyTorch is optional (``make bench-install``): without it the
torch-only tests skip and the training benchmark must still run and say that it left PyTorch out.
"""
from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
HAVE_TORCH = importlib.util.find_spec("torch") is not None


def _load(name: str):
    """Import ``benchmarks/<name>.py`` (the benchmarks folder is not a package)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return __import__(name)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run a benchmark in a fresh Python (its thread settings need one) in its own process group, killed
    whole on timeout."""
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{args[0]} did not finish within {timeout} s")
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def test_layer_flops_match_hand_count():
    import keras

    tt = _load("train_throughput")
    x = keras.Input((8, 8, 2))
    y = keras.layers.Conv2D(4, 3, strides=2, padding="same")(x)  # out 4x4x4: 2*16*4*9*2 = 2304
    y = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same")(y)  # in 4x4x4: 2*16*4*16*3 = 6144
    y = keras.layers.Dense(5)(keras.layers.Flatten()(y))  # 8*8*3 -> 5: 2*192*5 = 1920
    assert tt.layer_flops(keras.Model(x, y)) == [2304, 6144, 1920]
    # G [10, 20], D [1, 2]: per image 3*30 - 10 + 8*3 - 2*1 = 102
    assert tt.step_flops([10, 20], [1, 2], batch=4) == 408


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed (make bench-install)")
def test_torch_twin_has_tfaug_parameter_counts_and_trains():
    import torch

    from tfaug.models.networks.discriminators import build_discriminator
    from tfaug.models.networks.generators import build_generator

    tc = _load("torch_cdcgan")
    for shape, width in [((28, 28, 1), 8), ((8, 8, 1), 4)]:
        g = build_generator(shape, 10, z_dim=16, width=width)
        d = build_discriminator(shape, 10, width=width)
        model = tc.TorchCDCGAN(shape, 10, z_dim=16, width=width, seed=0)
        counts = model.parameter_counts()
        assert counts["generator"] == sum(int(np.prod(v.shape)) for v in g.trainable_weights)
        assert counts["discriminator"] == sum(int(np.prod(v.shape)) for v in d.trainable_weights)
    before = [p.detach().clone() for p in model.ema_generator.parameters()]
    real = torch.rand(6, 1, 8, 8) * 2 - 1
    logs = model.train_step(real, torch.tensor([0, 0, 1, 1, 2, 2]))
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.ema_generator.parameters()))


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed (make bench-install)")
def test_torch_diffaugment_matches_tfaug_conventions():
    import torch

    tc = _load("torch_cdcgan")
    torch.manual_seed(0)
    x = torch.ones(32, 1, 8, 8)
    shifted = tc.rand_translation(x)  # shifts of at most round(8 / 8) = 1 pixel, zero fill
    assert set(shifted.unique().tolist()) <= {0.0, 1.0}
    assert int((shifted == 0).sum(dim=(1, 2, 3)).max()) <= 15 and int((shifted == 0).sum()) > 0
    cut = tc.rand_cutout(x)  # a 4x4 square, possibly cut by the border
    zeros = (cut == 0).sum(dim=(1, 2, 3))
    assert int(zeros.max()) == 16 and int(zeros.min()) >= 4
    same = tc.mode_seeking_loss(torch.zeros(4, 3), torch.randn(4, 2), torch.tensor([0, 0, 1, 1]))
    assert float(same) > 1e3  # collapsed generator: 1 / (0 + eps)-ish


def test_train_throughput_quick_runs_and_writes_tables(tmp_path):
    out = tmp_path / "train.md"
    res = _run(["benchmarks/train_throughput.py", "--quick", "--threads", "1", "--onednn", "on", "--image-size", "8",
                "--matmul-size", "128", "--precision", "both", "--out", str(out)], timeout=400)
    assert res.returncode == 0, res.stderr[-3000:]
    text = out.read_text()
    for row in ("float32 matmul peak", "bfloat16 matmul peak", "train step (tf.function, as gan_runner) | tfaug | "
                "float32", "train step (tf.function, as gan_runner) | tfaug | bf16", "train step, XLA",
                "input pipeline alone", "part: G forward+backward", "part: EMA update"):
        assert row in text and row in res.stdout
    assert "1 thread(s) per framework; TF_ENABLE_ONEDNN_OPTS=1" in text and "load average (1/5/15 min)" in text
    assert "Precision: --precision both." in text and "tfaug bf16 / float32 training images/s" in text
    data = json.loads(out.with_suffix(".json").read_text())
    assert data["info"]["flops"] > 0 and data["info"]["retraces"] == 1 and data["precisions"] == ["float32", "bf16"]
    assert {"cpu_model", "cpu_flags"} <= set(data["hardware"]) and data["ratios"]["bf16_over_float32_tfaug"] > 0
    if HAVE_TORCH:
        assert "train step (eager PyTorch)" in text and data["tfaug_over_torch"] > 0
        assert data["ratios"]["tfaug_over_torch_bf16"] > 0
        assert data["info"]["torch_g_params"] == data["info"]["g_params"]
    else:
        assert "PyTorch is not installed" in res.stdout and data["tfaug_over_torch"] is None


def test_generation_throughput_quick_in_process_rest_grpc(tmp_path, capsys):
    gt = _load("generation_throughput")
    out = tmp_path / "gen.md"
    assert gt.main(["--quick", "--train-steps", "0", "--batch-sizes", "1,3", "--requests", "3",
                    "--out", str(out)]) == 0
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [(r["path"], r["batch"]) for r in rows] == [(p, b) for p in ("in-process", "REST", "gRPC") for b in (1, 3)]
    assert all(r["requests"] >= 1 and r["images_per_s"] > 0 and r["p95_ms"] >= r["p50_ms"] > 0 for r in rows)
    assert "| gRPC | 3 |" in out.read_text() and "| REST | 1 |" in capsys.readouterr().out
