"""FID/KID/IS/PRDC/consistency/per-class maths against independent numpy/scipy/sklearn references."""
import numpy as np
import pytest
from scipy import linalg, stats
from scipy.spatial.distance import cdist
from sklearn.metrics.pairwise import polynomial_kernel

import tfaug.metrics.distances as distances
from tfaug.metrics.distances import fid_from_features, frechet_distance, kernel_inception_distance
from tfaug.metrics.fidelity import class_consistency, inception_score, per_class_distances, prdc


def _fid_reference(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))


def test_fid_matches_reference_on_fixed_random_features():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 6))
    b = rng.normal(0.3, 1.4, size=(250, 6)) @ rng.normal(size=(6, 6))
    assert fid_from_features(a, b) == pytest.approx(_fid_reference(a, b), rel=1e-8)
    assert fid_from_features(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_of_two_gaussian_samples_approaches_the_closed_form():
    rng = np.random.default_rng(4)
    mu1, mu2 = np.array([0.0, 0.0, 0.0]), np.array([1.0, -0.5, 0.0])
    d1, d2 = np.array([1.0, 2.0, 0.5]), np.array([0.5, 1.0, 2.0])
    closed = np.sum((mu1 - mu2) ** 2) + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))
    a = rng.normal(mu1, np.sqrt(d1), size=(40000, 3))
    b = rng.normal(mu2, np.sqrt(d2), size=(40000, 3))
    assert fid_from_features(a, b) == pytest.approx(closed, rel=0.03)
    assert frechet_distance(mu1, np.diag(d1), mu2, np.diag(d2)) == pytest.approx(closed, rel=1e-9)


def test_fid_with_fewer_samples_than_dimensions_is_finite():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(10, 30)), rng.normal(size=(12, 30))
    value = fid_from_features(a, b)
    assert np.isfinite(value) and value > 0


def _kid_reference(real, fake, subsets, subset_size, seed):
    """Same draws as the library (documented order: real then fake per subset), independent kernel maths."""
    rng = np.random.default_rng(seed)
    m = min(subset_size, len(real), len(fake))
    out = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        g = 1.0 / x.shape[1]
        kxx = polynomial_kernel(x, x, degree=3, gamma=g, coef0=1)
        kyy = polynomial_kernel(y, y, degree=3, gamma=g, coef0=1)
        kxy = polynomial_kernel(x, y, degree=3, gamma=g, coef0=1)
        off = ~np.eye(m, dtype=bool)
        out.append(kxx[off].mean() + kyy[off].mean() - 2 * kxy.mean())
    return np.mean(out), np.std(out)


@pytest.mark.parametrize("limit", [0, 2500])  # per-subset path and full-kernel path
def test_kid_matches_sklearn_kernel_reference(monkeypatch, limit):
    monkeypatch.setattr(distances, "FULL_KERNEL_LIMIT", limit)
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(120, 5)), rng.normal(0.2, 1.1, size=(90, 5))
    mean, std = kernel_inception_distance(real, fake, subsets=7, subset_size=1000, seed=2)
    ref_mean, ref_std = _kid_reference(real, fake, 7, 1000, 2)
    assert mean == pytest.approx(ref_mean, rel=1e-9)
    assert std == pytest.approx(ref_std, rel=1e-7)


def test_kid_adapts_subset_size_and_is_unbiased():
    rng = np.random.default_rng(7)
    # 400 independent pairs of same-distribution sets of 20 points (subset size adapted from 1000 down to 20).
    values = np.array([kernel_inception_distance(rng.normal(size=(20, 4)), rng.normal(size=(20, 4)), subsets=1,
                                                 seed=i)[0] for i in range(400)])
    assert abs(values.mean()) < 3 * values.std() / np.sqrt(len(values))
    # the biased (V-statistic) MMD would sit clearly above 0: the test can fail
    shifted = np.array([kernel_inception_distance(rng.normal(size=(20, 4)), rng.normal(0.3, 1, size=(20, 4)),
                                                  subsets=1, seed=i)[0] for i in range(100)])
    assert shifted.mean() > 3 * shifted.std() / np.sqrt(len(shifted))


def _is_reference(p, splits):
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0)
        scores.append(np.exp(np.mean([stats.entropy(row, py) for row in part])))
    return np.mean(scores), np.std(scores)


def test_inception_score_matches_scipy_entropy_reference_and_bounds():
    rng = np.random.default_rng(8)
    logits = rng.normal(0, 3, size=(200, 10))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mean, std = inception_score(p, splits=5)
    ref = _is_reference(p, 5)
    assert mean == pytest.approx(ref[0], rel=1e-6) and std == pytest.approx(ref[1], rel=1e-5)
    confident = np.eye(10)[np.arange(200) % 10]
    assert inception_score(confident, splits=4)[0] == pytest.approx(10.0, rel=1e-6)
    assert inception_score(np.full((50, 10), 0.1))[0] == pytest.approx(1.0)
    assert inception_score(np.eye(10)[np.zeros(50, int)])[0] == pytest.approx(1.0)


def _prdc_reference(real, fake, k):
    rr, ff, rf = cdist(real, real), cdist(fake, fake), cdist(real, fake)
    r_rad = np.sort(rr, axis=1)[:, k]
    f_rad = np.sort(ff, axis=1)[:, k]
    return {
        "precision": np.mean([(rf[:, j] < r_rad).any() for j in range(len(fake))]),
        "recall": np.mean([(rf[i] < f_rad).any() for i in range(len(real))]),
        "density": np.mean([(rf[:, j] < r_rad).sum() for j in range(len(fake))]) / k,
        "coverage": np.mean(rf.min(axis=1) < r_rad),
    }


def test_prdc_matches_brute_force_reference_across_chunks():
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(70, 3)), rng.normal(0.5, 1.2, size=(55, 3))
    ref = _prdc_reference(real, fake, 5)
    for chunk in (8, 1024):
        got = prdc(real, fake, k=5, chunk=chunk)
        for key in ref:
            assert got[key] == pytest.approx(ref[key]), key


def test_prdc_on_hand_built_sets():
    rng = np.random.default_rng(10)
    real = rng.normal(size=(50, 2))
    same = prdc(real, real.copy(), k=3)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    far = prdc(real, real + 100.0, k=3)
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    # mode collapse: every fake point on one real point -> precise but no recall/coverage
    collapsed = prdc(real, np.repeat(real[:1], 50, axis=0) + rng.normal(0, 1e-6, (50, 2)), k=3)
    assert collapsed["precision"] == 1.0 and collapsed["recall"] < 0.1 and collapsed["coverage"] < 0.1
    with pytest.raises(ValueError):
        prdc(real[:3], real[:3], k=5)


def test_class_consistency_and_per_class_flags():
    probs = np.eye(3)[[0, 1, 2, 2]]
    assert class_consistency(probs, [0, 1, 2, 0]) == pytest.approx(0.75)
    rng = np.random.default_rng(11)
    real, fake = rng.normal(size=(30, 4)), rng.normal(size=(21, 4))
    rl, fl = np.repeat([0, 1, 2], 10), np.array([0] * 10 + [1] * 10 + [2])
    out = per_class_distances(real, rl, fake, fl, ["a", "b", "c"], kid_subsets=5)
    assert set(out) == {"a", "b", "c"}
    assert out["c"]["too_few"] and out["c"]["fid"] is None and out["c"]["n_generated"] == 1
    assert not out["a"]["too_few"] and out["a"]["fid"] > 0 and set(out["a"]["kid"]) == {"mean", "std"}
    assert out["a"]["fid"] == pytest.approx(_fid_reference(real[:10], fake[:10]), rel=1e-8)
