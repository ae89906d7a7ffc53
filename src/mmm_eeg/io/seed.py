"""SEED and SEED-IV as their owners distribute them (BCMI, Shanghai Jiao Tong University).

Layouts read here:

- ``ExtractedFeatures/{subject}_{date}.mat`` (SEED) or ``eeg_feature_smooth/{session}/...``
  (SEED-IV): keys ``de_LDS1..N`` and ``de_movingAve1..N``, each channels x windows x 5 bands,
  one per trial; SEED's labels in ``label.mat`` (key ``label``), SEED-IV's in its ReadMe (below).
- ``Preprocessed_EEG/{subject}_{date}.mat`` (SEED) or ``eeg_raw_data/{session}/...``
  (SEED-IV): keys ``<initials>_eeg1..N``, one 62 x samples array per trial at 200 Hz.

Files are sorted numerically by subject, then date (``2_...`` before ``10_...``): the reference
code's lexicographic sort misnumbers subjects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmm_eeg.errors import READ_ERRORS, UserInputError
from mmm_eeg.io.recording import Recording

#: The 62 channels in the order SEED and SEED-IV store them (their channel-order file).
SEED_CHANNELS: tuple[str, ...] = tuple(
    "FP1 FPZ FP2 AF3 AF4 F7 F5 F3 F1 FZ F2 F4 F6 F8 FT7 FC5 FC3 FC1 FCZ FC2 FC4 FC6 FT8 T7 C5 C3 "
    "C1 CZ C2 C4 C6 T8 TP7 CP5 CP3 CP1 CPZ CP2 CP4 CP6 TP8 P7 P5 P3 P1 PZ P2 P4 P6 P8 PO7 PO5 PO3 "
    "POZ PO4 PO6 PO8 CB1 O1 OZ O2 CB2".split()
)
SEED_SFREQ = 200.0
#: SEED: -1 negative, 0 neutral, 1 positive, for the 15 film clips of every session.
SEED_LABELS: tuple[int, ...] = (1, 0, -1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 0, 1, -1)
#: SEED-IV (ReadMe): 0 neutral, 1 sad, 2 fear, 3 happy, for the 24 trials of each session.
SEED_IV_LABELS: dict[int, tuple[int, ...]] = {
    1: (1, 2, 3, 0, 2, 0, 0, 1, 0, 1, 2, 1, 1, 1, 2, 3, 2, 2, 3, 3, 0, 3, 0, 3),
    2: (2, 1, 3, 0, 0, 2, 0, 2, 3, 3, 2, 3, 2, 0, 1, 1, 2, 1, 0, 3, 0, 1, 3, 1),
    3: (1, 2, 2, 1, 3, 3, 3, 1, 1, 2, 1, 0, 2, 3, 3, 0, 2, 3, 0, 0, 2, 0, 1, 0),
}
#: Seconds per window of the official DE features: 1 s in SEED, 4 s in SEED-IV.
SEED_WINDOW = {"seed": 1.0, "seed-iv": 4.0}

_FILE = re.compile(r"^(\d+)_(\d+)\.mat$")


@dataclass
class FeatureTrial:
    """Ready-made DE features of one trial: (windows, channels, bands), channels in file order."""

    features: np.ndarray
    ch_names: list[str]
    label: int
    window: float
    meta: dict[str, Any] = field(default_factory=dict)


def seed_files(folder: str | Path) -> list[Path]:
    """The ``{subject}_{date}.mat`` files under ``folder`` (recursively), sorted numerically.

    Sort key: session folder (SEED-IV's ``1/``, ``2/``, ``3/``; none for SEED), subject, date.
    """
    folder = Path(folder)
    files = [p for p in folder.rglob("*.mat") if _FILE.match(p.name)]
    if not files:
        raise UserInputError(
            f"{folder}: no '<subject>_<date>.mat' files. Point at SEED's ExtractedFeatures or "
            "Preprocessed_EEG folder (SEED-IV: eeg_feature_smooth or eeg_raw_data)."
        )

    def key(p: Path) -> tuple[int, int, int]:
        subject, date = _FILE.match(p.name).groups()  # type: ignore[union-attr]
        return (_session_of(p) or 0, int(subject), int(date))

    return sorted(files, key=key)


def _session_of(path: Path) -> int | None:
    return int(path.parent.name) if path.parent.name.isdigit() else None


def _identity(path: Path) -> dict[str, Any]:
    subject, date = _FILE.match(path.name).groups()  # type: ignore[union-attr]
    return {"path": str(path), "subject": int(subject), "date": date}


def _load_mat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        return loadmat(path)
    except (*READ_ERRORS, MatReadError) as err:  # scipy's MatReadError is no ValueError
        raise UserInputError(f"{path}: not a readable MATLAB file ({err}).") from err


def _trial_keys(content: dict[str, Any], pattern: str, path: Path) -> list[tuple[int, str]]:
    found = sorted(
        (int(m.group(1)), k) for k in content if (m := re.fullmatch(pattern, k)) is not None
    )
    if not found:
        raise UserInputError(f"{path}: no keys matching {pattern!r}; keys: {sorted(content)[:8]}.")
    return found


def trial_labels(path: Path, n_trials: int, labels: Any = None) -> tuple[int, ...]:
    """Labels for the trials of ``path``: given, from ``label.mat`` beside it, or SEED-IV's."""
    if labels is not None:
        out = tuple(int(v) for v in np.ravel(labels))
    elif (path.parent / "label.mat").is_file():
        out = tuple(int(v) for v in np.ravel(_load_mat(path.parent / "label.mat")["label"]))
    elif n_trials == 24 and _session_of(path) in SEED_IV_LABELS:
        out = SEED_IV_LABELS[_session_of(path)]  # type: ignore[index]
    elif n_trials == 15:
        out = SEED_LABELS
    else:
        raise UserInputError(
            f"{path}: cannot tell the labels of its {n_trials} trials; put label.mat beside it "
            "or pass labels."
        )
    if len(out) != n_trials:
        raise UserInputError(f"{path}: {len(out)} labels for {n_trials} trials.")
    return out


def read_seed_features(
    path: str | Path, kind: str = "de_LDS", labels: Any = None
) -> list[FeatureTrial]:
    """Read one ExtractedFeatures file: one :class:`FeatureTrial` per trial, in trial order.

    Parameters
    ----------
    path : str | path-like
        ``{subject}_{date}.mat``.
    kind : str
        Key prefix: ``"de_LDS"`` (smoothed, what the paper used) or ``"de_movingAve"``.
    labels : array-like | None
        Trial labels (None: ``label.mat`` beside the file, else the published constants).

    Returns
    -------
    list of FeatureTrial
        Features transposed to (windows, 62, 5) in SEED's channel order.
    """
    path = Path(path)
    content = _load_mat(path)
    trials = _trial_keys(content, rf"{re.escape(kind)}(\d+)", path)
    trial_label = trial_labels(path, len(trials), labels)
    dataset = "seed-iv" if len(trials) == 24 else "seed"
    out = []
    for (number, key), label in zip(trials, trial_label, strict=True):
        array = np.asarray(content[key], dtype=np.float64)
        if array.ndim != 3 or array.shape[0] != len(SEED_CHANNELS):
            raise UserInputError(f"{path}: {key} has shape {array.shape}; expected (62, T, 5).")
        meta = {**_identity(path), "trial": number, "session": _session_of(path), "kind": kind}
        out.append(
            FeatureTrial(
                array.transpose(1, 0, 2), list(SEED_CHANNELS), label, SEED_WINDOW[dataset], meta
            )
        )
    return out


def read_seed_raw(path: str | Path, labels: Any = None, unit: float = 1e-6) -> list[Recording]:
    """Read one Preprocessed_EEG file: one :class:`Recording` per trial, in trial order.

    Parameters
    ----------
    path : str | path-like
        ``{subject}_{date}.mat`` with keys ``<initials>_eeg1..N`` (62 x samples, 200 Hz).
    labels : array-like | None
        Trial labels (None: ``label.mat`` beside the file, else the published constants).
    unit : float
        Scale to volts; SEED's preprocessed signals are in microvolts.

    Returns
    -------
    list of Recording
        ``meta`` holds subject, date, session, trial and label.
    """
    path = Path(path)
    content = _load_mat(path)
    trials = _trial_keys(content, r"[A-Za-z]+_eeg(\d+)", path)
    trial_label = trial_labels(path, len(trials), labels)
    recordings = []
    for (number, key), label in zip(trials, trial_label, strict=True):
        meta = {**_identity(path), "trial": number, "session": _session_of(path), "label": label}
        recordings.append(
            Recording.from_array(content[key], SEED_SFREQ, SEED_CHANNELS, unit=unit, meta=meta)
        )
    return recordings
