"""Choosing a class by name or id (tfaug.utils.classes)."""
import pytest

from tfaug.errors import TfaugError
from tfaug.utils.classes import describe_classes, resolve_class

NAMES = ["cat", "coffee", "Dog"]


@pytest.mark.parametrize("value, expected", [("coffee", 1), ("cat", 0), ("dog", 2), ("DOG", 2), ("2", 2), (1, 1),
                                             (" coffee ", 1)])
def test_names_and_ids_resolve(value, expected):
    assert resolve_class(value, NAMES) == expected


def test_a_name_wins_over_an_id():
    # folders called "3" and "7": "3" is the first class, not id 3 (out of range)
    assert resolve_class("7", ["3", "7"]) == 1
    assert resolve_class("0", ["3", "7"]) == 0  # no class is named "0": the id


@pytest.mark.parametrize("value, what", [("cofee", "not a class name"), ("3", "out of range"), ("-1", "out of range")])
def test_unknown_or_out_of_range_lists_the_valid_names(value, what):
    with pytest.raises(TfaugError) as exc:
        resolve_class(value, NAMES, "--minority", "folder:pets")
    msg = str(exc.value)
    assert what in msg and "--minority" in msg and "folder:pets" in msg
    assert "0 cat, 1 coffee, 2 Dog" in msg and "\n" not in msg


def test_ambiguous_case_insensitive_match_is_an_error():
    with pytest.raises(TfaugError, match="not a class name"):
        resolve_class("cat", ["Cat", "CAT"])


def test_describe_classes_truncates_long_lists():
    text = describe_classes([f"c{i}" for i in range(50)], limit=3)
    assert text == "0 c0, 1 c1, 2 c2 and 47 more"
    assert describe_classes(["0", "1"]) == "0, 1"  # a name equal to its id is not repeated
