"""Feature extractors: the cached domain classifier (train once, reload identically), resize protocol, and the
InceptionV3-from-local-weights wiring and error paths."""
import time

import numpy as np
import pytest

from tfaug.config import ClassifierConfig
from tfaug.data.sources import load_dataset
from tfaug.data.subsets import stratified_split
from tfaug.errors import TfaugError
from tfaug.metrics import features as F
from tfaug.utils.images import to_float

TINY = ClassifierConfig(name="lenet5", steps=120, batch_size=64, dropout=0.0, seed=0)


@pytest.fixture(scope="module")
def digits_extractor(tmp_path_factory):
    """(extractor, seconds to build it, dataset, train idx, held-out idx); the cache dir is this module's own, so
    the first call trains whatever other test files cached before (their order differs under pytest-xdist)."""
    ds = load_dataset("digits")
    train, _, test = stratified_split(ds.labels, test=0.5, seed=0)
    cache = tmp_path_factory.mktemp("tfaug-feature-cache")
    start = time.perf_counter()
    ext = F.domain_extractor("digits", ds.images[train], ds.labels[train], cache_dir=cache, config=TINY,
                             split_desc={"indices": train.tolist()}, progress=False)
    return ext, time.perf_counter() - start, cache, ds, train, test


def test_domain_extractor_features_and_probabilities(digits_extractor):
    ext, _, _, ds, _, test = digits_extractor
    x = to_float(ds.images[test])
    feats, probs = ext.extract(x)
    assert ext.name == "domain" and ext.image_shape == (8, 8, 1) and ext.num_classes == 10
    assert feats.shape == (len(test), ext.feature_dim) and feats.dtype == np.float32 and ext.feature_dim == 84
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert np.mean(probs.argmax(1) == ds.labels[test]) > 0.6  # a usable domain classifier on held-out digits
    np.testing.assert_allclose(ext.features(x[:7]), feats[:7], rtol=1e-5, atol=1e-5)  # batching-independent
    p = ext.protocol()
    assert p["name"] == "domain" and p["input_shape"] == [8, 8, 1] and len(p["cache_key"]) == 20
    assert p["resize"].startswith("none")


def test_second_call_loads_the_cache_and_gives_identical_features(digits_extractor):
    ext, first_seconds, cache, ds, train, test = digits_extractor
    start = time.perf_counter()
    again = F.domain_extractor("digits", ds.images[train], ds.labels[train], cache_dir=cache, config=TINY,
                               split_desc={"indices": train.tolist()}, progress=False)
    assert time.perf_counter() - start < first_seconds / 2
    x = to_float(ds.images[test[:64]])
    np.testing.assert_array_equal(again.features(x), ext.features(x))
    assert again.protocol()["cache_key"] == ext.protocol()["cache_key"]
    assert (cache / "features" / ext.protocol()["cache_key"] / F.MODEL_FILE).is_file()
    # any change of data, split or config is a different key
    other = F.domain_cache_key("digits", ds.images[train], ds.labels[train], TINY, {"indices": train[1:].tolist()})
    assert other != ext.protocol()["cache_key"]
    assert F.domain_cache_key("digits", ds.images[train], ds.labels[train], ClassifierConfig(name="lenet5", steps=7),
                              {"indices": train.tolist()}) != ext.protocol()["cache_key"]


def test_other_sizes_are_resized_and_recorded(digits_extractor):
    ext, *_ = digits_extractor
    x = np.random.default_rng(0).uniform(-1, 1, size=(3, 12, 12, 1)).astype(np.float32)
    assert ext.features(x).shape == (3, ext.feature_dim)
    assert "bilinear from 12x12x1 to 8x8" in ext.protocol()["resize"]
    with pytest.raises(TfaugError, match="1-channel"):
        ext.features(np.zeros((2, 8, 8, 3), np.float32))


def test_cache_root_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TFAUG_CACHE", str(tmp_path))
    assert F.cache_root() == tmp_path
    assert F.cache_root(tmp_path / "x") == tmp_path / "x"


def test_inception_without_weights_is_a_clear_error(tmp_path):
    with pytest.raises(TfaugError, match="never downloads"):
        F.inception_extractor(None)
    with pytest.raises(TfaugError, match="not found.*never downloads"):
        F.inception_extractor(tmp_path / "missing.weights.h5")


@pytest.mark.slow
def test_inception_from_local_weights_file(tmp_path):
    import keras

    path = tmp_path / "inception.weights.h5"
    keras.utils.set_random_seed(0)
    keras.applications.InceptionV3(include_top=True, weights=None).save_weights(str(path))
    ext = F.inception_extractor(path, batch_size=2)
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 12, 12, 1)).astype(np.float32)
    feats, probs = ext.extract(x)
    assert feats.shape == (2, 2048) and probs.shape == (2, 1000)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-4)
    p = ext.protocol()
    assert p["input_shape"] == [299, 299, 3] and "12x12x1 to 299x299" in p["resize"]
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not weights")
    with pytest.raises(TfaugError, match="does not hold InceptionV3 weights"):
        F.inception_extractor(bad)
