"""The per-draw choice of classic augmentation: validation on the draw only, never on test images."""
import numpy as np

from tfaug.config import ClassifierConfig
from tfaug.training import augment_choice
from tfaug.training.augment_choice import choose_augment, validation_splits
from tests_helpers import toy_images


def test_validation_splits_are_stratified_disjoint_and_need_two_per_class():
    y = np.repeat(np.arange(3), [2, 5, 10])
    splits = validation_splits(y, repeats=3, seed=0)
    assert len(splits) == 3
    for tr, va in splits:
        assert not set(tr) & set(va) and len(tr) + len(va) == len(y)
        assert sorted(np.bincount(y[va], minlength=3)) == [1, 1, 2]  # max(1, round(0.2 n)), at most n - 1
        assert (np.bincount(y[tr], minlength=3) >= 1).all()
    assert not np.array_equal(splits[0][1], splits[1][1])
    assert validation_splits(np.array([0, 1, 1]), repeats=2, seed=0) == []  # a class with one image


def test_choice_reads_only_the_draw_it_is_given(monkeypatch):
    """Every candidate trains and scores on images of the draw: the test images never reach it."""
    x, y = toy_images(n_per_class=6, num_classes=3, size=8)
    seen = []
    real = augment_choice.__dict__  # noqa: F841  (module under test)
    from tfaug.training import classifier

    original = classifier.train_classifier

    def spy(x_train, y_train, **kw):
        seen.append((np.asarray(x_train).copy(), np.asarray(kw["x_test"]).copy()))
        return original(x_train, y_train, **kw)

    monkeypatch.setattr(classifier, "train_classifier", spy)
    cfg = ClassifierConfig(steps=4, width=4, batch_size=8)
    choice = choose_augment(x, y, num_classes=3, cfg=cfg, repeats=1)
    assert choice.protocol == "validation" and choice.kind == "glyphs"
    tried = set(choice.scores)
    # the preset and none always; the milder preset only when none beat the preset
    assert tried in ({"classic:glyphs", "none"}, {"classic:glyphs", "classic:glyphs-mild", "none"})
    assert ("classic:glyphs-mild" in tried) == (choice.scores["none"] > choice.scores["classic:glyphs"])
    assert choice.spec in choice.scores
    assert choice.scores[choice.spec] == max(choice.scores.values())
    draw = {im.tobytes() for im in (x.astype(np.float32) / 127.5 - 1.0)}
    assert len(seen) == len(tried)
    for xtr, xva in seen:
        assert {im.tobytes() for im in xtr} <= draw and {im.tobytes() for im in xva} <= draw
        assert not {im.tobytes() for im in xtr} & {im.tobytes() for im in xva}


def test_one_image_per_class_keeps_the_kind_preset_unvalidated_and_named_specs_pass():
    x, y = toy_images(n_per_class=1, num_classes=3, size=8)
    cfg = ClassifierConfig(steps=2, width=4)
    choice = choose_augment(x, y, num_classes=3, cfg=cfg)
    assert (choice.spec, choice.protocol, choice.scores) == ("classic:glyphs", "default", {})
    named = choose_augment(x, y, num_classes=3, cfg=cfg, spec="classic:objects")
    assert (named.spec, named.protocol) == ("classic:objects", "named")
