import numpy as np
import pytest
from sklearn.metrics import f1_score

from tfaug.metrics.classification import classification_metrics


def test_matches_sklearn_and_counts():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, 200))
    m = classification_metrics(y, p, 4, minority=2)
    assert m["accuracy"] == pytest.approx(np.mean(y == p))
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    assert m["minority_f1"] == pytest.approx(f1_score(y, p, average=None)[2])
    assert len(m["per_class_recall"]) == 4 and m["n"] == 200
    assert not m["degenerate"]


def test_degenerate_classifier_is_flagged():
    m = classification_metrics([0, 1, 1, 0], [1, 1, 1, 1], 2)
    assert m["degenerate"] and m["predicted_classes"] == 1
    assert m["accuracy"] == 0.5
