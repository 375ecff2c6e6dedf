"""Choose a class by name or by id: the one rule every ``--class-id`` / ``--minority`` flag follows.

A value names a class when it equals one of the class names (exactly, else case-insensitively when that is
unambiguous); otherwise a whole number in ``[0, K)`` is taken as the class id. Names win over ids, so a dataset
whose folders are called ``3`` and ``7`` is addressed as ``3`` and ``7``, as the user sees them. Anything else is
a :class:`~tfaug.errors.TfaugError` that lists the valid classes.
"""
from __future__ import annotations

from collections.abc import Sequence

from tfaug.errors import TfaugError

__all__ = ["resolve_class", "describe_classes"]

MAX_LISTED = 40  # an error lists at most this many classes


def describe_classes(class_names: Sequence[str], limit: int = MAX_LISTED) -> str:
    """``"0 cat, 1 coffee, ..."``: ids with their names, at most ``limit`` >= 1 of them then ``and N more``."""
    names = [str(n) for n in class_names]
    shown = ", ".join(f"{i} {n}" if n != str(i) else n for i, n in enumerate(names[:limit]))
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def resolve_class(value, class_names: Sequence[str], flag: str = "--class-id", where: str = "") -> int:
    """The class id in ``[0, K)`` that ``value`` (a name, or an id as int or text) picks out of ``class_names``.

    Args:
        value: a class name, or a whole number in [0, K) (int or text) when no class has that name.
        class_names: the K >= 1 class names; ``class_names[i]`` names id ``i``.
        flag: the option's name, for the error message.
        where: what holds the classes (e.g. ``"the generator"``), for the error message.

    Raises:
        TfaugError: ``value`` is neither a class name nor an id in range; the message lists the classes.
    """
    names = [str(n) for n in class_names]
    text = str(value).strip()
    if text in names:
        return names.index(text)
    folded = [i for i, n in enumerate(names) if n.casefold() == text.casefold()]
    if len(folded) == 1:
        return folded[0]
    if text.lstrip("+").isdigit() and int(text) < len(names):
        return int(text)
    holder = f" of {where}" if where else ""
    what = "out of range" if text.lstrip("+-").isdigit() else "not a class name"
    raise TfaugError(f"{flag} {text!r} is {what}{holder}; the {len(names)} classes are (id name): "
                     f"{describe_classes(names)}")
