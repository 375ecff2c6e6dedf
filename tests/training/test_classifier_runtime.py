"""train_classifier under a RuntimeConfig: mirrored over 2 logical CPU devices, mixed precision, XLA."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tfaug.config import ClassifierConfig, RuntimeConfig
from tfaug.training.classifier import predict_classes, save_classifier, train_classifier
from tests_helpers import toy_split

TESTS = Path(__file__).resolve().parents[1]
# lenet5 without dropout has no batch statistics and no randomness inside a step, so a mirrored step over two
# halves of a global batch must equal the single-device step on the whole batch.
EXACT = ClassifierConfig(name="lenet5", steps=3, batch_size=16, lr=1e-2, dropout=0.0, fc1=16, fc2=8, seed=4)

# One fresh interpreter for every mirrored check: the CPU must be split into logical devices before TensorFlow
# initialises, which the pytest process has already done.
CHILD = r"""
import json, sys, tempfile
import numpy as np
from tfaug.config import ClassifierConfig, RuntimeConfig
from tfaug.errors import TfaugError
from tfaug.training.distribute import configure_devices
mirrored = RuntimeConfig(strategy="mirrored", devices=2)
configure_devices(mirrored)
from tfaug.training.classifier import predict_classes, save_classifier, train_classifier
from tests_helpers import toy_images, toy_split
cfg = ClassifierConfig(**json.loads(sys.argv[1]))
(xtr, ytr), (xte, yte) = toy_split(toy_images(n_per_class=16))

def single_device(cfg, skip_iterators):
    # train_classifier's default path, with the shuffle advanced by `skip_iterators` opened iterators first.
    import keras
    from tfaug.data.pipeline import make_pipeline
    from tfaug.models.networks.classifiers import build_classifier
    keras.utils.set_random_seed(cfg.seed)
    model = build_classifier(cfg.name, xtr.shape[1:], 3, width=cfg.width, dropout=cfg.dropout, kernel=cfg.kernel,
                             fc1=cfg.fc1, fc2=cfg.fc2)
    model.compile(optimizer=keras.optimizers.Adam(cfg.lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    ds = make_pipeline(xtr, ytr, cfg.batch_size, shuffle=True, seed=cfg.seed, repeat=True, drop_remainder=True)
    for _ in range(skip_iterators):
        next(iter(ds))
    fit = model.fit(ds, epochs=1, steps_per_epoch=cfg.steps, verbose=0, shuffle=False)
    return model.get_weights(), fit.history["loss"]

def max_diff(a, b):
    return max(float(np.abs(p - q).max()) for p, q in zip(a, b))

one = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte)
two = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte, runtime=mirrored)
ref, ref_loss = single_device(cfg, 1)
bn = ClassifierConfig(name="small_cnn", width=4, steps=2, batch_size=16, lr=1e-2, dropout=0.0, seed=1)
bn_two = train_classifier(xtr, ytr, num_classes=3, cfg=bn, runtime=mirrored)
out = {"replicas": two.model.distribute_strategy.num_replicas_in_sync,
       "default_is_reference": max_diff(single_device(cfg, 0)[0], one.model.get_weights()),
       "batchnorm_weight_diff": max_diff(single_device(bn, 1)[0], bn_two.model.get_weights()),
       "max_weight_diff": max_diff(ref, two.model.get_weights()),
       "loss_reference": ref_loss, "loss_mirrored": two.history["loss"],
       "accuracy_default": one.metrics["accuracy"], "accuracy_mirrored": two.metrics["accuracy"]}
with tempfile.TemporaryDirectory() as d:
    import keras
    path = save_classifier(two.model, f"{d}/m.keras")
    out["reloaded_same"] = bool((predict_classes(keras.models.load_model(path), xte) == two.predictions).all())
try:
    train_classifier(xtr, ytr, num_classes=3, cfg=ClassifierConfig(steps=1, batch_size=7, width=4), runtime=mirrored)
    out["odd_batch"] = "no error"
except TfaugError as e:
    out["odd_batch"] = str(e)
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def mirrored_result():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)]),
           "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    cfg = {k: getattr(EXACT, k) for k in ("name", "steps", "batch_size", "lr", "dropout", "fc1", "fc2", "seed")}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True,
                          timeout=240, env=env, cwd=str(TESTS.parent))
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def test_mirrored_steps_equal_the_single_device_steps(mirrored_result):
    """Same maths: 3 mirrored Adam steps over two halves of each global batch give the single-device weights.

    Keras' fit under a strategy opens the dataset once to build the model, which advances the seeded shuffle, so
    the reference single-device run opens it once too (and without that it is train_classifier's default path).
    """
    r = mirrored_result
    assert r["replicas"] == 2
    assert r["default_is_reference"] == 0.0
    # Adam moves each weight by up to lr = 1e-2 per step: a wrong loss scale or a half batch would show at 1e-3.
    assert r["max_weight_diff"] < 1e-5, r
    # small_cnn: BatchNormalization over the global batch (its moving statistics are weights too).
    assert r["batchnorm_weight_diff"] < 1e-5, r
    np.testing.assert_allclose(r["loss_mirrored"], r["loss_reference"], rtol=1e-5)
    assert r["accuracy_mirrored"] >= r["accuracy_default"] - 0.15


def test_mirrored_model_saves_and_predicts(mirrored_result):
    assert mirrored_result["reloaded_same"]


def test_mirrored_batch_not_divisible_is_one_sentence(mirrored_result):
    msg = mirrored_result["odd_batch"]
    assert "batch size 7 must be divisible by the 2 replicas" in msg and msg.count(". ") == 0


def test_mixed_precision_trains_with_float32_logits_and_restores_the_policy(toy):
    import keras

    (xtr, ytr), (xte, yte) = toy_split(toy)
    before = keras.mixed_precision.global_policy().name
    cfg = ClassifierConfig(name="lenet5", steps=30, lr=1e-2, fc1=16, fc2=8, seed=0)
    res = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte,
                           runtime=RuntimeConfig(mixed_precision=True))
    assert keras.mixed_precision.global_policy().name == before == "float32"
    assert res.model.get_layer("conv1").compute_dtype == "float16"
    assert isinstance(res.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.asarray(res.model(xte[:4].astype(np.float32) / 127.5 - 1, training=False)).dtype == np.float32
    assert np.isfinite(res.history["loss"]).all()
    assert res.metrics["accuracy"] >= 0.9


def test_xla_compiles_and_matches_the_default_steps(toy, tmp_path):
    (xtr, ytr), (xte, _) = toy_split(toy)
    plain = train_classifier(xtr, ytr, num_classes=3, cfg=EXACT)
    xla = train_classifier(xtr, ytr, num_classes=3, cfg=EXACT, runtime=RuntimeConfig(jit_compile=True))
    assert xla.model.jit_compile is True and plain.model.jit_compile is False
    for a, b in zip(plain.model.get_weights(), xla.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-4)
    import keras

    path = save_classifier(xla.model, tmp_path / "xla.keras")
    np.testing.assert_array_equal(predict_classes(keras.models.load_model(path), xte), predict_classes(xla.model, xte))
