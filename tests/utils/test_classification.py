import numpy as np
import pytest
from sklearn.metrics import f1_score

from tfaug.utils.classification import classification_metrics


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


def test_balanced_accuracy_and_minority_scores_match_sklearn():
    from sklearn.metrics import balanced_accuracy_score, recall_score

    rng = np.random.default_rng(1)
    y = np.concatenate([np.zeros(80, int), np.ones(15, int), np.full(5, 2)])
    p = np.where(rng.random(100) < 0.6, y, 0)
    m = classification_metrics(y, p, 3, minority=[1, 2])
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))
    assert m["minority_f1"] == pytest.approx(np.mean(f1_score(y, p, average=None)[1:]))
    assert m["minority_recall"] == pytest.approx(np.mean(recall_score(y, p, average=None)[1:]))
    assert classification_metrics(y, p, 3, minority=2)["minority_recall"] == pytest.approx(recall_score(y, p, average=None)[2])
    # hand-computed: recalls (1, 0, 0.5) over 3 classes
    m = classification_metrics([0, 0, 1, 2, 2], [0, 0, 0, 2, 1], 3)
    assert m["balanced_accuracy"] == pytest.approx(0.5) and m["accuracy"] == pytest.approx(0.6)


def test_head_middle_tail_groups_are_thirds_by_training_count():
    from tfaug.errors import TfaugError
    from tfaug.utils.classification import class_groups, group_accuracy

    counts = [500, 300, 180, 107, 64, 38, 23]  # 7 classes: 3 head, 2 middle, 2 tail
    assert class_groups(counts) == [[0, 1, 2], [3, 4], [5, 6]]
    assert class_groups([5, 9, 9, 1]) == [[1, 2], [0], [3]]  # sorted by count, ties by class id
    y = np.array([0, 1, 2, 3, 4, 5, 6, 6])
    p = np.array([0, 1, 0, 3, 0, 0, 6, 0])
    got = group_accuracy(y, p, counts)
    assert got == pytest.approx({"head_accuracy": 2 / 3, "middle_accuracy": 1 / 2, "tail_accuracy": 1 / 3})
    assert classification_metrics(y, p, 7, train_counts=counts)["tail_accuracy"] == pytest.approx(1 / 3)
    assert np.isnan(group_accuracy([0, 1], [0, 1], [9, 5, 1])["tail_accuracy"])
    with pytest.raises(TfaugError):
        class_groups([3, 2])
