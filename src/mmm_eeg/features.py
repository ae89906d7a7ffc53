"""Differential entropy (DE) of EEG in frequency bands, per window.

DE of a band-limited Gaussian signal of variance σ² is ``0.5 · log(2πe · σ²)``. Two ways to get
the band variance σ² of each window:

``method="fft"`` (the MMM paper's appendix)
    Each window has its mean removed, is multiplied by a Hann window ``w`` and transformed
    (``scipy.fft.rfft``). The band power is ``2 · Σ_{k in band} |X(k)|² / (N · Σ w²)``, summed over
    the bins ``lo <= f_k < hi``: by Parseval this equals the variance of the band-limited signal
    (exact for a sine on a bin inside the band; unbiased for white noise). Bands are half-open, so
    no bin counts twice at a shared edge.
``method="filter"`` (SEED's definition)
    The continuous signal is band-passed with a zero-phase 4th-order Butterworth filter
    (``scipy.signal.sosfiltfilt``) and σ² is the variance of each window of the filtered signal.
    Long recordings are filtered in chunks with 10 s of overlap on each side.

Both stream over windows in chunks, so memory stays bounded for recordings of any length.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mmm_eeg.errors import UserInputError
from mmm_eeg.validation import check_option, check_range

#: (name, low Hz, high Hz): delta, theta, alpha, beta, gamma as in the MMM paper.
DEFAULT_BANDS: tuple[tuple[str, float, float], ...] = (
    ("delta", 1.0, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 14.0),
    ("beta", 14.0, 31.0),
    ("gamma", 31.0, 50.0),
)
_LOG_2PIE = np.log(2 * np.pi * np.e)
_FILTER_PAD_S = 10.0
#: How band power is measured: the windowed FFT power spectrum, or band-pass filter and variance.
DE_METHODS = ("fft", "filter")


def de_from_variance(variance: np.ndarray) -> np.ndarray:
    """``0.5 · log(2πe · variance)``, the DE of a Gaussian (variance floored at 1e-30)."""
    return 0.5 * (_LOG_2PIE + np.log(np.maximum(variance, 1e-30)))


def check_bands(
    bands: Sequence[tuple[str, float, float]],
    sfreq: float,
    on_high_band: Literal["raise", "drop"] = "raise",
) -> tuple[tuple[str, float, float], ...]:
    """Validate bands against the sampling rate; drop those above Nyquist only if asked."""
    check_option("on_high_band", on_high_band, ("raise", "drop"))
    check_range("sfreq", sfreq, low=0, low_open=True)
    bands = tuple((str(n), float(lo), float(hi)) for n, lo, hi in bands)
    for name, lo, hi in bands:
        if not 0 <= lo < hi:
            raise ValueError(f"Band {name!r} must satisfy 0 <= low < high, got {lo}-{hi} Hz.")
    nyquist = sfreq / 2
    too_high = [b for b in bands if b[2] > nyquist]
    if too_high and on_high_band == "raise":
        names = ", ".join(f"{n} ({lo:g}-{hi:g} Hz)" for n, lo, hi in too_high)
        raise UserInputError(
            f"Sampling rate {sfreq:g} Hz (Nyquist {nyquist:g} Hz) is too low for band(s) {names}. "
            "Use a recording sampled at least twice the highest band edge, or drop those bands "
            "explicitly with on_high_band='drop'."
        )
    kept = tuple(b for b in bands if b[2] <= nyquist)
    if not kept:
        raise UserInputError(f"No band fits below the Nyquist frequency {nyquist:g} Hz.")
    return kept


def window_starts(n_samples: int, sfreq: float, window: float, step: float | None) -> np.ndarray:
    """Start sample of each full window (no partial window at the end)."""
    length, hop = _window_samples(sfreq, window, step)
    if n_samples < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - length + 1, hop, dtype=np.int64)


def _window_samples(sfreq: float, window: float, step: float | None) -> tuple[int, int]:
    length = round(window * sfreq)
    hop = length if step is None else round(step * sfreq)
    if length < 2 or hop < 1:
        raise ValueError(f"window ({window} s) and step ({step} s) give too few samples.")
    return length, hop


def differential_entropy(
    data: np.ndarray,
    sfreq: float,
    bands: Sequence[tuple[str, float, float]] = DEFAULT_BANDS,
    window: float = 1.0,
    step: float | None = None,
    method: Literal["fft", "filter"] = "fft",
    on_high_band: Literal["raise", "drop"] = "raise",
    chunk_windows: int = 512,
) -> np.ndarray:
    """Differential entropy per window, channel and band.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Signals (any unit; volts give DE in log-volts). float32 or float64; a ``numpy.memmap``
        is read chunk by chunk.
    sfreq : float
        Sampling rate in Hz.
    bands : sequence of (name, low, high)
        Frequency bands in Hz, half-open ``[low, high)``.
    window : float
        Window length in seconds.
    step : float | None
        Hop between window starts in seconds (None: ``window``, no overlap).
    method : {"fft", "filter"}
        See the module docstring.
    on_high_band : {"raise", "drop"}
        A band above the Nyquist frequency raises, or is dropped when asked.
    chunk_windows : int
        Windows processed at once (bounds the working memory).

    Returns
    -------
    ndarray, shape (n_windows, n_channels, n_bands), float64
        DE; window ``i`` starts at sample ``i * step * sfreq``.
    """
    data = np.asarray(data) if not isinstance(data, np.memmap) else data
    if data.ndim != 2:
        raise ValueError(f"data must have shape (n_channels, n_samples), got {data.shape}.")
    kept = check_bands(bands, sfreq, on_high_band)
    n_windows = len(window_starts(data.shape[1], sfreq, window, step))
    out = np.empty((n_windows, data.shape[0], len(kept)), dtype=np.float64)
    for first, chunk in iter_differential_entropy(
        data, sfreq, kept, window, step, method, chunk_windows=chunk_windows
    ):
        out[first : first + len(chunk)] = chunk
    return out


def iter_differential_entropy(
    data: np.ndarray,
    sfreq: float,
    bands: Sequence[tuple[str, float, float]] = DEFAULT_BANDS,
    window: float = 1.0,
    step: float | None = None,
    method: Literal["fft", "filter"] = "fft",
    on_high_band: Literal["raise", "drop"] = "raise",
    chunk_windows: int = 512,
) -> Iterator[tuple[int, np.ndarray]]:
    """Stream :func:`differential_entropy` in chunks: yields ``(first_window, de_chunk)``.

    Memory stays at one chunk of windows (plus 10 s of padding for ``"filter"``) whatever the
    recording's length, so a recording on disk (``numpy.memmap``) of any length fits.
    """
    if data.ndim != 2:
        raise ValueError(f"data must have shape (n_channels, n_samples), got {data.shape}.")
    check_option("method", method, DE_METHODS)
    bands = check_bands(bands, sfreq, on_high_band)
    length, hop = _window_samples(sfreq, window, step)
    starts = window_starts(data.shape[1], sfreq, window, step)
    if len(starts) == 0:
        return
    if method == "fft":
        yield from _de_fft(data, sfreq, bands, length, hop, len(starts), chunk_windows)
    else:
        yield from _de_filter(data, sfreq, bands, length, starts, chunk_windows)


def _de_fft(data, sfreq, bands, length, hop, n_windows, chunk_windows):
    from scipy import fft as scipy_fft  # imported when used: the command line starts faster

    freqs = np.fft.rfftfreq(length, 1.0 / sfreq)
    members = np.stack([(freqs >= lo) & (freqs < hi) for _, lo, hi in bands], axis=1)
    empty = [bands[b][0] for b in np.flatnonzero(~members.any(0))]
    if empty:
        raise ValueError(
            f"Band(s) {empty} contain no frequency bin at {sfreq / length:g} Hz resolution; "
            "use a longer window."
        )
    # float32 input stays float32 (scipy.fft transforms it natively, twice as fast).
    dtype = np.float32 if data.dtype == np.float32 else np.float64
    taper = np.hanning(length).astype(dtype)
    scale = 2.0 / (length * np.sum(taper.astype(np.float64) ** 2))
    selector = (members * scale).astype(dtype)  # (n_freqs, n_bands)
    views = sliding_window_view(data, length, axis=1)[:, ::hop]  # (C, W, L), no copy
    for w0 in range(0, n_windows, chunk_windows):
        seg = np.array(views[:, w0 : w0 + chunk_windows], dtype=dtype)
        seg -= seg.mean(axis=-1, keepdims=True)
        seg *= taper
        spectrum = scipy_fft.rfft(seg, axis=-1)
        power = spectrum.real**2 + spectrum.imag**2  # (C, w, F)
        band_power = (power @ selector).transpose(1, 0, 2)
        yield w0, de_from_variance(band_power.astype(np.float64, copy=False))


def _de_filter(data, sfreq, bands, length, starts, chunk_windows):
    from scipy.signal import butter, sosfiltfilt  # only this method needs scipy.signal

    sos = [butter(4, [lo, hi], btype="bandpass", fs=sfreq, output="sos") for _, lo, hi in bands]
    pad = int(_FILTER_PAD_S * sfreq)
    for w0 in range(0, len(starts), chunk_windows):
        chunk = starts[w0 : w0 + chunk_windows]
        lo, hi = int(chunk[0]), int(chunk[-1]) + length
        left, right = max(0, lo - pad), min(data.shape[1], hi + pad)
        segment = np.asarray(data[:, left:right], dtype=np.float64)
        index = (chunk - left)[:, None] + np.arange(length)[None, :]  # (w, L)
        variance = np.empty((len(chunk), data.shape[0], len(bands)))
        for b, coefficients in enumerate(sos):
            filtered = sosfiltfilt(coefficients, segment, axis=1)
            variance[:, :, b] = filtered[:, index].var(axis=-1).T
        yield w0, de_from_variance(variance)


def lds_smooth(
    features: np.ndarray, segments: np.ndarray | None = None, smoothness: float = 0.01
) -> np.ndarray:
    """Smooth DE over consecutive windows with a linear dynamical system (SEED's ``de_LDS``).

    Each (channel, band) series is modelled as a random walk observed in noise,
    ``x_t = x_{t-1} + w``, ``y_t = x_t + v``, with ``var(w) = smoothness · var(y)`` and
    ``var(v) = var(y)``; a Kalman filter and a Rauch-Tung-Striebel smoother give ``E[x_t | y]``.

    Leakage: smoothing mixes every window with its neighbours, past and future. Across a trial
    or label boundary that leaks the next trial's signal, and its label, into the windows of the
    previous one, which inflates accuracy. So smoothing never crosses a ``segments`` boundary:
    pass one id per window (recording and label), and call it on one recording at a time.
    Off by default everywhere in mmm-eeg.

    Parameters
    ----------
    features : ndarray, shape (n_windows, ...)
        DE in window order.
    segments : ndarray, shape (n_windows,) | None
        Segment id per window; runs of equal ids are smoothed independently (None: one run).
    smoothness : float
        Ratio of process to observation noise; smaller smooths more.

    Returns
    -------
    ndarray
        Same shape as ``features``.
    """
    features = np.asarray(features, dtype=np.float64)
    if segments is None:
        segments = np.zeros(len(features), dtype=np.int64)
    segments = np.asarray(segments)
    if segments.shape != (len(features),):
        raise ValueError(f"segments must have shape ({len(features)},), got {segments.shape}.")
    out = np.empty_like(features)
    bounds = np.flatnonzero(np.diff(segments) != 0) + 1
    for run in np.split(np.arange(len(features)), bounds):
        if len(run):
            out[run] = _kalman_rts(features[run], smoothness)
    return out


def _kalman_rts(y: np.ndarray, smoothness: float) -> np.ndarray:
    n = len(y)
    if n < 2:
        return y.copy()
    r = np.maximum(y.var(axis=0), 1e-12)
    q = smoothness * r
    mean, var = np.empty_like(y), np.empty_like(y)
    mean[0], var[0] = y[0], r
    for t in range(1, n):  # filter
        prior = var[t - 1] + q
        gain = prior / (prior + r)
        mean[t] = mean[t - 1] + gain * (y[t] - mean[t - 1])
        var[t] = (1 - gain) * prior
    smoothed = mean.copy()
    for t in range(n - 2, -1, -1):  # Rauch-Tung-Striebel
        gain = var[t] / (var[t] + q)
        smoothed[t] = mean[t] + gain * (smoothed[t + 1] - mean[t])
    return smoothed
