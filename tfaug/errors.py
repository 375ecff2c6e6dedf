"""The single user-facing exception type.

Anything a user can cause (bad dataset spec, too few images, unreadable run directory, class id out of
range ...) raises :class:`TfaugError` with one sentence that says what is wrong and how to fix it. The CLI
prints that sentence and exits with status 2; it never shows a stack trace for these.
"""


class TfaugError(Exception):
    """A problem with the user's input or environment, explained in one sentence."""
