import numpy as np

from tfaug.config import ClassifierConfig
from tfaug.training.classifier import predict_classes, train_classifier
from tests_helpers import toy_split


def test_learns_a_separable_problem_and_scores_on_test(toy):
    (xtr, ytr), (xte, yte) = toy_split(toy)
    res = train_classifier(xtr, ytr, num_classes=3, cfg=ClassifierConfig(steps=60, width=8, seed=0),
                           x_test=xte, y_test=yte)
    assert res.metrics["accuracy"] >= 0.9
    assert res.metrics["n"] == len(yte)
    assert len(predict_classes(res.model, xte)) == len(yte)


def test_augmentation_never_reaches_evaluation(toy):
    """Classic augmentation lives in the training pipeline only: the model holds no random layers and scoring
    the test set twice gives identical predictions."""
    (xtr, ytr), (xte, yte) = toy_split(toy)
    res = train_classifier(xtr, ytr, num_classes=3, cfg=ClassifierConfig(steps=10, width=8), x_test=xte, y_test=yte,
                           augment="classic:objects")
    assert not [l for l in res.model.layers if l.__class__.__name__.startswith("Random")]
    np.testing.assert_array_equal(predict_classes(res.model, xte), predict_classes(res.model, xte))


# -- pretraining (curriculum), predictions, dynamic LeNet, extra channels --------------------------------------

import pytest  # noqa: E402

from tfaug.errors import TfaugError  # noqa: E402


def _reference_weights(xtr, ytr, cfg):
    """The training loop as it was before ``pretrain`` existed (build, compile, one fit of cfg.steps)."""
    import keras

    from tfaug.data.pipeline import make_pipeline
    from tfaug.models.networks.classifiers import build_classifier
    from tfaug.utils.images import as_float_images

    x = as_float_images(xtr)
    keras.utils.set_random_seed(cfg.seed)
    model = build_classifier(cfg.name, x.shape[1:], 3, width=cfg.width, dropout=cfg.dropout)
    model.compile(optimizer=keras.optimizers.Adam(cfg.lr),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    ds = make_pipeline(x, np.asarray(ytr, np.int32), min(cfg.batch_size, len(x)), shuffle=True, seed=cfg.seed,
                       repeat=True, drop_remainder=True, one_hot=3)
    model.fit(ds, epochs=1, steps_per_epoch=cfg.steps, verbose=0, shuffle=False)
    return model.get_weights()


def test_no_pretrain_trains_exactly_as_before_same_seed_same_result_and_augment_runs(toy):
    (xtr, ytr), (xte, yte) = toy_split(toy)
    cfg = ClassifierConfig(steps=8, width=8, seed=5)
    res = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, pretrain=None, x_test=xte, y_test=yte)
    for got, want in zip(res.model.get_weights(), _reference_weights(xtr, ytr, cfg)):
        np.testing.assert_array_equal(got, want)
    assert sorted(res.history) == ["accuracy", "loss"]
    np.testing.assert_array_equal(res.predictions, predict_classes(res.model, xte))
    assert res.predictions.dtype == np.int64 and res.predictions.shape == yte.shape
    # Zero pretraining steps is no pretraining, and the same seed gives the same result (a second call of
    # train_classifier); without a test set there are no predictions.
    zero = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, pretrain=(xtr, ytr, 0))
    for got, want in zip(zero.model.get_weights(), res.model.get_weights()):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(zero.history["loss"], res.history["loss"], rtol=1e-5)
    assert zero.predictions is None and zero.metrics == {}
    # classic augmentation trains too
    c = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte, augment="classic")
    assert np.isfinite(c.history["loss"]).all()


def test_pretrain_on_wrong_labels_then_fine_tune_on_real(toy):
    """Pretraining on a set whose labels are permuted (wrong) shapes the model, yet fine-tuning still fits the real
    set; both phases report their loss history."""
    (xtr, ytr), _ = toy_split(toy)
    cfg = ClassifierConfig(name="lenet5", steps=60, batch_size=20, lr=3e-3, seed=1, kernel=3, fc1=32, fc2=16)
    wrong = (ytr + 1) % 3
    res = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, pretrain=(xtr, wrong, 60), x_test=xtr, y_test=ytr)
    assert res.metrics["accuracy"] >= 0.9
    assert {"pretrain_loss", "pretrain_accuracy", "loss", "accuracy"} <= set(res.history)
    assert np.isfinite(res.history["pretrain_loss"]).all()
    # The first phase really fitted the permuted labels (its mean accuracy over 60 steps is far above chance).
    assert res.history["pretrain_accuracy"][-1] > 0.6
    assert res.model.get_layer("fc1").units == 32 and res.model.get_layer("conv1").kernel.shape[0] == 3


def test_pretrain_errors(toy):
    (xtr, ytr), _ = toy_split(toy)
    cfg = ClassifierConfig(steps=1, width=8)
    with pytest.raises(TfaugError, match="shape"):
        train_classifier(xtr, ytr, num_classes=3, cfg=cfg, pretrain=(xtr[:, :4], ytr, 1))
    with pytest.raises(TfaugError, match="labels"):
        train_classifier(xtr, ytr, num_classes=3, cfg=cfg, pretrain=(xtr, ytr + 3, 1))
    with pytest.raises(TfaugError, match="steps"):
        train_classifier(xtr, ytr, num_classes=3, cfg=cfg, pretrain=(xtr, ytr, -1))
    with pytest.raises(TfaugError, match="tuple"):
        train_classifier(xtr, ytr, num_classes=3, cfg=cfg, pretrain=(xtr, ytr))


def test_extra_flag_channel_trains_with_classic_augmentation():
    """Source-flag inputs have C + 1 channels: the network, the pipeline and classic augmentation accept them,
    and test images must carry the same channels."""
    from tests_helpers import toy_images

    x, y = toy_images(n_per_class=10, channels=2)
    res = train_classifier(x, y, num_classes=3, cfg=ClassifierConfig(steps=40, width=8, seed=0), x_test=x, y_test=y,
                           augment="classic:objects", flag_channels=1)
    assert res.model.input_shape == (None, 8, 8, 2) and res.metrics["accuracy"] >= 0.9
    with pytest.raises(TfaugError, match="shape"):
        train_classifier(x, y, num_classes=3, cfg=ClassifierConfig(steps=1, width=8), x_test=x[..., :1], y_test=y)
    with pytest.raises(TfaugError, match="flag_channels"):
        train_classifier(x, y, num_classes=3, cfg=ClassifierConfig(steps=1, width=8), flag_channels=2)


def test_flag_channels_bypass_augmentation():
    """Classic augmentation (rotation with black fill, brightness ...) would corrupt a constant flag channel; with
    ``flag_channels`` the flag passes through unchanged while the image channel is still augmented."""
    from tfaug.augment.classic import build_augmenter
    from tfaug.training.classifier import image_channels_only

    x = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 2)).astype(np.float32)
    x[..., 1] = 1.0
    raw = np.asarray(build_augmenter("classic:objects", seed=0)(x, training=True))
    assert not np.allclose(raw[..., 1], 1.0)  # the problem: a plain augmenter changes the flag
    out = np.asarray(image_channels_only(build_augmenter("classic:objects", seed=0), 1, 2)(x, training=True))
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 1], 1.0)
    assert not np.allclose(out[..., 0], x[..., 0])


# -- the few-shot recipe: AdamW, cosine schedule, label smoothing, grown budget, ensemble ------------------------

from tfaug.config import FEWSHOT, preset  # noqa: E402


def test_recipe_is_deterministic_given_a_seed_and_grows_its_budget(toy):
    import dataclasses

    (xtr, ytr), (xte, yte) = toy_split(toy)
    # the recipe (AdamW, cosine schedule, label smoothing, budget) around LeNet-5, the cheapest network to build
    cfg = dataclasses.replace(FEWSHOT, name="lenet5", steps=6, min_epochs=2.0, batch_size=8, width=4, max_steps=0)
    assert cfg.budget(len(xtr)) == 10  # ceil(2 epochs * 40 images / batch 8) > 6
    a = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte, augment="classic")
    b = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte, augment="classic")
    assert a.steps == 10 and len(a.history["loss"]) == 1
    for got, want in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(got, want)
    # the budget follows the real draw, not the images a strategy added
    c = train_classifier(np.concatenate([xtr, xtr]), np.concatenate([ytr, ytr]), num_classes=3, cfg=cfg,
                         budget_images=len(xtr))
    assert c.steps == 10
    other = train_classifier(xtr, ytr, num_classes=3, cfg=dataclasses.replace(cfg, seed=1))
    assert any(not np.array_equal(g, w) for g, w in zip(other.model.get_weights(), a.model.get_weights()))


def test_budget_floor_growth_and_cap():
    cfg = ClassifierConfig(steps=100, batch_size=10, min_epochs=5.0, max_steps=300)
    assert [cfg.budget(n) for n in (1, 100, 400, 10_000)] == [100, 100, 200, 300]
    assert ClassifierConfig(steps=7).budget(10_000) == 7  # min_epochs 0 keeps the fixed budget
    assert preset("classifier/fewshot") is FEWSHOT
    with pytest.raises(TfaugError, match="schedule"):
        ClassifierConfig(schedule="step")
    with pytest.raises(TfaugError, match="label_smoothing"):
        ClassifierConfig(label_smoothing=1.0)


def test_ensemble_averages_member_probabilities_and_saves(toy, tmp_path):
    import dataclasses

    import keras

    from tfaug.training.classifier import save_classifier

    (xtr, ytr), (xte, yte) = toy_split(toy)
    # the recipe's optimiser and head around LeNet-5 members (the cheapest network to build; 4 trainings here)
    cfg = dataclasses.replace(FEWSHOT, name="lenet5", steps=4, min_epochs=0.0, batch_size=8, width=4, ensemble=2)
    res = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte)
    x = xte.astype(np.float32) / 127.5 - 1.0
    singles = [train_classifier(xtr, ytr, num_classes=3, cfg=dataclasses.replace(cfg, ensemble=1, seed=s))
               for s in (cfg.seed, cfg.seed + 1)]
    want = np.mean([keras.ops.convert_to_numpy(keras.ops.softmax(m.model(x, training=False))) for m in singles], 0)
    got = keras.ops.convert_to_numpy(keras.ops.softmax(res.model(x, training=False)))
    np.testing.assert_allclose(got, want, atol=1e-5)
    path = save_classifier(res.model, tmp_path / "ens.keras")
    again = keras.saving.load_model(path)  # safe mode: the head is a registered layer, not a Lambda
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)), keras.ops.convert_to_numpy(res.model(x)),
                               atol=1e-6)


def test_same_seed_same_weights_with_classic_augmentation(toy):
    """Issue 19.5 (classifiers have no resume, so the guarantee is determinism): two runs with one seed, the
    stateful classic augmenter included, give bitwise identical weights; another seed does not."""
    import dataclasses

    (xtr, ytr), _ = toy_split(toy)
    cfg = ClassifierConfig(name="lenet5", steps=6, seed=3)  # the network is incidental: the cheapest to build
    a = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, augment="classic")
    b = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, augment="classic")
    for got, want in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(got, want)
    other = train_classifier(xtr, ytr, num_classes=3, cfg=dataclasses.replace(cfg, seed=4), augment="classic")
    assert not all(np.array_equal(g, w) for g, w in zip(other.model.get_weights(), a.model.get_weights()))


def test_the_train_step_is_traced_once_per_fit(toy, monkeypatch):
    """prebuild creates the optimizer slots and metric variables before the first fit, so TensorFlow traces the
    step once (Keras otherwise creates them inside the first trace, and a tf.function that created variables is
    traced again); the weights are Keras' own fit's, bit for bit (the test above)."""
    import keras

    traces = []
    original = keras.Model.train_step

    def counting(self, data):
        traces.append(1)
        return original(self, data)

    monkeypatch.setattr(keras.Model, "train_step", counting)
    (xtr, ytr), _ = toy_split(toy)
    train_classifier(xtr, ytr, num_classes=3, cfg=ClassifierConfig(steps=3, width=8))
    assert len(traces) == 1
    traces.clear()
    train_classifier(xtr, ytr, num_classes=3, cfg=ClassifierConfig(steps=3, width=8), pretrain=(xtr, ytr, 2))
    assert len(traces) == 1  # the main phase's fit reuses the pretrain phase's step
    traces.clear()
    monkeypatch.setattr("tfaug.training.classifier.prebuild", lambda *a: None)
    train_classifier(xtr, ytr, num_classes=3, cfg=ClassifierConfig(steps=3, width=8))
    assert len(traces) == 2  # what Keras does without it: the check above can fail
