"""Exceptions that mean "the user's input is wrong", as opposed to a bug.

The CLI turns these into one readable message and exit code 2, with no traceback.
"""


class UserInputError(ValueError):
    """Base class of errors caused by the user's input (files, names, options)."""


class ChannelMappingError(UserInputError):
    """Channels that cannot be placed on the unified topology."""
