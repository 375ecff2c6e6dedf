"""Per-class sampling and PNG output, against a numpy generator that records what it was asked for."""
import numpy as np
import pytest
from PIL import Image

from tfaug.errors import TfaugError
from tfaug.models.sampling import validate_requests
from tfaug.synthesis.loader import Generator
from tfaug.synthesis.sample import CLASS_SEED_STRIDE, class_seeds, sample_class, sample_per_class, write_samples


class FakeGenerator:
    """Image = deterministic noise keyed by (class, seed); no TensorFlow, so these tests are instant."""

    num_classes = 3
    image_shape = (6, 5, 1)
    class_names = ("x", "y", "z")
    kind = "fake"

    def __init__(self):
        self.calls = []

    def sample(self, class_ids, seeds):
        cls, seeds = validate_requests(class_ids, seeds, self.num_classes)
        self.calls.append((cls.copy(), seeds.copy()))
        out = [np.random.default_rng([int(c), int(s) % 2**63]).uniform(-1, 1, self.image_shape) for c, s in zip(cls, seeds)]
        return np.asarray(out, np.float32).reshape(len(cls), *self.image_shape)


@pytest.fixture
def gen():
    return FakeGenerator()


def test_fake_satisfies_the_generator_protocol(gen):
    assert isinstance(gen, Generator)


def test_class_seeds_are_consecutive_int64():
    seeds = class_seeds(4, 42)
    assert seeds.dtype == np.int64 and seeds.tolist() == [42, 43, 44, 45]
    assert class_seeds(0, 5).shape == (0,)
    with pytest.raises(TfaugError):
        class_seeds(-1, 0)


def test_sample_class_uses_seed_plus_j(gen):
    images = sample_class(gen, 2, 4, seed=10)
    assert images.shape == (4, 6, 5, 1) and images.dtype == np.float32
    cls, seeds = gen.calls[-1]
    assert cls.tolist() == [2] * 4 and seeds.tolist() == [10, 11, 12, 13]
    # image j of a request is (class, seed + j): a later request starting at seed + 2 reproduces it
    np.testing.assert_array_equal(sample_class(gen, 2, 1, seed=12)[0], images[2])
    with pytest.raises(TfaugError, match="out of range"):
        sample_class(gen, 3, 1)


@pytest.mark.parametrize("request_, counts", [(2, [2, 2, 2]), ([1, 0, 3], [1, 0, 3]), ({2: 2, 0: 1}, [1, 0, 2])])
def test_sample_per_class_counts_labels_and_distinct_seeds(gen, request_, counts):
    images, labels = sample_per_class(gen, request_, seed=7)
    assert labels.dtype == np.int32 and images.dtype == np.float32
    assert labels.tolist() == sum(([c] * n for c, n in enumerate(counts)), [])
    assert images.shape == (sum(counts), 6, 5, 1)
    _, seeds = gen.calls[-1]
    assert len(set(seeds.tolist())) == len(seeds)  # classes never share latents
    for c in range(3):
        assert seeds[labels == c].tolist() == list(range(7 + CLASS_SEED_STRIDE * c, 7 + CLASS_SEED_STRIDE * c + counts[c]))


def test_sample_per_class_rejects_bad_requests(gen):
    with pytest.raises(TfaugError, match="3 classes"):
        sample_per_class(gen, [1, 2])
    with pytest.raises(TfaugError, match="out of range"):
        sample_per_class(gen, {5: 1})
    with pytest.raises(TfaugError, match=">= 0"):
        sample_per_class(gen, -1)
    images, labels = sample_per_class(gen, 0)
    assert images.shape == (0, 6, 5, 1) and labels.shape == (0,)


def test_write_samples_writes_n_pngs_and_a_grid(gen, tmp_path):
    from tfaug.utils.images import to_uint8

    paths = write_samples(gen, 1, 3, 42, tmp_path / "out")
    assert [p.name for p in paths] == ["class1_seed42.png", "class1_seed43.png", "class1_seed44.png", "grid.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)  # no temp files
    expected = to_uint8(sample_class(gen, 1, 3, 42))
    for path, image in zip(paths, expected):
        np.testing.assert_array_equal(np.asarray(Image.open(path)), image[..., 0])
    grid = np.asarray(Image.open(paths[-1]))
    assert grid.dtype == np.uint8 and grid.shape == (2 * 7 + 1, 2 * 6 + 1)
