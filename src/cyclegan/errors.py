"""The one exception type that reaches the user as a clean message."""


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""
