"""Electrode positions from MNE-Python: the 10-05 template, built-in montages, montage files.

All code that asks MNE where an electrode sits lives here; the topology and the channel mapping
read positions through it, and the readers turn a file's own montage into positions with it.
Positions are in metres, MNE head frame, keyed by upper-case electrode name.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from mmm_eeg.channels import clean_name
from mmm_eeg.errors import READ_ERRORS, UserInputError

#: The template montage that gives node positions (MNE >= 1.12 name, then its old name).
TEMPLATE_MONTAGES = ("colin27_1005", "standard_1005")

#: Old names of MNE built-in montages that newer MNE versions renamed.
_RENAMED = {"standard_1005": "colin27_1005", "standard_1020": "colin27_1020"}

#: CB1/CB2 (Neuroscan Quik-Cap cerebellar sites, below O1/O2) are not in the 10-05 template.
#: They sit one 10 % step below O1/O2 at the level of the inion, which is where the 10-05 system
#: puts I1/I2 (also named O9/O10); we give them those positions.
EXTRA_SITES = {"CB1": "I1", "CB2": "I2"}


@cache
def _template_positions() -> dict[str, np.ndarray]:
    """Upper-case 10-05 name -> position (metres, MNE head frame) from MNE's template."""
    import mne

    builtin = mne.channels.get_builtin_montages()
    name = next(m for m in TEMPLATE_MONTAGES if m in builtin)
    positions = montage_positions(mne.channels.make_standard_montage(name))
    for site, source in EXTRA_SITES.items():
        positions[site] = positions[source]
    return positions


def montage_positions(montage: Any) -> dict[str, np.ndarray]:
    """Return a montage's electrode positions in the MNE head frame, keyed by upper-case name.

    Parameters
    ----------
    montage : mne.channels.DigMontage
        Any montage MNE can apply to an ``Info`` (template, file, or ``raw.get_montage()``).

    Returns
    -------
    dict of str to ndarray, shape (3,)
        Positions in metres; channels without a finite position are left out.
    """
    import mne

    names = montage.ch_names
    if not names:
        return {}
    info = mne.create_info(names, 1000.0, "eeg")
    # set_montage converts MRI/unknown frames to head coordinates through the fiducials.
    info.set_montage(montage, on_missing="ignore", verbose="error")
    positions = info.get_montage().get_positions()["ch_pos"]
    return {
        clean_name(k): np.asarray(v, dtype=float)
        for k, v in positions.items()
        if np.all(np.isfinite(v))
    }


def template_position(name: str) -> np.ndarray | None:
    """Position (metres, head frame) of a 10-05 site or alias in the template, or None."""
    return _template_positions().get(clean_name(name))


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
    except READ_ERRORS as err:  # what MNE raises for unreadable files
        raise UserInputError(
            f"Could not read montage file {path}: {err}. Give a file in a format "
            "mne.channels.read_custom_montage reads (.elc, .sfp, .loc, .bvef, .csd, ...)."
        ) from err


def _new_to_old(name: str) -> str | None:
    return next((old for old, new in _RENAMED.items() if new == name), None)


def resolve_positions(positions: Any) -> dict[str, np.ndarray]:
    """Normalise any position source to ``{UPPER-CASE NAME: xyz (m, head frame)}``.

    ``positions`` is None, a mapping name -> xyz, an MNE montage, or a montage name or file
    (see :func:`load_montage`).
    """
    if positions is None:
        return {}
    if isinstance(positions, (str, Path)):
        positions = load_montage(positions)
    if isinstance(positions, Mapping):
        out = {}
        for key, value in positions.items():
            xyz = np.asarray(value, dtype=float)
            if xyz.shape != (3,):
                raise UserInputError(f"Position of {key!r} must be 3 numbers, got {value!r}.")
            if np.all(np.isfinite(xyz)):
                out[clean_name(key)] = xyz
        return out
    return montage_positions(positions)
