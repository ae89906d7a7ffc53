"""Electrode positions from MNE: built-in montage names and montage files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmm_eeg.errors import UserInputError

#: Old names of MNE built-in montages that newer MNE versions renamed.
_RENAMED = {"standard_1005": "colin27_1005", "standard_1020": "colin27_1020"}


def load_montage(source: str | Path) -> Any:
    """Load an MNE montage from a built-in name (``"biosemi64"``) or a file MNE reads.

    Parameters
    ----------
    source : str | path-like
        A name from ``mne.channels.get_builtin_montages()`` (``standard_1005`` is accepted
        for ``colin27_1005``), or a montage file (``.elc``, ``.sfp``, ``.loc``, ``.bvef``,
        ``.csd``, ``.elp``, ``.hpts``, ...).

    Returns
    -------
    mne.channels.DigMontage
        The montage.
    """
    import mne

    builtin = mne.channels.get_builtin_montages()
    name = str(source)
    for candidate in (name, _RENAMED.get(name), _new_to_old(name)):
        if candidate in builtin:
            return mne.channels.make_standard_montage(candidate)
    path = Path(source)
    if not path.is_file():
        raise UserInputError(
            f"Montage {name!r} is neither an MNE built-in montage nor an existing file. "
            f"Use one of {', '.join(builtin)}, or the path of a montage file."
        )
    try:
        return mne.channels.read_custom_montage(path, verbose="error")
    except Exception as err:  # MNE raises many types for unreadable files
        raise UserInputError(
            f"Could not read montage file {path}: {err}. Give a file in a format "
            "mne.channels.read_custom_montage reads (.elc, .sfp, .loc, .bvef, .csd, ...)."
        ) from err


def _new_to_old(name: str) -> str | None:
    return next((old for old, new in _RENAMED.items() if new == name), None)
