"""The one exception type that reaches the user as a clean message."""


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2 (`exit_code`; subclasses may name another)."""

    exit_code = 2


def first_line(e: BaseException) -> str:
    """The first non-empty line of an exception's message (or its type's name), for one-line errors."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__
