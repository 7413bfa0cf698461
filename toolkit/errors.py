"""The exception types for user mistakes: the CLI prints their message on one line and exits 2."""


class UserError(Exception):
    """Bad input from the user (a path, a file, an option): shown as one line, never a traceback."""
