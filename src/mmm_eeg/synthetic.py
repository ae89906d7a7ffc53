"""A synthetic multi-montage EEG collection, laid out like ``../shared/eeg``. SYNTHETIC DATA.

For the demo and tests on machines without the real recordings. Signals: 1/f ("pink")
background, occipital alpha (10 Hz) and frontal theta (6 Hz) with smooth spatial patterns over
the scalp (from the electrodes' template positions), per-subject gains. Two-class effect in
eegmat-like files: "arithmetic" lowers alpha power by 40 % and raises frontal theta by 30 %
against "rest". Montages: 19-channel clinical caps (FIF, ``EEG Fp1``-style names, old T3-T6),
64-channel 10-10 caps (FIF, PhysioNet's dotted names), 4-channel Muse CSVs (µV, irregular
timestamps, marker column).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmm_eeg.atomic import atomic_path
from mmm_eeg.channels import parse_channel_name
from mmm_eeg.datasets import EXAMPLE_MONTAGES
from mmm_eeg.montage import template_position


def _pink(rng: np.random.Generator, n_channels: int, n: int, sfreq: float) -> np.ndarray:
    spectrum = rng.normal(size=(n_channels, n // 2 + 1)) + 1j * rng.normal(
        size=(n_channels, n // 2 + 1)
    )
    freqs = np.fft.rfftfreq(n, 1 / sfreq)
    spectrum /= np.sqrt(np.maximum(freqs, 0.5))
    signal = np.fft.irfft(spectrum, n)
    return signal / signal.std(axis=1, keepdims=True)


def synthetic_signals(
    names: list[str],
    sfreq: float,
    seconds: float,
    rng: np.random.Generator,
    alpha_gain: float = 1.0,
    theta_gain: float = 1.0,
    subject_gain: float = 1.0,
) -> np.ndarray:
    """Signals in volts for electrodes ``names`` (10-05 names or aliases)."""
    n = int(seconds * sfreq)
    t = np.arange(n) / sfreq
    positions = []
    for name in names:
        parsed = parse_channel_name(name)
        pos = template_position(parsed.electrodes[0]) if parsed.electrodes else None
        positions.append(np.zeros(3) if pos is None else pos)
    y = np.array([p[1] for p in positions]) / 0.1  # -1 back ... +1 front
    occipital = np.clip(-y, 0, None) + 0.2
    frontal = np.clip(y, 0, None) + 0.2
    alpha = np.sin(2 * np.pi * (10 + 0.3 * rng.normal()) * t + rng.uniform(0, 2 * np.pi))
    alpha = alpha * (1 + 0.3 * np.sin(2 * np.pi * 0.2 * t))
    theta = np.sin(2 * np.pi * 6 * t + rng.uniform(0, 2 * np.pi))
    signal = 10e-6 * _pink(rng, len(names), n, sfreq)
    signal += 8e-6 * alpha_gain * occipital[:, None] * alpha[None]
    signal += 4e-6 * theta_gain * frontal[:, None] * theta[None]
    return signal * subject_gain


def _save_fif(path: Path, data: np.ndarray, names: list[str], sfreq: float) -> None:
    import mne

    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"), verbose="error")
    with atomic_path(path) as tmp:
        raw.save(tmp, overwrite=True, verbose="error")


def write_synthetic_collection(
    folder: str | Path, subjects: int = 36, seconds: float = 30.0, seed: int = 0
) -> Path:
    """Write an eegmat-, eegmmidb- and muse_n170-like collection of synthetic recordings.

    Parameters
    ----------
    folder : str | path-like
        Destination (created).
    subjects : int
        eegmat-like subjects (two files each: rest and arithmetic).
    seconds : float
        Length of each eegmat-like file.
    seed : int
        Random seed.

    Returns
    -------
    Path
        The folder.
    """
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    clinical = EXAMPLE_MONTAGES["clinical 10-20"][:19]
    (folder / "eegmat").mkdir(parents=True, exist_ok=True)
    rows = ["path,subject,session,label"]
    for s in range(subjects):
        gain = float(np.exp(rng.normal(0, 0.3)))
        for number, (label, alpha, theta) in enumerate(
            (("rest", 1.0, 1.0), ("arithmetic", 0.6, 1.3)), 1
        ):
            data = synthetic_signals(clinical, 250.0, seconds, rng, alpha, theta, gain)
            name = f"Subject{s:02d}_{number}_raw.fif"
            _save_fif(folder / "eegmat" / name, data, clinical, 250.0)
            rows.append(f"{name},eegmat-{s:02d},1,{label}")
    with atomic_path(folder / "eegmat" / "manifest.csv") as tmp:
        tmp.write_text("\n".join(rows) + "\n")
    cap64 = EXAMPLE_MONTAGES["research 10-10"]
    (folder / "eegmmidb" / "S001").mkdir(parents=True, exist_ok=True)
    for run in range(1, 4):
        data = synthetic_signals(cap64, 160.0, 60.0, rng)
        _save_fif(folder / "eegmmidb" / "S001" / f"S001R{run:02d}_raw.fif", data, cap64, 160.0)
    muse = EXAMPLE_MONTAGES["Muse headband"]
    for subject in (1, 2):
        session = folder / "muse_n170" / f"subject{subject}" / "session1"
        session.mkdir(parents=True, exist_ok=True)
        for k in range(2):
            n = 60 * 256
            stamps = 1.5e9 + np.cumsum(rng.normal(1 / 256, 2e-4, n))
            data = synthetic_signals(muse[:4], 256.0, 60.0, rng) * 1e6 + 800.0  # µV, DC offset
            aux = rng.normal(0, 20, n)
            marker = np.where(rng.random(n) < 0.002, rng.integers(1, 3, n), 0)
            table = np.column_stack([stamps, data.T, aux, marker])
            with atomic_path(session / f"data_{k}.csv") as tmp:
                header = "timestamps,TP9,AF7,AF8,TP10,Right AUX,Marker0"
                np.savetxt(
                    tmp,
                    table,
                    delimiter=",",
                    header=header,
                    comments="",
                    fmt=["%.4f"] + ["%.3f"] * 5 + ["%d"],
                )
    return folder
