import numpy as np
import pytest

from tfaug.data.sources import load_dataset
from tfaug.errors import TfaugError
from tfaug.metrics.cas import classification_accuracy_score


@pytest.fixture(scope="module")
def digits_split():
    """sklearn digits (8x8, 10 classes) shuffled: 500 'generated' (real held-out), 400 test, 100 real train."""
    d = load_dataset("digits")
    p = np.random.default_rng(0).permutation(len(d))
    pick = lambda idx: (d.images[idx], d.labels[idx])
    return pick(p[:500]), pick(p[500:900]), pick(p[900:1000])


def test_perfect_generator_scores_high_and_real_comparisons_are_reported(digits_split):
    (xg, yg), (xte, yte), (xtr, ytr) = digits_split
    out = classification_accuracy_score(xg, yg, xte, yte, num_classes=10, train_images=xtr, train_labels=ytr,
                                        steps=60, width=16)
    assert out["cas"] > 0.8 and out["cas_macro_f1"] > 0.8
    assert 0.5 < out["real_only"] <= 1.0 and out["real_plus_generated"] > 0.8
    assert (out["n_generated"], out["n_test"], out["n_train"], out["steps"]) == (500, 400, 100, 60)
    assert out["classifier"] == "small_cnn"


def test_noise_generator_scores_near_chance(digits_split):
    """Noise carries no class information, so accuracy is chance (0.1) up to the test set's class imbalance:
    a classifier predicting one class scores that class's share of the test set (at most 0.125 here)."""
    (xg, yg), (xte, yte), _ = digits_split
    noise = np.random.default_rng(1).uniform(-1, 1, size=xg.shape).astype(np.float32)
    out = classification_accuracy_score(noise, yg, xte, yte, num_classes=10, steps=40, width=16)
    assert out["cas"] < 0.2
    assert "real_only" not in out and "real_plus_generated" not in out


def test_bad_input_raises_tfaug_error(digits_split):
    (xg, yg), (xte, yte), _ = digits_split
    with pytest.raises(TfaugError, match="labels must be class ids"):
        classification_accuracy_score(xg, yg + 10, xte, yte, num_classes=10)
    with pytest.raises(TfaugError, match="differ in shape"):
        classification_accuracy_score(xg[:, :4], yg, xte, yte, num_classes=10)
    with pytest.raises(TfaugError, match="both"):
        classification_accuracy_score(xg, yg, xte, yte, num_classes=10, train_images=xg)
