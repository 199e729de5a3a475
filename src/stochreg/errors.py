"""Errors that reach the user as one clear line (the CLI prints them and exits non-zero)."""


class StochregError(Exception):
    """Base class: anything stochreg reports to the user without a traceback.

    ``every_rank``: under torchrun, every process raises this same error at the same point (a
    setting, or an agreed stop), so only rank 0 prints it; other errors are printed by the rank
    that hit them, with its number.
    """

    def __init__(self, message: str = "", every_rank: bool = False):
        super().__init__(message)
        self.every_rank = every_rank


class UsageError(StochregError):
    """A bad argument, name or config value (the same command line, so the same error, on every rank)."""

    def __init__(self, message: str = "", every_rank: bool = True):
        super().__init__(message, every_rank)


class DataError(StochregError):
    """Missing, corrupt or unusable data files."""
