"""Errors that reach the user as one clear line (the CLI prints them and exits non-zero)."""


class StochregError(Exception):
    """Base class: anything stochreg reports to the user without a traceback."""


class UsageError(StochregError):
    """A bad argument, name or config value."""


class DataError(StochregError):
    """Missing, corrupt or unusable data files."""
