"""Differential entropy against signals with known answers, and fft against filter on real EEG."""

import mne
import numpy as np
import pytest

from mmm_eeg import UserInputError
from mmm_eeg.features import DEFAULT_BANDS, de_from_variance, differential_entropy

FS = 200.0


def test_sine_of_known_amplitude_fft_is_exact():
    t = np.arange(int(20 * FS)) / FS
    amplitude = 3e-5
    x = amplitude * np.sin(2 * np.pi * 10 * t)[None]
    de = differential_entropy(x, FS)
    assert de.shape == (20, 1, 5)
    np.testing.assert_allclose(de[:, 0, 2], de_from_variance(amplitude**2 / 2), atol=1e-9)
    assert np.all(de[:, 0, [0, 1, 3, 4]] < de[:, 0, 2][:, None] - 5)  # nothing elsewhere


def test_sine_filter_method_close_to_exact():
    t = np.arange(int(60 * FS)) / FS
    x = 2.0 * np.sin(2 * np.pi * 11 * t)[None]
    de = differential_entropy(x, FS, method="filter")[10:-10, 0, 2]
    np.testing.assert_allclose(de, de_from_variance(2.0**2 / 2), atol=0.02)


@pytest.mark.parametrize("method", ["fft", "filter"])
def test_white_noise_band_variance(method):
    sigma = 2.0
    x = np.random.default_rng(0).normal(0, sigma, (2, int(600 * FS)))
    de = differential_entropy(x, FS, method=method)
    variance = np.exp(2 * de) / (2 * np.pi * np.e)  # back to band variance per window
    for b, (_, lo, hi) in enumerate(DEFAULT_BANDS):
        expected = sigma**2 * 2 * (hi - lo) / FS  # flat spectrum: share of the band
        # fft: Parseval-exact in expectation; filter: Butterworth skirts lose some of the band
        rtol = 0.05 if method == "fft" else 0.15
        np.testing.assert_allclose(variance[..., b].mean(), expected, rtol=rtol)


def test_scaling_shifts_de_by_log_factor():
    x = np.random.default_rng(1).normal(size=(3, int(10 * FS)))
    np.testing.assert_allclose(
        differential_entropy(7.0 * x, FS), differential_entropy(x, FS) + np.log(7.0), atol=1e-9
    )


def test_windows_step_and_float32():
    x = np.random.default_rng(2).normal(size=(4, int(10.5 * FS))).astype(np.float32)
    assert differential_entropy(x, FS).shape == (10, 4, 5)
    assert differential_entropy(x, FS, step=0.5).shape == (20, 4, 5)
    assert differential_entropy(x[:, :100], FS).shape == (0, 4, 5)  # shorter than one window
    np.testing.assert_allclose(
        differential_entropy(x, FS), differential_entropy(x.astype(np.float64), FS), atol=1e-4
    )


def test_chunking_does_not_change_results():
    x = np.random.default_rng(3).normal(size=(2, int(40 * FS)))
    for method in ("fft", "filter"):
        whole = differential_entropy(x, FS, method=method, chunk_windows=1000)
        chunked = differential_entropy(x, FS, method=method, chunk_windows=7)
        np.testing.assert_allclose(chunked, whole, atol=1e-6 if method == "filter" else 1e-12)


def test_low_sampling_rate_is_refused_or_band_dropped():
    x = np.zeros((1, 640))
    with pytest.raises(UserInputError, match=r"64 Hz \(Nyquist 32 Hz\).*gamma"):
        differential_entropy(x, 64.0)
    assert differential_entropy(x + 1, 64.0, on_high_band="drop").shape == (10, 1, 4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="no frequency bin"):
        differential_entropy(np.zeros((1, 1000)), FS, window=0.25)
    with pytest.raises(ValueError, match="method"):
        differential_entropy(np.zeros((1, 1000)), FS, method="welch")
    with pytest.raises(ValueError, match="n_channels, n_samples"):
        differential_entropy(np.zeros(1000), FS)


def test_fft_and_filter_agree_on_real_eeg(eeg_data):
    raw = mne.io.read_raw_edf(eeg_data / "eegmmidb/S001/S001R02.edf", preload=True, verbose="error")
    data = raw.get_data()
    fft = differential_entropy(data, raw.info["sfreq"])
    filt = differential_entropy(data, raw.info["sfreq"], method="filter")
    assert fft.shape == filt.shape == (60, 64, 5)
    assert np.all(np.isfinite(fft)) and np.all(np.isfinite(filt))
    for b in range(5):  # one quantity, two definitions: related per window, equal on average
        r_window = np.corrcoef(fft[..., b].ravel(), filt[..., b].ravel())[0, 1]
        r_channel = np.corrcoef(fft[..., b].mean(0), filt[..., b].mean(0))[0, 1]
        assert r_window > 0.65 and r_channel > 0.9, (b, r_window, r_channel)
        assert abs(np.mean(fft[..., b] - filt[..., b])) < 0.25
    # eyes closed: occipital alpha above frontal alpha, seen by both methods
    names = [n.strip(".").upper() for n in raw.ch_names]
    for de in (fft, filt):
        assert de[:, names.index("OZ"), 2].mean() > de[:, names.index("FPZ"), 2].mean()
