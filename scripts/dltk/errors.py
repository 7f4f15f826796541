"""The one exception type the CLI turns into a one-line error and exit code 1."""


class DltkError(Exception):
    """An expected, user-actionable error: printed as one line, no traceback."""
