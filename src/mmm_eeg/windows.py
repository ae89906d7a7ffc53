"""One recording in, its windows out: DE on the unified topology, quality checks, labels.

Pure computation on numpy arrays (no files written here; :mod:`mmm_eeg.corpus` stores the
result). Steps for a :class:`~mmm_eeg.io.Recording`:

1. map its channels onto the topology (unknown names are dropped and reported);
2. optionally resample, mark channels that are bad for the whole recording absent (non-finite,
   flat or beyond the amplitude limit in more than half of their windows), re-reference to the
   average of the good mapped channels if asked;
3. drop windows where a present channel is non-finite, flat or beyond the amplitude limit;
4. label windows: from one label per recording, or from annotation spans through an events map
   (a window must lie inside spans of one label; straddling two labels or leaving the spans
   drops it);
5. DE per window, channel and band; optional LDS smoothing within runs of one label.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mmm_eeg.errors import UserInputError
from mmm_eeg.features import (
    DE_METHODS,
    DEFAULT_BANDS,
    differential_entropy,
    lds_smooth,
    window_starts,
)
from mmm_eeg.io.recording import Annotation, Recording
from mmm_eeg.io.seed import FeatureTrial
from mmm_eeg.mapping import DEFAULT_TOLERANCE_MM, ChannelMapping
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.validation import check_option, check_range
from mmm_eeg.waveforms import check_signal_settings, signal_samples, signal_windows


@dataclass(frozen=True)
class PreprocessConfig:
    """How recordings become windows; stored with the corpus.

    Parameters
    ----------
    window : float
        Window length in seconds.
    step : float | None
        Hop between windows in seconds (None: the window length, no overlap).
    method : {"fft", "filter"}
        DE definition (see :mod:`mmm_eeg.features`).
    bands : tuple of (name, low, high)
        Frequency bands in Hz.
    resample : float | None
        Resample every recording to this rate first.
    reference : {"none", "average"}
        Re-reference to the average of the good mapped channels.
    max_amplitude_uv : float | None
        Drop windows where a present channel exceeds this absolute amplitude (µV).
    flat_uv : float
        A channel whose peak-to-peak in a window is below this (µV) is flat there.
    bad_channel_fraction : float
        A channel bad in more than this fraction of windows is absent for the whole recording.
    lds : bool
        LDS smoothing of DE within runs of one label (see :func:`mmm_eeg.features.lds_smooth`).
    tolerance_mm : float
        Position-matching tolerance of the channel mapping.
    bipolar : {"exclude", "midpoint"}
        Bipolar derivations (TUH's TCP montage ``FP1-F7``): left out, or each fed to the node
        nearest the midpoint of its two electrodes.
    signal_rate : float | None
        Also keep each window's signal at this rate (Hz), band-limited, for raw-token models
        (see mmm_eeg.waveforms); None: DE only.
    signal_band : (low, high)
        Pass band of the kept signal in Hz.
    signal_unit_uv : float
        Unit of the kept signal in microvolts.
    epoch_tmin : float | None
        Lock windows to events: one window per event of the events map, starting this many
        seconds after its onset (negative: before), ``window`` seconds long (mmm-eeg
        preprocess --epochs-from EVENTS --tmin T0 --tmax T1). None: windows tile the recording.
    """

    window: float = 1.0
    step: float | None = None
    method: Literal["fft", "filter"] = "fft"
    bands: tuple[tuple[str, float, float], ...] = DEFAULT_BANDS
    resample: float | None = None
    reference: Literal["none", "average"] = "none"
    max_amplitude_uv: float | None = None
    flat_uv: float = 0.1
    bad_channel_fraction: float = 0.5
    lds: bool = False
    tolerance_mm: float = DEFAULT_TOLERANCE_MM
    bipolar: Literal["exclude", "midpoint"] = "exclude"
    signal_rate: float | None = None
    signal_band: tuple[float, float] = (1.0, 45.0)
    signal_unit_uv: float = 100.0
    epoch_tmin: float | None = None

    def __post_init__(self) -> None:
        if self.epoch_tmin is not None and (
            self.lds or self.step is not None or self.method == "filter"
        ):
            raise UserInputError(
                "Event-locked windows (epoch_tmin) are one per event: they take neither a step "
                "nor LDS smoothing across windows, and DE by filtering would run the filter "
                "across neighbouring epochs; drop step and lds, use method='fft'.",
                parameter="epoch_tmin",
            )
        check_option("bipolar", self.bipolar, ("exclude", "midpoint"))
        object.__setattr__(self, "signal_band", tuple(float(f) for f in self.signal_band))
        if self.signal_rate is not None:
            check_signal_settings(
                self.signal_rate, self.signal_band, self.signal_unit_uv, self.window
            )
        check_option("reference", self.reference, ("none", "average"))
        check_option("method", self.method, DE_METHODS)
        check_range("tolerance_mm", self.tolerance_mm, low=0, low_open=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out = asdict(self)
        out["bands"] = [list(b) for b in self.bands]
        out["signal_band"] = list(self.signal_band)
        return out

    @property
    def signal_samples(self) -> int | None:
        """Samples of a window's kept signal (None: no signal kept)."""
        return None if self.signal_rate is None else signal_samples(self.window, self.signal_rate)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`."""
        values = dict(values)
        values["bands"] = tuple(tuple(b) for b in values["bands"])
        return cls(**values)  # fields added later take their defaults


@dataclass
class WindowSet:
    """The kept windows of one recording (or trial), ready for the corpus.

    Attributes
    ----------
    features : ndarray, shape (n_windows, n_nodes, n_bands), float32
        DE on the topology; absent nodes are zero.
    present : ndarray of bool, shape (n_windows, n_nodes)
        Nodes fed by a good channel.
    start_s : ndarray, shape (n_windows,)
        Window starts in seconds from the recording's start.
    labels : list of str or None
        Label of each window (None when the recording has no labels).
    dropped : dict of str to int
        Windows dropped, by reason.
    absent_channels : dict of str to str
        Mapped channels left out for the whole recording, with the reason.
    signal : ndarray, shape (n_windows, n_nodes, n_samples), float32 | None
        Each window's signal (:mod:`mmm_eeg.waveforms`) when the config keeps it; absent
        nodes are zero.
    """

    features: np.ndarray
    present: np.ndarray
    start_s: np.ndarray
    labels: list[str | None]
    dropped: dict[str, int] = field(default_factory=dict)
    absent_channels: dict[str, str] = field(default_factory=dict)
    signal: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.features)


def extract_windows(
    recording: Recording,
    topology: UnifiedTopology,
    config: PreprocessConfig | None = None,
    label: str | None = None,
    events: Mapping[str, str] | None = None,
) -> WindowSet:
    """DE windows of one recording on the topology, with quality checks and labels.

    Parameters
    ----------
    recording : Recording
        Signals in volts.
    topology : UnifiedTopology
        The unified topology.
    config : PreprocessConfig | None
        Preprocessing options (None: defaults).
    label : str | None
        One label for every window (from a manifest).
    events : mapping of str to str | None
        Annotation description -> label; windows get labels from annotation spans.

    Returns
    -------
    WindowSet
        Kept windows; ``dropped`` counts the others by reason.
    """
    config = config or PreprocessConfig()
    if label is not None and events:
        raise ValueError("Give either one label per recording or an events map, not both.")
    mapping = map_recording_channels(
        topology, recording.ch_names, config, recording.positions, recording.ch_types
    )
    nodes = np.flatnonzero(mapping.present)
    data = recording.data[mapping.source[nodes]]
    sfreq = recording.sfreq
    if config.resample is not None and config.resample != sfreq:
        data, sfreq = _resample(data, sfreq, config.resample), float(config.resample)
    epochs = None
    if config.epoch_tmin is not None:  # the epochs, end to end, are then windows like any
        epochs = _event_epochs(recording, data, sfreq, config, events)
        data = epochs[0]
    starts = window_starts(data.shape[1], sfreq, config.window, config.step)
    if len(starts) == 0:
        raise UserInputError(
            f"{recording.source}: {recording.duration:.2f} s is shorter than one "
            f"{config.window:g} s window; nothing to extract."
        )
    bad, reasons = window_quality(data, sfreq, starts, config)
    names = [recording.ch_names[mapping.source[n]] for n in nodes]
    marked = np.array([name in recording.bads for name in names], dtype=bool)
    channel_bad = (bad.mean(axis=1) > config.bad_channel_fraction) | marked
    absent_channels = {
        names[c]: "marked bad by the source" if marked[c] else _majority_reason(reasons[c])
        for c in np.flatnonzero(channel_bad)
    }
    if channel_bad.all():
        raise UserInputError(
            f"{recording.source}: every mapped channel is bad for most of the recording "
            f"({', '.join(f'{k}: {v}' for k, v in list(absent_channels.items())[:4])}). "
            "Check the file's units and content."
        )
    good = ~channel_bad
    de, signal, failed = checked_windows(data, sfreq, good, bad, reasons, config)
    window_bad = failed != ""
    dropped = Counter(failed[window_bad])

    start_s = starts / sfreq
    if epochs is None:
        labels, label_ok, label_reason = window_labels(
            start_s, config.window, label, recording.annotations, events
        )
    else:
        _, start_s, labels, lost = epochs
        label_ok, label_reason = np.ones(len(labels), dtype=bool), [""] * len(labels)
        dropped.update(lost)
    for w in np.flatnonzero(~label_ok & ~window_bad):
        dropped[label_reason[w]] += 1
    keep = ~window_bad & label_ok
    de = de[keep]
    kept_labels = [labels[w] for w in np.flatnonzero(keep)]
    if config.lds and len(de):
        de = lds_smooth(de, _runs(kept_labels, start_s[keep], config))
    features = on_nodes(de, nodes[good], good, topology.n_nodes)
    present = np.zeros((len(de), topology.n_nodes), dtype=bool)
    present[:, nodes[good]] = True
    if signal is not None:
        signal = on_nodes(signal[keep], nodes[good], good, topology.n_nodes)
    return WindowSet(
        features, present, start_s[keep], kept_labels, dict(dropped), absent_channels, signal
    )


def on_nodes(
    values: np.ndarray, nodes: np.ndarray, channels: np.ndarray, n_nodes: int
) -> np.ndarray:
    """(windows, channels, k) values of the mapped ``channels`` placed on their topology
    ``nodes``: (windows, n_nodes, k) float32, zero elsewhere."""
    out = np.zeros((len(values), n_nodes, values.shape[-1]), dtype=np.float32)
    out[:, nodes] = values[:, channels]
    return out


def _event_epochs(
    recording: Recording,
    data: np.ndarray,
    sfreq: float,
    config: PreprocessConfig,
    events: Mapping[str, str] | None,
) -> tuple[np.ndarray, np.ndarray, list[str | None], dict[str, int]]:
    """The event-locked windows of ``data`` end to end, their starts (s), labels, and the events
    left out by reason (no full window inside the recording; two labels at one onset)."""
    if not events:
        raise UserInputError(
            f"{recording.source}: event-locked windows (epoch_tmin) need the events that lock "
            "them, with their labels: --epochs-from 1=house,2=face (or an events map)."
        )
    length = round(config.window * sfreq)
    firsts, labels, outside = [], [], 0
    at: dict[int, set[str]] = {}
    for a in recording.annotations:
        if a.description in events:
            first = round((a.onset + float(config.epoch_tmin or 0.0)) * sfreq)
            at.setdefault(first, set()).add(events[a.description])
            if first < 0 or first + length > data.shape[1]:
                outside += 1
                continue
            firsts.append(first)
            labels.append(events[a.description])
    # Events of two labels at one onset: one window cannot carry both labels.
    conflicting = {f for f, names in at.items() if len(names) > 1}
    kept = [i for i, f in enumerate(firsts) if f not in conflicting]
    lost = {"event too close to the recording's edge": outside,
            "events of two labels at one onset": len(firsts) - len(kept)}  # fmt: skip
    firsts, labels = [firsts[i] for i in kept], [labels[i] for i in kept]
    if not firsts:
        raise UserInputError(
            f"{recording.source}: no event of {sorted(events)} has a full {config.window:g} s "
            f"window inside the recording ({lost}); check the events "
            "map against the file's annotations."
        )
    index = np.asarray(firsts)[:, None] + np.arange(length)
    epochs = data[:, index].reshape(len(data), -1)
    return epochs, np.asarray(firsts) / sfreq, labels, {k: n for k, n in lost.items() if n}


def map_recording_channels(
    topology: UnifiedTopology,
    ch_names: Sequence[str],
    config: PreprocessConfig,
    positions: Mapping[str, Any] | None = None,
    types: Sequence[str] | None = None,
) -> ChannelMapping:
    """A recording's channels on the topology, with ``config``'s mapping options.

    The one mapping of every route (a file, an array, a live stream): ``config.tolerance_mm``
    and ``config.bipolar``; names that match no node and have no position are dropped.
    """
    return topology.map_channels(
        list(ch_names),
        positions or None,
        types=types,
        tolerance_mm=config.tolerance_mm,
        on_unknown="drop",
        bipolar=config.bipolar,
    )


def window_quality(
    data: np.ndarray, sfreq: float, starts: np.ndarray, config: PreprocessConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(channels, windows) bad flags and reason codes (0 ok, 1 non-finite, 2 flat, 3 amplitude)
    of the windows of ``data`` (mapped channels, volts) starting at sample ``starts``."""
    return _window_quality(data, starts, round(config.window * sfreq), config)


def checked_windows(
    data: np.ndarray,
    sfreq: float,
    good: np.ndarray,
    bad: np.ndarray,
    reasons: np.ndarray,
    config: PreprocessConfig,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """DE (and signal, when the config keeps it) of every window, and why each window fails.

    The one window path: :func:`extract_windows` (a whole recording) and the online decoder
    (one window of a stream) both call it. ``good`` marks the channels used; the average
    reference (if asked) is theirs; a window fails when one of them is non-finite, flat or
    beyond the amplitude limit in it (``bad``, ``reasons`` from :func:`window_quality`).

    Returns
    -------
    de : ndarray, shape (n_windows, n_channels, n_bands)
        Failed windows' values are meaningless (non-finite samples were zeroed for the filter).
    signal : ndarray, shape (n_windows, n_channels, n_samples) | None
        Each window's signal (:func:`mmm_eeg.waveforms.signal_windows`) when
        ``config.signal_rate`` is set.
    failed : ndarray of str, shape (n_windows,)
        ``""`` for a window that passes, else the first failed check (``"non-finite samples"``,
        ``"flat signal"``, ``"amplitude above limit"``).
    """
    if config.reference == "average":
        data = data - np.nanmean(np.where(good[:, None], data, np.nan), axis=0, keepdims=True)
    failed = np.full(bad.shape[1], "", dtype=object)
    for w in np.flatnonzero(bad[good].any(axis=0)):
        failed[w] = _first_reason(reasons[good], w)
    # zero non-finite samples (failed windows only) so the filters stay finite; no copy when
    # every sample is finite, the usual case
    finite = np.isfinite(data)
    clean = data if finite.all() else np.where(finite, data, 0.0)
    de = differential_entropy(clean, sfreq, config.bands, config.window, config.step, config.method)
    signal = None
    if config.signal_rate is not None:
        starts = window_starts(clean.shape[1], sfreq, config.window, config.step)
        length = round(config.window * sfreq)
        signal = signal_windows(
            clean, sfreq, starts, length, config.signal_rate, config.signal_band,
            config.signal_unit_uv, n_out=config.signal_samples,
        )  # fmt: skip
    return de, signal, failed


def feature_windows(trial: FeatureTrial, topology: UnifiedTopology, lds: bool = False) -> WindowSet:
    """Ready-made DE features (SEED's ExtractedFeatures) as a :class:`WindowSet`."""
    mapping = topology.map_channels(trial.ch_names, on_unknown="drop")
    features = mapping.to_nodes(trial.features, axis=1).astype(np.float32)
    if lds:
        features = lds_smooth(features).astype(np.float32)
    present = np.broadcast_to(mapping.present, features.shape[:2]).copy()
    start_s = np.arange(len(features)) * trial.window
    return WindowSet(features, present, start_s, [str(trial.label)] * len(features))


def window_labels(
    start_s: np.ndarray,
    window: float,
    label: str | None = None,
    annotations: Sequence[Annotation] = (),
    events: Mapping[str, str] | None = None,
) -> tuple[list[str | None], np.ndarray, list[str]]:
    """Label of each window, whether it can be kept, and why not.

    With ``events``, a window is labelled when spans of one label cover it entirely; it is
    dropped when spans of two labels overlap it (``"straddles labels"``) or when it is not
    entirely inside labelled spans (``"outside labelled spans"``). Without ``events`` every
    window gets ``label`` (possibly None).
    """
    n = len(start_s)
    if not events:
        return [label] * n, np.ones(n, dtype=bool), [""] * n
    coverage: dict[str, np.ndarray] = {}
    ends = start_s + window
    for a in annotations:
        if a.description not in events or a.duration <= 0:
            continue
        name = events[a.description]
        overlap = np.clip(
            np.minimum(ends, a.onset + a.duration) - np.maximum(start_s, a.onset), 0, None
        )
        coverage[name] = coverage.get(name, np.zeros(n)) + overlap
    labels: list[str | None] = [None] * n
    ok = np.zeros(n, dtype=bool)
    reasons = ["outside labelled spans"] * n
    tolerance = 1e-6 * max(window, 1.0)
    for w in range(n):
        touching = [k for k, c in coverage.items() if c[w] > tolerance]
        if len(touching) > 1:
            reasons[w] = "straddles labels"
        elif touching and coverage[touching[0]][w] >= window - tolerance:
            labels[w], ok[w], reasons[w] = touching[0], True, ""
    return labels, ok, reasons


def _window_quality(
    data: np.ndarray, starts: np.ndarray, length: int, config: PreprocessConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(channels, windows) bad flags and reason codes: 0 ok, 1 non-finite, 2 flat, 3 amplitude."""
    views = sliding_window_view(data, length, axis=1)[:, starts]
    if np.isfinite(data).all():  # the usual case: plain extrema, no masked copies
        finite = np.ones(views.shape[:2], dtype=bool)
        high, low = views.max(axis=-1), views.min(axis=-1)
    else:
        finite = np.isfinite(views).all(axis=-1)
        clean = np.where(np.isfinite(views), views, np.nan)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: flagged below
            high, low = np.nanmax(clean, axis=-1), np.nanmin(clean, axis=-1)
    with np.errstate(invalid="ignore"):
        ptp = high - low
        peak = np.maximum(np.abs(high), np.abs(low))
    reasons = np.zeros(finite.shape, dtype=np.int8)
    if config.max_amplitude_uv is not None:
        reasons[peak > config.max_amplitude_uv * 1e-6] = 3
    reasons[~(ptp >= config.flat_uv * 1e-6)] = 2
    reasons[~finite] = 1
    return reasons > 0, reasons


_REASONS = {1: "non-finite samples", 2: "flat signal", 3: "amplitude above limit"}


def _first_reason(reasons: np.ndarray, window: int) -> str:
    codes = reasons[:, window]
    return _REASONS[int(codes[codes > 0].min())]


def _majority_reason(codes: np.ndarray) -> str:
    values, counts = np.unique(codes[codes > 0], return_counts=True)
    return f"{_REASONS[int(values[np.argmax(counts)])]} in most windows"


def _runs(labels: list[str | None], start_s: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """Segment ids for LDS: a new run at every label change or gap between kept windows."""
    hop = config.step or config.window
    ids = np.zeros(len(labels), dtype=np.int64)
    for i in range(1, len(labels)):
        gap = start_s[i] - start_s[i - 1] > hop * 1.5
        ids[i] = ids[i - 1] + (labels[i] != labels[i - 1] or gap)
    return ids


def _resample(data: np.ndarray, sfreq: float, target: float) -> np.ndarray:
    from scipy.signal import resample_poly

    ratio = Fraction(target / sfreq).limit_denominator(1000)
    return resample_poly(data, ratio.numerator, ratio.denominator, axis=1)
