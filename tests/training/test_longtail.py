"""Long-tail controls against hand-computed values of each paper's formula, class-balanced sampling, and the hooks
of ``train_classifier``."""
import math

import numpy as np
import pytest

from tfaug.config import ClassifierConfig
from tfaug.errors import TfaugError
from tfaug.training.longtail import (class_counts, class_prior, effective_number_weights, logit_adjusted_cross_entropy,
                                     posthoc_adjusted_logits, posthoc_predict, train_loss, weighted_cross_entropy)
from tests_helpers import toy_images


def test_effective_number_weights_match_cui_et_al():
    # beta = 0.5, n = (1, 2): 1/E = (1 - .5) / (1 - .5) = 1 and (1 - .5) / (1 - .25) = 2/3; sum 5/3 -> scaled to K = 2
    np.testing.assert_allclose(effective_number_weights([1, 2], beta=0.5), [1.2, 0.8])
    # beta = 0.9, n = (10, 100, 0): (1 - b) / (1 - b**n) for present classes, 0 for the empty one, sum = K = 3
    b = 0.9
    raw = np.array([(1 - b) / (1 - b ** 10), (1 - b) / (1 - b ** 100), 0.0])
    np.testing.assert_allclose(effective_number_weights([10, 100, 0], beta=b), raw * 3 / raw.sum(), rtol=1e-12)
    np.testing.assert_allclose(effective_number_weights([5, 500], beta=0.0), [1.0, 1.0])  # beta 0: no re-weighting
    w = effective_number_weights([10, 100], beta=1 - 1e-9)  # beta -> 1: inverse class frequency
    assert w[0] / w[1] == pytest.approx(10.0, rel=1e-5)
    for bad in (1.0, -0.1, True):
        with pytest.raises(TfaugError, match="beta"):
            effective_number_weights([1, 2], beta=bad)
    with pytest.raises(TfaugError):
        effective_number_weights([0, 0])


def test_weighted_cross_entropy_is_the_weighted_softmax_loss():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    got = np.asarray(weighted_cross_entropy(np.array([1, 2]), logits, [1.0, 3.0, 0.5]))
    # -log softmax: log(e^2 + 2) for label 1 of row 0; log(2 + e) for label 2 of row 1
    np.testing.assert_allclose(got, [3 * math.log(math.e ** 2 + 2), 0.5 * math.log(2 + math.e)], rtol=1e-6)


def test_logit_adjusted_loss_matches_menon_et_al():
    logits = np.array([[1.0, 2.0]], np.float32)
    # f + log(pi) with pi = (3/4, 1/4): the loss of label 0 is log(1 + exp(f1 - f0) * pi1 / pi0) = log(1 + e / 3)
    got = float(np.asarray(logit_adjusted_cross_entropy(np.array([0]), logits, [0.75, 0.25], tau=1.0))[0])
    assert got == pytest.approx(math.log(1 + math.e / 3), rel=1e-6)
    # tau = 2 squares the prior ratio; tau = 0 is plain cross-entropy log(1 + e)
    got2 = float(np.asarray(logit_adjusted_cross_entropy(np.array([0]), logits, [3, 1], tau=2.0))[0])
    assert got2 == pytest.approx(math.log(1 + math.e / 9), rel=1e-6)
    got0 = float(np.asarray(logit_adjusted_cross_entropy(np.array([0]), logits, [3, 1], tau=0.0))[0])
    assert got0 == pytest.approx(math.log(1 + math.e), rel=1e-6)
    with pytest.raises(TfaugError, match="class 1 has no training image"):
        class_prior([4, 0])
    with pytest.raises(TfaugError, match="tau"):
        logit_adjusted_cross_entropy(np.array([0]), logits, [1, 1], tau=-1)


def test_posthoc_adjustment_flips_towards_the_rare_class():
    logits = np.array([[1.0, 0.5], [3.0, 0.0]], np.float32)
    prior = [0.9, 0.1]
    # f - log(pi): row 0 -> (1 - log .9, .5 - log .1) = (1.105, 2.803): class 1; row 1 -> (3.105, 2.303): class 0
    np.testing.assert_allclose(posthoc_adjusted_logits(logits, prior),
                               [[1 - math.log(0.9), 0.5 - math.log(0.1)], [3 - math.log(0.9), -math.log(0.1)]],
                               rtol=1e-6)
    assert posthoc_predict(logits, prior).tolist() == [1, 0]
    assert posthoc_predict(logits, prior, tau=0.0).tolist() == [0, 0]
    assert class_counts([0, 2, 2], 3).tolist() == [1, 0, 2]


def test_train_loss_composes_weights_and_adjustment():
    y = np.array([0, 0, 0, 1])  # prior (3/4, 1/4)
    assert train_loss(y, 2) is None and train_loss(y, 2, logit_adjust_tau=1.0, posthoc=True) is None
    logits = np.array([[1.0, 2.0], [1.0, 2.0]], np.float32)
    loss = train_loss(y, 2, class_weights=[2.0, 0.5], logit_adjust_tau=1.0)
    got = np.asarray(loss(np.array([0, 1]), logits))
    np.testing.assert_allclose(got, [2 * math.log(1 + math.e / 3), 0.5 * math.log(1 + 3 / math.e)], rtol=1e-6)
    with pytest.raises(TfaugError, match="class_weights must be 2"):
        train_loss(y, 2, class_weights=[1.0])


def test_label_smoothing_matches_keras_on_the_adjusted_logits():
    import keras

    y = np.array([0, 0, 0, 1])
    logits = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 0.3]], np.float32)
    labels = np.array([0, 2])
    prior = [0.5, 0.25, 0.25]
    loss = train_loss(np.array([0, 0, 1, 2]), 3, logit_adjust_tau=1.0, label_smoothing=0.1)
    want = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1, reduction=None)(
        np.eye(3, dtype=np.float32)[labels], logits + np.log(prior).astype(np.float32))
    np.testing.assert_allclose(np.asarray(loss(labels, logits)), np.asarray(want), rtol=1e-5)
    with pytest.raises(TfaugError, match="label_smoothing"):
        train_loss(y, 2, class_weights=[1.0, 1.0], label_smoothing=1.0)


def test_balanced_pipeline_samples_classes_uniformly_and_deterministically():
    from tfaug.data.pipeline import make_pipeline

    x = np.zeros((100, 2, 2, 1), np.uint8)
    y = np.array([0] * 90 + [1] * 10, np.int32)

    def labels(seed, balanced=True):
        ds = make_pipeline(x, y, 50, seed=seed, repeat=True, balanced=balanced)
        return np.concatenate([b[1].numpy() for b in ds.take(20)])

    a = labels(3)
    assert 0.42 < a.mean() < 0.58  # 1000 draws at p = 0.5 (std 0.016); unbalanced it would be 0.1
    assert labels(3, balanced=False).mean() == pytest.approx(0.1, abs=0.03)
    np.testing.assert_array_equal(a, labels(3))
    assert not np.array_equal(a, labels(4))
    with pytest.raises(TfaugError, match="repeat=True"):
        make_pipeline(x, y, 10, balanced=True)


def _tiny(n0=20, n1=4):
    x, y = toy_images(n_per_class=20, num_classes=2)
    keep = np.concatenate([np.flatnonzero(y == 0)[:n0], np.flatnonzero(y == 1)[:n1]])
    return x[keep], y[keep]


def test_train_classifier_uses_the_logit_adjusted_loss():
    """Same seed, same batches: train_classifier(logit_adjust_tau=1) ends at the weights of a reference loop that
    trains on Keras' own cross-entropy of f(x) + log(prior) (eq. 10 written independently)."""
    import keras

    from tfaug.data.pipeline import make_pipeline
    from tfaug.models.networks.classifiers import build_classifier
    from tfaug.training.classifier import train_classifier
    from tfaug.utils.images import as_float_images

    x, y = _tiny()
    cfg = ClassifierConfig(steps=3, width=8, seed=2)
    res = train_classifier(x, y, num_classes=2, cfg=cfg, logit_adjust_tau=1.0)
    log_prior = np.log(np.array([20, 4], np.float32) / 24.0)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    keras.utils.set_random_seed(cfg.seed)
    ref = build_classifier(cfg.name, x.shape[1:], 2, width=cfg.width, dropout=cfg.dropout)
    ref.compile(optimizer=keras.optimizers.Adam(cfg.lr), loss=lambda t, f: ce(t, f + log_prior))
    xf = as_float_images(x)
    ds = make_pipeline(xf, y, min(cfg.batch_size, len(x)), seed=cfg.seed, repeat=True, drop_remainder=True)
    ref.fit(ds, epochs=1, steps_per_epoch=cfg.steps, verbose=0, shuffle=False)
    for got, want in zip(res.model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    plain = train_classifier(x, y, num_classes=2, cfg=cfg)
    assert not np.allclose(np.asarray(plain.model(xf)), np.asarray(res.model(xf)), atol=1e-4)


def test_train_classifier_class_weights_posthoc_and_balanced(tmp_path):
    import keras

    from tfaug.training.classifier import save_classifier, train_classifier
    from tfaug.utils.images import as_float_images

    from tfaug.data.pipeline import make_pipeline
    from tfaug.models.networks.classifiers import build_classifier

    x, y = _tiny()
    cfg = ClassifierConfig(steps=3, width=8, seed=0)
    xf = as_float_images(x)
    # class weights = Keras' own class_weight in a reference loop (same seed, same batches)
    weighted = train_classifier(x, y, num_classes=2, cfg=cfg, class_weights=[2.0, 0.5])
    keras.utils.set_random_seed(cfg.seed)
    ref = build_classifier(cfg.name, x.shape[1:], 2, width=cfg.width, dropout=cfg.dropout)
    ref.compile(optimizer=keras.optimizers.Adam(cfg.lr),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ds = make_pipeline(xf, y, min(cfg.batch_size, len(x)), seed=cfg.seed, repeat=True, drop_remainder=True)
    ref.fit(ds, epochs=1, steps_per_epoch=cfg.steps, verbose=0, shuffle=False, class_weight={0: 2.0, 1: 0.5})
    for got, want in zip(weighted.model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    res = train_classifier(x, y, num_classes=2, cfg=cfg, logit_adjust_tau=1.0, posthoc=True, balanced=True)
    inner = res.model.layers[1]  # the trained network inside the post-hoc wrapper
    np.testing.assert_allclose(np.asarray(res.model(xf)), np.asarray(inner(xf)) - np.log([20 / 24, 4 / 24]),
                               rtol=1e-5, atol=1e-5)
    path = save_classifier(res.model, tmp_path / "c.keras")
    loaded = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(np.asarray(loaded(xf)), np.asarray(res.model(xf)), rtol=1e-5, atol=1e-5)
    with pytest.raises(TfaugError, match="needs logit_adjust_tau"):
        train_classifier(x, y, num_classes=2, cfg=cfg, posthoc=True)


def test_target_loss_on_distributions():
    from tfaug.training.longtail import target_loss

    logits = np.array([[1.0, 2.0], [0.5, -0.5]], np.float32)
    prior, w = [0.75, 0.25], [2.0, 0.5]
    ids = np.array([0, 1])
    one_hot = np.eye(2, dtype=np.float32)[ids]
    # one-hot rows: the class-id losses exactly
    np.testing.assert_allclose(target_loss(one_hot, logits, prior=prior, tau=1.0),
                               logit_adjusted_cross_entropy(ids, logits, prior, 1.0), rtol=1e-6)
    np.testing.assert_allclose(target_loss(one_hot, logits, class_weights=w),
                               weighted_cross_entropy(ids, logits, w), rtol=1e-6)
    # a soft row t = (0.25, 0.75) on adjusted logits f + log(pi): by hand, weight 0.25 * 2 + 0.75 * 0.5 = 0.875
    z = np.array([1.0 + math.log(0.75), 2.0 + math.log(0.25)])
    logp = z - math.log(math.exp(z[0]) + math.exp(z[1]))
    want = -(0.25 * logp[0] + 0.75 * logp[1]) * 0.875
    got = float(np.asarray(target_loss(np.array([[0.25, 0.75]], np.float32), logits[:1], class_weights=w,
                                       prior=prior, tau=1.0))[0])
    assert got == pytest.approx(want, rel=1e-6)
