"""The signal of each window, as raw-token models read it: band-limited, resampled, scaled.

Each window is handled on its own, with one FFT, as DE is: its linear trend is removed (a
drift would otherwise wrap around the window as a sawtooth with harmonics across the band), it
is transformed (``numpy.fft.rfft``), the bins outside ``[low, high)`` Hz are zeroed, and the
kept spectrum is transformed back onto ``round(window * rate)`` samples (a band-limited,
Fourier resampling). Per window, and not a filter run over the recording, so that a window
of a live stream gets exactly the values the same window gets offline. Values are in units
of ``unit_uv`` microvolts (100 µV, as LaBraM and CBraMod scale their input), not
standardised: the amplitude is part of what a token carries.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mmm_eeg.errors import UserInputError
from mmm_eeg.validation import check_range


def signal_samples(window: float, rate: float) -> int:
    """Samples of one window's signal at ``rate`` Hz."""
    return round(window * rate)


def check_signal_settings(
    rate: float, band: tuple[float, float], unit_uv: float, window: float
) -> None:
    """Validate a signal rate, pass band and unit (:class:`UserInputError` naming the fix)."""
    check_range("signal_rate", rate, low=0, low_open=True)
    if abs(window * rate - round(window * rate)) > 1e-6:
        raise UserInputError(
            f"signal_rate {rate:g} Hz gives {window * rate:g} samples per {window:g} s window; "
            "choose a rate (or window) that gives a whole number of samples.",
            parameter="signal_rate",
        )
    check_range("signal_unit_uv", unit_uv, low=0, low_open=True)
    low, high = band
    if not 0 <= low < high <= rate / 2:
        raise UserInputError(
            f"signal_band must satisfy 0 <= low < high <= signal_rate / 2 ({rate / 2:g} Hz); "
            f"got {low:g}-{high:g} Hz. Lower the band's high edge or raise signal_rate.",
            parameter="signal_band",
        )


def signal_windows(
    data: np.ndarray,
    sfreq: float,
    starts: np.ndarray,
    length: int,
    rate: float,
    band: tuple[float, float],
    unit_uv: float = 100.0,
    chunk_windows: int = 512,
    n_out: int | None = None,
) -> np.ndarray:
    """Band-limited, resampled windows of ``data`` (volts) in units of ``unit_uv`` µV.

    Parameters
    ----------
    data : ndarray, shape (n_channels, n_samples)
        Signals in volts (non-finite samples must have been replaced).
    sfreq : float
        Sampling rate of ``data`` in Hz.
    starts : ndarray of int
        First sample of each window.
    length : int
        Samples per window at ``sfreq``.
    rate : float
        Output sampling rate in Hz.
    band : (low, high)
        Pass band in Hz, half-open; ``high`` at most ``min(sfreq, rate) / 2`` is meaningful.
    unit_uv : float
        Output unit in microvolts.
    chunk_windows : int
        Windows transformed at once (bounds the working memory).
    n_out : int | None
        Output samples per window (None: ``round(length / sfreq * rate)``); give the spec's
        ``signal_samples`` so that every route makes the same length.

    Returns
    -------
    ndarray, shape (n_windows, n_channels, n_out), float32
    """
    from scipy.signal import detrend

    n_out = signal_samples(length / sfreq, rate) if n_out is None else n_out
    freqs = np.fft.rfftfreq(length, 1.0 / sfreq)
    # Below both Nyquist frequencies: the input's own Nyquist bin has no partner to halve it.
    keep = (freqs >= band[0]) & (freqs < band[1]) & (freqs < rate / 2) & (freqs < sfreq / 2)
    keep = keep[: n_out // 2 + 1]
    # irfft's 1/n and the rate change: amplitudes stay those of the input.
    scale = n_out / length * 1e6 / unit_uv
    views = sliding_window_view(np.asarray(data), length, axis=1)
    out = np.empty((len(starts), data.shape[0], n_out), dtype=np.float32)
    for first in range(0, len(starts), chunk_windows):
        chunk = np.asarray(views[:, starts[first : first + chunk_windows]], dtype=np.float64)
        spectrum = np.fft.rfft(detrend(chunk, axis=-1), axis=-1)
        kept = np.zeros((*spectrum.shape[:-1], n_out // 2 + 1), dtype=spectrum.dtype)
        bins = min(spectrum.shape[-1], kept.shape[-1])
        kept[..., :bins] = spectrum[..., :bins] * keep[:bins]
        out[first : first + chunk.shape[1]] = np.moveaxis(
            np.fft.irfft(kept, n=n_out, axis=-1) * scale, 0, 1
        )
    return out
