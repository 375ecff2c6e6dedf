import numpy as np
import pytest

from tfaug.errors import TfaugError
from tfaug.utils.neighbours import k_nearest_neighbours, leave_one_out_distances, nearest_neighbours


def _brute(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


@pytest.mark.parametrize("chunk,max_block", [(1, 10**6), (7, 10**6), (16, 100), (1000, 53 * 5), (1000, 10**6)])
def test_agrees_with_brute_force_across_block_boundaries(chunk, max_block):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(37, 6)), rng.normal(size=(53, 6))
    d = _brute(a, b)
    index, distance = nearest_neighbours(a, b, chunk=chunk, max_block=max_block)
    np.testing.assert_array_equal(index, d.argmin(1))
    np.testing.assert_allclose(distance, d.min(1), rtol=1e-6)
    assert index.dtype == np.int64 and distance.dtype == np.float32
    kidx, kdist = k_nearest_neighbours(a, b, 3, chunk=chunk, max_block=max_block)
    np.testing.assert_array_equal(kidx, np.argsort(d, axis=1)[:, :3])
    np.testing.assert_allclose(kdist, np.sort(d, axis=1)[:, :3], rtol=1e-6)


def test_exact_copies_are_at_distance_zero_despite_large_norms():
    rng = np.random.default_rng(1)
    b = rng.uniform(-1, 1, size=(40, 8, 8, 1)).astype(np.float32) * 100  # large norms: cancellation-prone
    index, distance = nearest_neighbours(b[[5, 0, 39]], b, chunk=16)
    np.testing.assert_array_equal(index, [5, 0, 39])
    np.testing.assert_array_equal(distance, 0.0)


def test_leave_one_out_skips_the_point_itself_but_not_its_twin():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 4))
    d = _brute(x, x) + np.diag(np.full(30, np.inf))
    np.testing.assert_allclose(leave_one_out_distances(x, chunk=8), d.min(1), rtol=1e-6)
    twins = np.concatenate([x, x[:1]])
    assert leave_one_out_distances(twins)[0] == 0.0


def test_bad_input_raises_tfaug_error():
    with pytest.raises(TfaugError, match="values each"):
        nearest_neighbours(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(TfaugError, match="k must be"):
        k_nearest_neighbours(np.zeros((2, 3)), np.zeros((2, 3)), 3)
    with pytest.raises(TfaugError, match="NaN"):
        nearest_neighbours(np.full((1, 3), np.nan), np.zeros((2, 3)))
