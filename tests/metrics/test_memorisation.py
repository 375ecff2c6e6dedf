import numpy as np
import pytest
from PIL import Image

from tfaug.errors import TfaugError
from tfaug.metrics.memorisation import closest_pairs_grid, memorisation


@pytest.fixture(scope="module")
def digits_thirds():
    """sklearn digits (1797 images, 64 pixels) as pixel features in [0, 16], shuffled into three real sets."""
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32)
    x = x[np.random.default_rng(0).permutation(len(x))]
    return x[:600], x[600:1200], x[1200:]


def test_exact_copies_score_one(digits_thirds):
    train, held, _ = digits_thirds
    idx = np.array([3, 3, 0, 599, 250])
    out = memorisation(train[idx], train, held)
    assert out["share_copies"] == 1.0
    np.testing.assert_array_equal(out["nearest_index"], idx)
    np.testing.assert_array_equal(out["nearest_distance"], 0.0)
    assert out["median_nn_distance"] == 0.0 < out["threshold"] < out["heldout_median_nn_distance"]
    assert (out["n_generated"], out["n_train"], out["n_heldout"]) == (5, 600, 600)


@pytest.mark.parametrize("percentile", [1.0, 10.0])
def test_unseen_real_images_score_about_percentile(digits_thirds, percentile):
    """A second held-out set is exchangeable with the reference one, so its share below the p-th percentile is
    p/100 up to sampling noise: with 597 generated and 600 reference distances the standard deviation is about
    sqrt(2 * q * (1 - q) / 600) (0.006 for q = 0.01, 0.017 for q = 0.1); the tolerance is 3 of them."""
    train, held, other = digits_thirds
    out = memorisation(other, train, held, percentile=percentile)
    q = percentile / 100
    assert abs(out["share_copies"] - q) <= 3 * np.sqrt(2 * q * (1 - q) / 600)
    assert out["median_nn_distance"] == pytest.approx(out["heldout_median_nn_distance"], rel=0.1)


def test_noise_scores_zero(digits_thirds):
    train, held, _ = digits_thirds
    noise = np.random.default_rng(1).uniform(0, 16, size=(200, 64)).astype(np.float32)
    out = memorisation(noise, train, held)
    assert out["share_copies"] == 0.0
    assert out["median_nn_distance"] > 2 * out["heldout_median_nn_distance"]


def test_pixel_space_with_and_without_heldout_pixels(digits_thirds):
    train, held, _ = digits_thirds
    train_img = np.rint(train * (255 / 16)).astype(np.uint8).reshape(-1, 8, 8, 1)
    held_img = np.rint(held * (255 / 16)).astype(np.uint8).reshape(-1, 8, 8, 1)
    noise = np.random.default_rng(2).uniform(-1, 1, size=(10, 8, 8, 1)).astype(np.float32)
    gen_img = np.concatenate([train_img[:10], (noise * 127.5 + 127.5).astype(np.uint8)])
    gen_feat = np.concatenate([train[:10], np.full((10, 64), 8.0, np.float32)])
    loo = memorisation(gen_feat, train, held, gen_pixels=gen_img, train_pixels=train_img)
    assert loo["share_copies_pixel"] == 0.5 and loo["pixel_threshold_reference"] == "train_leave_one_out"
    np.testing.assert_array_equal(loo["nearest_index_pixel"][:10], np.arange(10))
    ho = memorisation(gen_feat, train, held, gen_pixels=gen_img, train_pixels=train_img, heldout_pixels=held_img)
    assert ho["share_copies_pixel"] == 0.5 and ho["pixel_threshold_reference"] == "heldout"
    assert ho["pixel_threshold"] > 0


def test_bad_input_raises_tfaug_error(digits_thirds):
    train, held, _ = digits_thirds
    with pytest.raises(TfaugError, match="feature sizes differ"):
        memorisation(train[:, :10], train, held)
    with pytest.raises(TfaugError, match="percentile"):
        memorisation(train, train, held, percentile=0)
    with pytest.raises(TfaugError, match="both"):
        memorisation(train, train, held, gen_pixels=train)


def test_closest_pairs_grid_writes_a_png_with_the_closest_pairs(tmp_path):
    rng = np.random.default_rng(3)
    gen = rng.integers(0, 256, size=(20, 8, 8, 1), dtype=np.uint8)
    train = rng.integers(0, 256, size=(30, 8, 8, 1), dtype=np.uint8)
    out = memorisation(gen.reshape(20, -1), train.reshape(30, -1), train[::-1].reshape(30, -1))
    path = closest_pairs_grid(tmp_path / "sub" / "pairs.png", gen, train, out["nearest_index"],
                              out["nearest_distance"], n=4)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        assert img.size[0] > 50 and img.size[1] > 50
    assert [p.name for p in path.parent.iterdir()] == ["pairs.png"]  # no temporary file left behind
    with pytest.raises(TfaugError, match="one nearest index"):
        closest_pairs_grid(tmp_path / "x.png", gen, train, out["nearest_index"][:3], out["nearest_distance"], n=4)
