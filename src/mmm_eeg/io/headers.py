"""Channel lists of EEG files, read from their headers without loading the signals."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmm_eeg.errors import UserInputError
from mmm_eeg.io.readers import muse_columns, open_raw
from mmm_eeg.montage import montage_positions


@dataclass(frozen=True)
class ChannelInfo:
    """The channels of one file: names, MNE types, positions when the file has them.

    Attributes
    ----------
    path : Path
        The file.
    names : tuple of str
        Channel names as the file spells them.
    types : tuple of str or None
        MNE channel types, one per name, when the format declares them.
    positions : dict of str to ndarray
        Positions (metres, MNE head frame) keyed by upper-case channel name; empty when the
        file has none (EDF, CSV).
    """

    path: Path
    names: tuple[str, ...]
    types: tuple[str, ...] | None = None
    positions: dict[str, np.ndarray] = field(default_factory=dict)


def read_channel_info(path: str | Path) -> ChannelInfo:
    """Read the channel list of an EEG file.

    Parameters
    ----------
    path : str | path-like
        Any file ``mne.io.read_raw`` reads (EDF/BDF, GDF, FIF, BrainVision ``.vhdr``, EEGLAB
        ``.set``, CNT, ...), or a Muse CSV (``timestamps,TP9,AF7,AF8,TP10,Right AUX,Marker0``).

    Returns
    -------
    ChannelInfo
        Names, types and positions of the file's channels.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such file. Check the path.")
    if path.suffix.lower() == ".csv":
        return _read_csv_channels(path)
    raw = open_raw(path, preload=False)
    montage = raw.get_montage()
    return ChannelInfo(
        path=path,
        names=tuple(raw.ch_names),
        types=tuple(raw.get_channel_types()),
        positions=montage_positions(montage) if montage is not None else {},
    )


def _read_csv_channels(path: Path) -> ChannelInfo:
    with path.open(newline="") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise UserInputError(f"{path}: empty CSV file; expected a header row of channel names.")
    _, names, _ = muse_columns(header, path)
    return ChannelInfo(path=path, names=tuple(names))
