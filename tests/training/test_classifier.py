import numpy as np

from tfaug.config import ClassifierConfig
from tfaug.training.classifier import predict_classes, train_classifier
from tests_helpers import toy_split


def test_learns_a_separable_problem_and_scores_on_test(toy):
    (xtr, ytr), (xte, yte) = toy_split(toy)
    res = train_classifier(xtr, ytr, num_classes=3, cfg=ClassifierConfig(steps=60, width=8, seed=0),
                           x_test=xte, y_test=yte)
    assert res.metrics["accuracy"] >= 0.9
    assert res.metrics["n"] == len(yte)
    assert len(predict_classes(res.model, xte)) == len(yte)


def test_same_seed_same_result_and_augment_runs(toy):
    (xtr, ytr), (xte, yte) = toy_split(toy)
    cfg = ClassifierConfig(steps=15, width=8, seed=3)
    a = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte)
    b = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte)
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-5)
    c = train_classifier(xtr, ytr, num_classes=3, cfg=cfg, x_test=xte, y_test=yte, augment="classic")
    assert np.isfinite(c.history["loss"]).all()


def test_augmentation_never_reaches_evaluation(toy):
    """Classic augmentation lives in the training pipeline only: the model holds no random layers and scoring
    the test set twice gives identical predictions."""
    (xtr, ytr), (xte, yte) = toy_split(toy)
    res = train_classifier(xtr, ytr, num_classes=3, cfg=ClassifierConfig(steps=10, width=8), x_test=xte, y_test=yte,
                           augment="classic:objects")
    assert not [l for l in res.model.layers if l.__class__.__name__.startswith("Random")]
    np.testing.assert_array_equal(predict_classes(res.model, xte), predict_classes(res.model, xte))
