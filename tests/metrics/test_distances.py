import numpy as np
import pytest
from scipy import linalg

from tfaug.metrics.distances import fid_from_features, frechet_distance, kernel_inception_distance


def test_frechet_matches_closed_form_for_commuting_covariances():
    # Diagonal covariances: sqrt(S1 S2) = sqrt of the product of the diagonals.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    d1, d2 = np.array([1.0, 2.0, 3.0]), np.array([4.0, 0.5, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    assert frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(expected)


def test_frechet_matches_scipy_reference_on_random_covariances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T, b @ b.T
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-6)


def test_fid_orders_distributions_and_survives_few_samples():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(400, 8))
    near, far = rng.normal(0.1, 1, size=(400, 8)), rng.normal(1.0, 1, size=(400, 8))
    assert fid_from_features(real, near) < fid_from_features(real, far)
    few = fid_from_features(rng.normal(size=(5, 16)), rng.normal(size=(5, 16)))  # N < D: singular covariances
    assert np.isfinite(few) and few >= 0


def test_kid_is_unbiased_near_zero_for_one_distribution_and_grows_with_shift():
    rng = np.random.default_rng(2)
    same = kernel_inception_distance(rng.normal(size=(300, 10)), rng.normal(size=(300, 10)), subsets=20, subset_size=100)
    shifted = kernel_inception_distance(rng.normal(size=(300, 10)), rng.normal(0.5, 1, size=(300, 10)), subsets=20,
                                        subset_size=100)
    assert abs(same[0]) < 3 * same[1] + 1e-3
    assert shifted[0] > 10 * max(abs(same[0]), 1e-4)


def test_kid_matches_direct_formula_on_one_full_subset():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(6, 4)), rng.normal(1, 1, size=(6, 4))
    k = lambda a, b: (a @ b.T / 4 + 1) ** 3  # noqa: E731
    m = 6
    ref = ((k(x, x).sum() - np.trace(k(x, x))) / (m * (m - 1)) + (k(y, y).sum() - np.trace(k(y, y))) / (m * (m - 1))
           - 2 * k(x, y).mean())
    mean, std = kernel_inception_distance(x, y, subsets=3, subset_size=50)  # capped at 6: every subset is everything
    assert mean == pytest.approx(ref) and std == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        kernel_inception_distance(x[:1], y)
