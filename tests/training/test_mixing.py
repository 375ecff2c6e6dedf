"""tfaug.training.mixing: weight/swap/sepbn batches and training, soft targets in the trainer (tiny, few steps)."""
import numpy as np
import pytest

from tfaug.config import ClassifierConfig
from tfaug.errors import TfaugError
from tfaug.training.classifier import train_classifier
from tfaug.training.mixing import generated_batch, mixed_dataset
from tests_helpers import toy_images

K = 3


def _mix(n_real=8, n_gen=4, seed=0):
    """Real toy images (n_real per class) + "generated" ones (n_gen per class, inverted noise) and their flags."""
    xr, yr = toy_images(n_real, K, seed=seed)
    xg, yg = toy_images(n_gen, K, seed=seed + 1)
    xr = xr.astype(np.float32) / 127.5 - 1
    xg = -(xg.astype(np.float32) / 127.5 - 1) * 0.5  # a different domain: other BN statistics
    x, y = np.concatenate([xr, xg]), np.concatenate([yr, yg])
    syn = np.concatenate([np.zeros(len(yr), bool), np.ones(len(yg), bool)])
    return x, y, syn


def _weights(model):
    return [np.asarray(w) for w in model.weights]


def _close(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


def test_generated_batch_follows_the_mix_proportion():
    assert generated_batch(16, 24, 12) == 8
    assert generated_batch(16, 24, 1) == 1
    assert generated_batch(16, 24, 0) == 0


def test_mixed_batches_hold_real_and_generated_in_fixed_proportion():
    x, y, syn = _mix()
    t = np.eye(K, dtype=np.float32)[y]
    ds = mixed_dataset(x, t, syn, 12, seed=0, mixing={"weight": 0.25})
    for images, targets, weights in ds.take(3):
        assert images.shape[0] == targets.shape[0] == weights.shape[0] == 12 + 6
        w = weights.numpy()
        s = 18 / (12 + 0.25 * 6)  # Keras' mean over 18 rows becomes the weighted mean
        np.testing.assert_allclose(w[:12], s)
        np.testing.assert_allclose(w[12:], 0.25 * s)
        assert np.isclose(w.sum(), 18)
        # generated rows are the inverted images (mean < 0 on the lit band's complement): the last 6 rows
        assert np.all(images.numpy()[12:].max(axis=(1, 2, 3)) <= 0.6)
        assert np.all(images.numpy()[:12].max(axis=(1, 2, 3)) > 0.6)
    (pair, _, _), = mixed_dataset(x, t, syn, 12, seed=0, mixing={"sepbn": True}).take(1)
    assert pair[0].shape[0] == 12 and pair[1].shape[0] == 6


def test_swap_one_replaces_every_real_image_by_a_generated_one_of_its_class():
    x, y, syn = _mix()
    t = np.eye(K, dtype=np.float32)[y]
    gen = {c: x[syn & (y == c)] for c in range(K)}
    for images, targets in mixed_dataset(x, t, syn, 12, seed=3, mixing={"swap": 1.0}).take(2):
        for im, c in zip(images.numpy(), np.argmax(targets.numpy(), axis=1)):
            assert np.any(np.all(np.isclose(gen[c], im), axis=(1, 2, 3)))


def _cfg(name="lenet5", steps=12):
    return ClassifierConfig(name=name, width=4, dropout=0.0, steps=steps, batch_size=12, seed=5, lr=3e-3)


def test_weight_zero_reproduces_the_real_only_classifier():
    """lenet5 (no BatchNorm, no dropout): generated rows with loss weight 0 change nothing."""
    x, y, syn = _mix()
    real = train_classifier(x[~syn], y[~syn], num_classes=K, cfg=_cfg())
    mixed = train_classifier(x, y, num_classes=K, cfg=_cfg(), synthetic=syn, mixing={"weight": 0.0},
                             budget_images=int((~syn).sum()))
    _close(_weights(real.model), _weights(mixed.model))
    n = int((~syn).sum())  # a filter that kept no generated image: plain training
    none = train_classifier(x[~syn], y[~syn], num_classes=K, cfg=_cfg(), synthetic=np.zeros(n, bool),
                            mixing={"weight": 0.5, "sepbn": True})
    _close(_weights(real.model), _weights(none.model))
    heavy = train_classifier(x, y, num_classes=K, cfg=_cfg(), synthetic=syn, mixing={"weight": 1.0},
                             budget_images=int((~syn).sum()))
    assert not all(np.allclose(a, b, atol=1e-5) for a, b in zip(_weights(real.model), _weights(heavy.model)))


def test_swap_zero_reproduces_classic():
    x, y, syn = _mix()
    cfg = _cfg("res_cnn", steps=8)
    real = train_classifier(x[~syn], y[~syn], num_classes=K, cfg=cfg, augment="classic:glyphs")
    swapped = train_classifier(x, y, num_classes=K, cfg=cfg, augment="classic:glyphs", synthetic=syn,
                               mixing={"swap": 0.0}, budget_images=int((~syn).sum()))
    _close(_weights(real.model), _weights(swapped.model))


def test_sepbn_keeps_two_sets_of_statistics_and_tests_with_the_real_ones():
    x, y, syn = _mix()
    cfg = _cfg("res_cnn", steps=8)
    real = train_classifier(x[~syn], y[~syn], num_classes=K, cfg=cfg)
    sep = train_classifier(x, y, num_classes=K, cfg=cfg, synthetic=syn, mixing={"sepbn": True, "weight": 0.0},
                           budget_images=int((~syn).sum()), x_test=x[~syn], y_test=y[~syn])
    twin = sep.generated_model
    assert twin is not None
    stats = {v.path: np.asarray(v) for v in sep.model.weights if "moving_mean" in v.path}
    twin_stats = {v.path: np.asarray(v) for v in twin.weights if "moving_mean" in v.path}
    assert stats and len(stats) == len(twin_stats)
    assert not set(stats) & set(twin_stats)
    assert all(not np.allclose(a, b) for a, b in zip(stats.values(), twin_stats.values()))
    # shared convolutions, own BatchNorm; the returned (test) model has only the real statistics
    assert not [w for w in sep.model.weights if "generated" in w.path]
    # generated rows weighing 0 through their own BN: the real network is the real-only classifier's
    _close(_weights(real.model), _weights(sep.model))
    assert np.array_equal(sep.predictions, np.argmax(np.asarray(real.model(x[~syn], training=False)), axis=1))


def test_sepbn_needs_batchnorm_and_mixing_needs_flags():
    x, y, syn = _mix()
    with pytest.raises(TfaugError, match="BatchNormalization"):
        train_classifier(x, y, num_classes=K, cfg=_cfg(steps=1), synthetic=syn, mixing={"sepbn": True})
    with pytest.raises(TfaugError, match="synthetic"):
        train_classifier(x, y, num_classes=K, cfg=_cfg(steps=1), mixing={"weight": 1.0})


def test_soft_targets_train_instead_of_one_hot():
    x, y, syn = _mix()
    one_hot = np.eye(K, dtype=np.float32)[y]
    a = train_classifier(x, y, num_classes=K, cfg=_cfg(steps=6))
    b = train_classifier(x, y, num_classes=K, cfg=_cfg(steps=6), targets=one_hot)
    _close(_weights(a.model), _weights(b.model))  # one-hot targets = labels
    soft = one_hot.copy()
    soft[syn] = 1.0 / K
    c = train_classifier(x, y, num_classes=K, cfg=_cfg(steps=6), targets=soft)
    assert not all(np.allclose(u, v, atol=1e-5) for u, v in zip(_weights(a.model), _weights(c.model)))
    with pytest.raises(TfaugError, match="summing to 1"):
        train_classifier(x, y, num_classes=K, cfg=_cfg(steps=1), targets=one_hot * 2)


def test_long_tail_losses_take_target_rows_and_compose_with_mixing():
    x, y, syn = _mix()
    one_hot = np.eye(K, dtype=np.float32)[y]
    w = np.array([0.5, 1.0, 1.5])
    a = train_classifier(x, y, num_classes=K, cfg=_cfg(steps=6), class_weights=w, logit_adjust_tau=1.0)
    b = train_classifier(x, y, num_classes=K, cfg=_cfg(steps=6), class_weights=w, logit_adjust_tau=1.0,
                         targets=one_hot)
    _close(_weights(a.model), _weights(b.model))  # one-hot target rows = class ids under the long-tail loss
    real = train_classifier(x[~syn], y[~syn], num_classes=K, cfg=_cfg(), class_weights=w)
    mixed = train_classifier(x, y, num_classes=K, cfg=_cfg(), class_weights=w, synthetic=syn,
                             mixing={"weight": 0.0}, budget_images=int((~syn).sum()))
    _close(_weights(real.model), _weights(mixed.model))  # weight:0 keeps the class-balanced real-only run
    with pytest.raises(TfaugError, match="class-balanced sampling"):
        train_classifier(x, y, num_classes=K, cfg=_cfg(steps=1), targets=one_hot, balanced=True)
    with pytest.raises(TfaugError, match="class-balanced sampling"):
        train_classifier(x, y, num_classes=K, cfg=_cfg(steps=1), synthetic=syn, mixing={"weight": 1.0},
                         balanced=True)
