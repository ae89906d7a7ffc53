"""Exceptions that mean "the user's input is wrong", as opposed to a bug.

The CLI turns these into one readable message and exit code 2, with no traceback.
"""

from __future__ import annotations

import struct

#: What file readers (MNE-Python, mne-bids, pandas, NumPy) raise for a file that is damaged,
#: truncated, of another format or absent: ``OSError`` (I/O), ``ValueError`` (with pandas'
#: ``ParserError``/``EmptyDataError`` and ``UnicodeDecodeError``), ``RuntimeError`` (MNE's and
#: mne-bids' "cannot read"), ``KeyError``/``IndexError`` (a header that lacks a field), ``EOFError``
#: and ``struct.error`` (truncated binary headers). Anything else (``TypeError``,
#: ``AttributeError``, ...) is a bug and propagates as one.
READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, RuntimeError, KeyError, IndexError, EOFError, struct.error,
)  # fmt: skip


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
