"""The Recording type: signals in volts plus everything needed to place and label them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmm_eeg.errors import UserInputError
from mmm_eeg.montage import montage_positions
from mmm_eeg.validation import check_range


@dataclass(frozen=True)
class Annotation:
    """A labelled span or event: onset and duration in seconds from the recording's start."""

    onset: float
    duration: float
    description: str


@dataclass
class Recording:
    """One continuous EEG recording.

    Attributes
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Signals in volts (float32 or float64).
    sfreq : float
        Sampling rate in Hz.
    ch_names : list of str
        Channel names as the source spells them.
    ch_types : list of str or None
        MNE channel types when the source declares them.
    positions : dict of str to ndarray
        Electrode positions (metres, MNE head frame) keyed by upper-case channel name.
    annotations : list of Annotation
        Events and labelled spans.
    meta : dict
        Source path, format and anything else worth keeping (subject, session, trial, ...).
    bads : list of str
        Channels marked bad by the source (MNE's ``info["bads"]``, BIDS ``status=bad``): they
        are left out, and reported as absent.
    """

    data: np.ndarray
    sfreq: float
    ch_names: list[str]
    ch_types: list[str] | None = None
    positions: dict[str, np.ndarray] = field(default_factory=dict)
    annotations: list[Annotation] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    bads: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data)
        if self.data.ndim != 2:
            raise ValueError(f"data must be (n_channels, n_samples), got shape {self.data.shape}.")
        if self.data.dtype not in (np.float32, np.float64):
            self.data = self.data.astype(np.float64)
        if len(self.ch_names) != self.data.shape[0]:
            raise ValueError(
                f"{len(self.ch_names)} channel names for {self.data.shape[0]} channels of data."
            )
        if self.ch_types is not None and len(self.ch_types) != len(self.ch_names):
            raise ValueError(f"{len(self.ch_types)} channel types for {len(self.ch_names)} names.")
        check_range("sfreq", self.sfreq, low=0, low_open=True)

    @property
    def n_samples(self) -> int:
        """Samples per channel."""
        return self.data.shape[1]

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.n_samples / self.sfreq

    @property
    def source(self) -> str:
        """Where the recording came from, for messages."""
        return str(self.meta.get("path", "<array>"))

    @classmethod
    def from_array(
        cls,
        data: np.ndarray,
        sfreq: float,
        ch_names: Sequence[str],
        unit: float = 1.0,
        **kwargs: Any,
    ) -> Recording:
        """Wrap a numpy array of shape (n_channels, n_samples).

        Parameters
        ----------
        data : array-like, shape (n_channels, n_samples)
            The signals.
        sfreq : float
            Sampling rate in Hz.
        ch_names : sequence of str
            One name per row of ``data``.
        unit : float
            What one unit of ``data`` is in volts: 1 for volts, 1e-6 for microvolts.
        **kwargs
            Further :class:`Recording` fields (``ch_types``, ``positions``, ``annotations``,
            ``meta``, ``bads``).

        Raises
        ------
        UserInputError
            For a shape that does not match ``ch_names`` (saying when it looks transposed) and
            for amplitudes that cannot be EEG in volts (saying which ``unit`` fits).
        """
        data = np.asarray(data)
        names = list(ch_names)
        if data.ndim != 2:
            raise UserInputError(
                f"data must be 2-D (n_channels, n_samples), got shape {data.shape}.",
                parameter="data",
            )
        if data.shape[0] != len(names):
            hint = " It looks transposed: pass data.T." if data.shape[1] == len(names) else ""
            raise UserInputError(
                f"data has {data.shape[0]} rows for {len(names)} channel names; rows must be "
                f"channels, shape (n_channels, n_samples).{hint}",
                parameter="data",
            )
        volts = data * unit
        peak = float(np.nanmax(np.abs(volts))) if volts.size else 0.0
        if peak > 0.01:  # 10 mV: no scalp EEG is that large
            raise UserInputError(
                f"data reaches {peak:.3g} V with unit={unit:g}; scalp EEG stays below about "
                "1e-3 V. Give unit=1e-6 for microvolts (1e-3 for millivolts).",
                parameter="unit",
            )
        return cls(volts, float(sfreq), names, **kwargs)

    @classmethod
    def from_raw(cls, raw: Any, meta: dict[str, Any] | None = None) -> Recording:
        """A recording from an ``mne.io.Raw`` (loaded now if it is not): signals, channel
        names and types, its montage's positions and its annotations."""
        montage = raw.get_montage()
        return cls(
            data=raw.get_data(),
            sfreq=float(raw.info["sfreq"]),
            ch_names=list(raw.ch_names),
            ch_types=list(raw.get_channel_types()),
            positions=montage_positions(montage) if montage is not None else {},
            annotations=annotations_from_mne(raw.annotations),
            meta=dict(meta or {}),
            bads=list(raw.info["bads"]),
        )

    @classmethod
    def from_epochs(cls, epochs: Any) -> list[Recording]:
        """One recording per epoch of an ``mne.Epochs`` (``meta["epoch"]`` is its index)."""
        sfreq, described = float(epochs.info["sfreq"]), _described(epochs)
        return [
            cls(
                data=data,
                sfreq=sfreq,
                meta={"epoch": i},
                **{k: v.copy() for k, v in described.items()},
            )
            for i, data in enumerate(epochs.get_data(copy=True))
        ]

    @classmethod
    def from_epochs_end_to_end(cls, epochs: Any) -> Recording:
        """One recording of an ``mne.Epochs``'s epochs end to end (epoch i starts at sample
        ``i * n_times``), each marked by an annotation of its event's name at the time its
        event would have (``-tmin`` after the epoch's start): with ``epoch_tmin=epochs.tmin``
        the event-locked windows are the epochs themselves."""
        data = epochs.get_data(copy=True)
        sfreq, n_times = float(epochs.info["sfreq"]), data.shape[-1]
        names = {code: name for name, code in epochs.event_id.items()}
        annotations = [
            Annotation(i * n_times / sfreq - float(epochs.tmin), 0.0, names[int(code)])
            for i, code in enumerate(epochs.events[:, 2])
        ]
        return cls(
            data=data.transpose(1, 0, 2).reshape(data.shape[1], -1),
            sfreq=sfreq,
            annotations=annotations,
            **_described(epochs),
        )

    def with_data(self, data: np.ndarray, sfreq: float | None = None) -> Recording:
        """A copy with other signals (same channels), e.g. after resampling or re-referencing."""
        return Recording(
            data,
            self.sfreq if sfreq is None else sfreq,
            list(self.ch_names),
            None if self.ch_types is None else list(self.ch_types),
            dict(self.positions),
            list(self.annotations),
            dict(self.meta),
            list(self.bads),
        )


def _described(epochs: Any) -> dict[str, Any]:
    """What an ``mne.Epochs`` says of its channels: names, types, positions, bads."""
    montage = epochs.get_montage()
    return {
        "ch_names": list(epochs.ch_names),
        "ch_types": list(epochs.get_channel_types()),
        "positions": montage_positions(montage) if montage is not None else {},
        "bads": list(epochs.info["bads"]),
    }


def annotations_from_mne(raw_annotations: Any) -> list[Annotation]:
    """Convert ``mne.Annotations`` (onsets relative to the first sample)."""
    return [
        Annotation(float(a["onset"]), float(a["duration"]), str(a["description"]))
        for a in raw_annotations
    ]


def natural_key(path: str | Path) -> tuple:
    """Sort key that orders numbers numerically: ``2_x`` before ``10_x``."""
    parts = re.split(r"(\d+)", Path(path).name)
    return tuple(int(p) if p.isdigit() else p.lower() for p in parts)
