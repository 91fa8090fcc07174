"""Errors a user can fix. The CLI prints them as one line and exits with status 2."""

import re

_LINE_BREAKS = re.compile(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+\s*")
MAX_MESSAGE = 2000  # a value quoted from a user's file (a 1M-character code id) is cut short


class UserError(Exception):
    """A mistake in the user's input (study folder, params, CSV); the message says what to fix.

    Messages name files, lines, keys and columns, never transcript text. `str()` is always one
    line (line breaks inside quoted values become spaces) of at most MAX_MESSAGE characters.
    """

    def __str__(self) -> str:
        text = _LINE_BREAKS.sub(" ", super().__str__())
        return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."
