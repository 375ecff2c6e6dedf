"""Choosing a strategy on validation columns only."""
import pytest

from tfaug.errors import TfaugError
from tfaug.studies.choose import choice_table, choose_on_validation


def _rows():
    rows = []
    for setting in ("k=1", "k=5"):
        for rep in range(3):
            rows.append({"setting": setting, "strategy": "classic", "repeat": rep, "val_accuracy": 0.5 + rep / 100,
                         "accuracy": 0.9})
            # a: +2 points on validation but far worse on test; b: +1 on validation, best on test
            rows.append({"setting": setting, "strategy": "a", "repeat": rep, "val_accuracy": 0.52 + rep / 100,
                         "accuracy": 0.1})
            rows.append({"setting": setting, "strategy": "b", "repeat": rep, "val_accuracy": 0.51 + rep / 100,
                         "accuracy": 0.99})
    return rows


def test_the_choice_follows_validation_not_test():
    choice = choose_on_validation(_rows(), ["b", "a"])
    assert choice.strategy == "a"
    assert [(s, round(d, 6), n) for s, d, n in choice.ranking] == [("a", 0.02, 6), ("b", 0.01, 6)]
    assert "**a**" in choice_table(choice) and "+2.00" in choice_table(choice)
    assert choose_on_validation(_rows(), ["a", "b"], settings=["k=5"]).ranking[0][2] == 3


def test_choosing_on_test_or_without_validation_is_refused():
    with pytest.raises(TfaugError, match="validation column"):
        choose_on_validation(_rows(), ["a"], metric="accuracy")
    no_val = [{k: v for k, v in r.items() if k != "val_accuracy"} for r in _rows()]
    with pytest.raises(TfaugError, match="validation_per_class"):
        choose_on_validation(no_val, ["a"])
    with pytest.raises(TfaugError, match="'c' has no"):
        choose_on_validation(_rows(), ["c"])
