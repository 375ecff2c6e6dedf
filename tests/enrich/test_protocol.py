"""The test set comes first; tiny classes get one sentence or the repeated-cv protocol."""
import numpy as np
import pytest

from tfaug.enrich.protocol import EnrichConfig, make_protocol, validation_split
from tfaug.errors import TfaugError


def test_holdout_is_stratified_and_disjoint():
    y = np.repeat(np.arange(3), [20, 30, 10])
    p = make_protocol(y, ["a", "b", "c"], EnrichConfig(test_fraction=0.3))
    assert p.name == "holdout" and not p.reason
    assert not set(p.train) & set(p.test) and len(p.train) + len(p.test) == len(y)
    assert np.bincount(y[p.test]).tolist() == [6, 9, 3]
    assert p.imbalanced  # 21 vs 7 training images


def test_class_too_small_for_a_test_set_uses_repeated_cv():
    y = np.repeat(np.arange(2), [20, 4])
    p = make_protocol(y, ["many", "few"], EnrichConfig(test_fraction=0.3))
    assert p.name == "repeated-cv" and len(p.test) == 0 and len(p.train) == len(y)
    assert "class 'few' has only 4 images" in p.reason


def test_class_with_two_images_gets_one_sentence():
    y = np.repeat(np.arange(3), [10, 2, 10])
    with pytest.raises(TfaugError) as err:
        make_protocol(y, ["cat", "lynx", "dog"], EnrichConfig())
    msg = str(err.value)
    assert "class 'lynx' has only 2 images" in msg and "\n" not in msg and msg.count(". ") == 0


def test_validation_split_keeps_one_image_of_every_class():
    y = np.repeat(np.arange(3), [2, 12, 3])
    for r in range(3):
        fit, val = validation_split(y, r, EnrichConfig(val_fraction=0.25))
        assert set(y[val]) == {0, 1, 2} and set(y[fit]) == {0, 1, 2}
        assert not set(fit) & set(val) and len(fit) + len(val) == len(y)
    assert not np.array_equal(validation_split(y, 0, EnrichConfig())[1], validation_split(y, 1, EnrichConfig())[1])


def test_bad_fractions_are_one_sentence():
    with pytest.raises(TfaugError, match="test-fraction"):
        EnrichConfig(test_fraction=0.0)
