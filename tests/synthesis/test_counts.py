"""The shared generated-images-per-class rule (train-classifier, studies and fill agree through it)."""
import pytest

from tfaug.errors import TfaugError
from tfaug.synthesis.counts import generated_counts, round_half_up


def test_top_up_reaches_the_majority_and_removes_the_imbalance():
    # the case: 3 minority images, 24 of every other class -> 21 generated minority images, nothing else
    assert generated_counts([24, 3, 24], top_up=True) == [0, 21, 0]
    assert generated_counts([12, 400, 300], top_up=True) == [388, 0, 100]
    assert generated_counts([5, 5], top_up=True) == [0, 0]  # balanced: nothing to top up


def test_target_is_fill_minimum_and_ratio_wins():
    assert generated_counts([2, 5, 12], target=6) == [4, 1, 0]
    assert generated_counts([24, 3, 24], ratio=0.5, top_up=True) == [12, 2, 12]  # explicit ratio, half up
    assert generated_counts([24, 3, 24]) == [24, 3, 24]  # neither: one per real image
    assert generated_counts([7, 0], ratio=0.0) == [0, 0]
    assert [round_half_up(v) for v in (0.5, 1.5, 2.5, 2.49)] == [1, 2, 3, 2]


@pytest.mark.parametrize("kwargs", [dict(class_counts=[]), dict(class_counts=[1, -1]), dict(class_counts=[1.5]),
                                    dict(class_counts=[1], ratio=-1.0), dict(class_counts=[1], target=0),
                                    dict(class_counts=[1], ratio=float("nan"))])
def test_bad_input_is_one_sentence(kwargs):
    with pytest.raises(TfaugError) as info:
        generated_counts(**kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["cdcgan", "cdcgan:0.5", "bagan:2", "extra-real"])
@pytest.mark.parametrize("kind", ["per_class", "imbalance"])
def test_studies_count_generated_images_by_the_same_rule(text, kind):
    """The strategy object's ``synthetic_counts`` (per_class and imbalance regimes of a study setting) agrees with
    the shared rule."""
    import numpy as np

    from tfaug.studies.config import Setting
    from tfaug.synthesis.strategies import Counts, parse, synthetic_counts

    y = np.repeat(np.arange(3), [24, 3, 17])
    setting = (Setting("k", "per_class", per_class=24) if kind == "per_class"
               else Setting("m", "imbalance", minority=(1,), keep=3.0))
    strategy = parse(text)
    studies = synthetic_counts(strategy, Counts.of(setting), y, 3)
    shared = generated_counts(np.bincount(y).tolist(), ratio=strategy.ratio if strategy.ratio_given else None,
                              top_up=kind == "imbalance")
    assert [studies[c] for c in range(3)] == shared
