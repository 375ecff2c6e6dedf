"""BAGAN and CVAE-GAN losses against values computed by hand from the papers' formulas."""
import math

import numpy as np
import pytest

from tfaug.models.losses import (class_mean_feature_matching, d_loss_bagan, g_loss_bagan, mean_feature_matching,
                                 pairwise_feature_loss, realness_logit)


def _log_softmax(row, k):
    return row[k] - math.log(sum(math.exp(v) for v in row))


def test_d_loss_bagan_hand_values():
    # K = 2 classes + fake (index 2).
    real = [[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]
    fake = [[0.0, 0.0, 3.0], [1.0, 1.0, 1.0]]
    labels = [0, 1]
    want = [-_log_softmax(real[i], labels[i]) - _log_softmax(fake[i], 2) for i in range(2)]
    got = d_loss_bagan(np.array(real), np.array(labels), np.array(fake)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # Uniform logits: each term is log(K + 1).
    np.testing.assert_allclose(d_loss_bagan(np.zeros((1, 3)), [1], np.zeros((1, 3))).numpy(), [2 * math.log(3)],
                               rtol=1e-6)


def test_g_loss_bagan_hand_values():
    fake = np.array([[0.5, -0.5, 2.0], [3.0, 0.0, 0.0]])
    got = g_loss_bagan(fake, [1, 0]).numpy()
    np.testing.assert_allclose(got, [-_log_softmax(fake[0], 1), -_log_softmax(fake[1], 0)], rtol=1e-6)
    assert got[1] < got[0]  # the second image already looks like its class


def test_realness_logit_is_log_odds_of_real():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, 0.0, 0.0]])
    got = realness_logit(logits).numpy()
    want = [math.log(math.exp(1.0) + math.exp(2.0)) - 0.5, math.log(2.0)]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_pairwise_feature_loss_half_squared_distance():
    a = np.array([[[1.0, 2.0]], [[0.0, 0.0]]])  # [2, 1, 2]: summed over all non-batch axes
    b = np.array([[[0.0, 0.0]], [[3.0, -4.0]]])
    np.testing.assert_allclose(pairwise_feature_loss(a, b).numpy(), [0.5 * 5.0, 0.5 * 25.0], rtol=1e-6)


def test_mean_feature_matching_compares_batch_means():
    real = np.array([[1.0, 0.0], [3.0, 2.0]])  # mean (2, 1)
    fake = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 4.0]])  # mean (0, 2)
    assert mean_feature_matching(real, fake).numpy() == pytest.approx(0.5 * (4.0 + 1.0))
    # Different images with the same mean match perfectly.
    assert mean_feature_matching(real, np.array([[2.0, 1.0]])).numpy() == pytest.approx(0.0)


def test_class_mean_feature_matching_per_class_and_skips_one_sided_classes():
    real = np.array([[1.0], [3.0], [10.0], [7.0]])
    real_y = np.array([0, 0, 1, 2])          # class means 2, 10, 7
    fake = np.array([[0.0], [5.0], [6.0]])
    fake_y = np.array([0, 1, 1])             # class means 0, 5.5; class 2 has no fake
    want = 0.5 * ((2.0 - 0.0) ** 2 + (10.0 - 5.5) ** 2)
    got = class_mean_feature_matching(real, real_y, fake, fake_y, 3).numpy()
    assert got == pytest.approx(want)
    # Not the same as matching the pooled means (which would be 0.5 * (5.25 - 3.667)^2).
    assert got != pytest.approx(mean_feature_matching(real, fake).numpy())
