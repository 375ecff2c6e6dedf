"""Pixel KID for the runner's best checkpoint: matches the metrics' KID estimator, ranks closer sets lower."""
import numpy as np
import pytest

from tfaug.utils.kid import mmd2_polynomial, pixel_features, pixel_kid


def test_mmd_matches_the_metrics_kid_on_full_sets():
    from tfaug.metrics.distances import kernel_inception_distance

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 6)), rng.normal(0.3, 1.0, size=(40, 6))
    want, _ = kernel_inception_distance(x, y, subsets=1, subset_size=40)  # one subset = all rows, any order
    assert mmd2_polynomial(x, y) == pytest.approx(want, rel=1e-10)


def test_mmd_by_hand_for_two_points():
    x, y = np.array([[1.0], [0.0]]), np.array([[0.0], [2.0]])
    k = lambda a, b: (a * b + 1.0) ** 3  # noqa: E731  (D = 1)
    want = (2 * k(1, 0)) / 2 + (2 * k(0, 2)) / 2 - 2 * (k(1, 0) + k(1, 2) + k(0, 0) + k(0, 2)) / 4
    assert mmd2_polynomial(x, y) == pytest.approx(want)
    with pytest.raises(ValueError):
        mmd2_polynomial(x[:1], y)


def test_pixel_features_downsample_and_rank():
    imgs = np.random.default_rng(1).uniform(-1, 1, (5, 28, 28, 1)).astype(np.float32)
    f = pixel_features(imgs)
    assert f.shape == (5, 14 * 14)  # factor 2 brings 28 under 16
    np.testing.assert_allclose(f[0, 0], imgs[0, :2, :2, 0].mean(), rtol=1e-6)
    assert pixel_features(np.zeros((2, 8, 8, 3))).shape == (2, 8 * 8 * 3)
    rng = np.random.default_rng(2)
    real = np.clip(rng.normal(0.5, 0.2, (64, 8, 8, 1)), -1, 1)
    close = np.clip(rng.normal(0.5, 0.2, (64, 8, 8, 1)), -1, 1)
    far = np.clip(rng.normal(-0.5, 0.2, (64, 8, 8, 1)), -1, 1)
    assert abs(pixel_kid(real, close)) < 0.05 * pixel_kid(real, far)
