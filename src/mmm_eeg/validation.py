"""Argument checks shared by the whole package, in the spirit of MNE's ``_check_option``.

Every check raises :class:`~mmm_eeg.errors.UserInputError` naming the *Python* parameter; the
command line maps that name to its flag (``bipolar`` -> ``--bipolar``) when it prints the error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from mmm_eeg.errors import UserInputError

T = TypeVar("T")


def check_option(parameter: str, value: T, allowed: Iterable[Any], *, extra: str = "") -> T:
    """Return ``value`` if it is one of ``allowed``, else raise naming the allowed values.

    Parameters
    ----------
    parameter : str
        The parameter's name, as the caller's signature spells it.
    value : object
        The value given.
    allowed : iterable
        The accepted values.
    extra : str
        A sentence appended to the message (what the values mean, where to look).
    """
    allowed = list(allowed)
    if value in allowed:
        return value
    choices = ", ".join(repr(a) for a in allowed)
    message = (
        f"Invalid value for the {parameter!r} parameter: {value!r}. Allowed values: {choices}."
    )
    raise UserInputError(f"{message} {extra}".strip(), parameter=parameter)


def check_range(
    parameter: str,
    value: T,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> T:
    """Return ``value`` if ``low <= value <= high`` (``low < value`` with ``low_open``)."""
    below = low is not None and (value <= low if low_open else value < low)  # type: ignore[operator]
    above = high is not None and value > high  # type: ignore[operator]
    if below or above or value != value:  # the last: NaN
        if low is not None and high is not None:
            bound = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
        elif low is not None:
            bound = f"{'>' if low_open else '>='} {low:g}"
        else:
            bound = f"<= {high:g}"
        raise UserInputError(
            f"Invalid value for the {parameter!r} parameter: {value!r}; it must be {bound}.",
            parameter=parameter,
        )
    return value


def check_type(parameter: str, value: T, types: type | tuple[type, ...]) -> T:
    """Return ``value`` if it is an instance of ``types``, else raise naming the expected type."""
    if isinstance(value, types):
        return value
    names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
    raise UserInputError(
        f"The {parameter!r} parameter must be {names}, got {type(value).__name__} ({value!r}).",
        parameter=parameter,
    )


def split_list(value: str | None) -> list[str] | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (empty items dropped); None stays None.

    The one parser of the comma-separated lists of the command line and of specs (events,
    labels, subjects, channels, list-valued options).
    """
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]
