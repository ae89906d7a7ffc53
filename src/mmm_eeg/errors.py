"""Exceptions that mean "the user's input is wrong", as opposed to a bug.

The CLI turns these into one readable message and exit code 2, with no traceback.
"""

from __future__ import annotations


class UserInputError(ValueError):
    """Base class of errors caused by the user's input (files, names, options).

    Parameters
    ----------
    message : str
        What is wrong and what to do.
    parameter : str | None
        The Python parameter at fault, when there is one; the command line names its flag.
    """

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class ChannelMappingError(UserInputError):
    """Channels that cannot be placed on the unified topology."""
