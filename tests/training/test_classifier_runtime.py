"""train_classifier under a RuntimeConfig: mirrored over 2 logical CPU devices, mixed precision, XLA."""
import numpy as np
import pytest

from tfaug.config import ClassifierConfig, RuntimeConfig
from tfaug.training.classifier import predict_classes, save_classifier, train_classifier
from tests_helpers import toy_split

# lenet5 without dropout has no batch statistics and no randomness inside a step, so a mirrored step over two
# halves of a global batch must equal the single-device step on the whole batch.
EXACT = ClassifierConfig(name="lenet5", steps=3, batch_size=16, lr=1e-2, dropout=0.0, fc1=16, fc2=8, seed=4)

# The mirrored checks run in one fresh interpreter (the CPU must be split into logical devices before TensorFlow
# initialises, which the pytest process has already done): tests/training/mirrored_check.py, shared with
# test_distribute.py through the session fixture ``mirrored_check`` of tests/conftest.py.


@pytest.fixture(scope="module")
def mirrored_result(mirrored_check):
    result = mirrored_check[0]["classifier"]
    # the subprocess trained EXACT (its copy of the config must not drift from this one)
    assert result["config"] == {k: getattr(EXACT, k) for k in result["config"]} and len(result["config"]) == 8
    return result


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
                           runtime=RuntimeConfig(mixed_precision="fp16"))
    assert keras.mixed_precision.global_policy().name == before == "float32"
    assert res.model.get_layer("conv1").compute_dtype == "float16"
    assert isinstance(res.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.asarray(res.model(xte[:4].astype(np.float32) / 127.5 - 1, training=False)).dtype == np.float32
    assert np.isfinite(res.history["loss"]).all()
    assert res.metrics["accuracy"] >= 0.9


def test_bf16_trains_with_float32_logits_and_batchnorm_statistics(toy, tmp_path):
    """bf16 (mixed_bfloat16): bfloat16 convolutions, no loss scaling, float32 logits and BatchNorm statistics
    (small_cnn); the saved classifier loads back with its bf16 layers."""
    import keras

    (xtr, ytr), (xte, yte) = toy_split(toy)
    cfg = ClassifierConfig(name="small_cnn", steps=30, lr=1e-2, width=8, seed=0)
    res = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte,
                           runtime=RuntimeConfig(mixed_precision="bf16"))
    assert keras.mixed_precision.global_policy().name == "float32"
    convs = [la for la in res.model.layers if isinstance(la, keras.layers.Conv2D)]
    norms = [la for la in res.model.layers if isinstance(la, keras.layers.BatchNormalization)]
    assert convs and all(la.compute_dtype == "bfloat16" for la in convs)
    assert norms and all(v.dtype == "float32" for la in norms for v in la.non_trainable_variables)
    assert not isinstance(res.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert np.asarray(res.model(xte[:4].astype(np.float32) / 127.5 - 1, training=False)).dtype == np.float32
    assert np.isfinite(res.history["loss"]).all() and res.metrics["accuracy"] >= 0.9
    path = tmp_path / "clf.keras"
    save_classifier(res.model, path)
    loaded = keras.models.load_model(path)
    assert {la.compute_dtype for la in loaded.layers if isinstance(la, keras.layers.Conv2D)} == {"bfloat16"}


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
