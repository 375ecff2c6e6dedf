"""Within-class diversity: vectorised SSIM against scikit-image, bounded seeded pairs, collapse detection."""
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from tfaug.metrics.diversity import class_pairs, pairwise_feature_distance, pairwise_ssim, ssim


@pytest.mark.parametrize("shape", [(12, 12, 1), (8, 8, 3), (28, 20, 1)])
def test_ssim_matches_skimage(shape):
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, size=(4, *shape))
    b = np.clip(a + rng.normal(0, 0.4, size=a.shape), -1, 1)
    got = ssim(a, b, data_range=2.0)
    ref = [structural_similarity(x, y, data_range=2.0, channel_axis=-1) for x, y in zip(a, b)]
    np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ssim(a, a), 1.0)


def test_class_pairs_are_bounded_seeded_and_within_class():
    labels = np.repeat([0, 1, 2], [50, 3, 1])
    pairs = class_pairs(labels, max_pairs=40, seed=1)
    assert set(pairs) == {0, 1}  # class 2 has a single image: no pairs
    assert len(pairs[0]) == 40 and len(pairs[1]) == 3  # 3 images -> all 3 pairs
    assert all((labels[p] == c).all() and (p[:, 0] != p[:, 1]).all() for c, p in pairs.items())
    np.testing.assert_array_equal(class_pairs(labels, 40, seed=1)[0], pairs[0])
    assert not np.array_equal(class_pairs(labels, 40, seed=2)[0], pairs[0])


def test_mode_collapse_scores_as_no_diversity():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 20)
    diverse = rng.uniform(-1, 1, size=(40, 8, 8, 1)).astype(np.float32)
    collapsed = np.concatenate([np.repeat(diverse[:1], 20, 0), np.repeat(diverse[20:21], 20, 0)])
    assert pairwise_ssim(collapsed, labels)["mean"] == pytest.approx(1.0)
    assert pairwise_ssim(diverse, labels)["mean"] < 0.2
    feats = rng.normal(size=(40, 5))
    assert pairwise_feature_distance(feats[np.repeat([0, 20], 20)], labels)["mean"] == 0.0
    assert pairwise_feature_distance(feats, labels)["mean"] > 1.0
