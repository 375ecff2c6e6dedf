"""tfaug.training.distribute: strategies, global batch, chief, and one step under MirroredStrategy == one step on
one device (subprocess: the CPU must be split into 2 logical devices before TensorFlow initialises)."""
import json

import pytest

from tfaug.config import RuntimeConfig
from tfaug.errors import TfaugError
from tfaug.training import distribute

TOL = 1e-5


class _FakeStrategy:
    def __init__(self, n):
        self.num_replicas_in_sync = n


def test_global_batch_must_divide_by_replicas():
    assert distribute.check_global_batch(8, _FakeStrategy(2)) == 4
    with pytest.raises(TfaugError, match="global batch size 7 must be divisible by the 2 replicas"):
        distribute.check_global_batch(7, _FakeStrategy(2))


def test_multiworker_without_tf_config_is_one_clear_error(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TfaugError, match="needs the TF_CONFIG environment variable"):
        distribute.make_strategy(RuntimeConfig(strategy="multiworker"))


@pytest.mark.parametrize("tf_config, chief", [
    (None, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
])
def test_is_chief(monkeypatch, tf_config, chief):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert distribute.is_chief() is chief


def test_batchnorm_untouched_on_one_replica():
    import keras

    net = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization()])
    assert distribute.synchronize_batchnorm([net], _FakeStrategy(1)) == 0
    assert distribute.synchronize_batchnorm([net], _FakeStrategy(2)) == 1
    assert net.layers[0].synchronized


def test_one_mirrored_step_equals_one_default_step(mirrored_check):
    """cdcgan, wgan-gp and vae: same weights after one step on the same global batch; replicas draw different
    latents (rows of one global draw); synchronized BatchNorm is what makes cdcgan exact. (The subprocess
    tests/training/mirrored_check.py, run once per session by the ``mirrored_check`` fixture of conftest.)"""
    out, run, _ = mirrored_check
    for name in ("cdcgan", "wgan-gp", "vae"):
        assert out["moved"][name] > 1e-4, name  # the step did change the weights
        assert out["diff"][name] < TOL, (name, out["diff"])
    assert out["diff"]["cdcgan-unsynced"] > 100 * TOL  # per-replica BatchNorm statistics differ
    assert out["noise"] == {"replicas_differ": True, "equals_global_draw": True}
    assert "must be divisible by the 2 replicas" in out["bad_batch"]
    assert not run.exists()  # the bad batch failed before the run directory was made
