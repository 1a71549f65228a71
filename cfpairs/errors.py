"""Exceptions that the command line turns into one-line messages."""


class UserError(Exception):
    """Bad input or usage: the CLI prints the message and exits 2."""


class StoreError(UserError):
    """A store (being written or read) breaks the format contract."""


class OutputWriteError(Exception):
    """An output could not be written (a full disk, a file-size limit): the CLI prints the message
    and exits 1. Nothing is left under the output's name."""


class JobsFailed(Exception):
    """Runs failed where they ran (a cluster's jobs), their logs kept: the CLI prints the message
    and exits 1."""
