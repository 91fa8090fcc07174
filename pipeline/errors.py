"""Errors a user can fix. The CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """A mistake in the user's input (study folder, params, CSV); the message says what to fix.

    Messages name files, lines, keys and columns, never transcript text.
    """
