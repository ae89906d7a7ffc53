"""``read_recording``: any format MNE-Python reads, Muse CSV, SEED .mat, by extension."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mmm_eeg.errors import READ_ERRORS, UserInputError
from mmm_eeg.io.recording import Annotation, Recording

#: Columns of a muse-lsl / eeg-notebooks CSV that are not signals (compared in lower case).
MUSE_TIME_COLUMNS = ("timestamps", "timestamp", "time")
MUSE_MARKER_PREFIX = "marker"
#: Muse headbands sample at 256 Hz; other rates are estimated from the timestamps.
MUSE_NOMINAL_RATES = (256.0, 220.0, 250.0, 512.0)


def read_recording(path: str | Path) -> Recording:
    """Read one EEG recording.

    Parameters
    ----------
    path : str | path-like
        EDF/EDF+/BDF, GDF, FIF, BrainVision ``.vhdr``, EEGLAB ``.set``, Neuroscan ``.cnt`` and
        every other format ``mne.io.read_raw`` dispatches on; a Muse CSV (``.csv``).

    Returns
    -------
    Recording
        Signals in volts.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such file. Check the path.")
    if path.stat().st_size == 0:
        raise UserInputError(f"{path}: the file is empty. Re-copy it from its source.")
    if path.suffix.lower() == ".csv":
        return read_muse_csv(path)
    return _read_mne(path)


def check_edf_header(path: str | Path) -> None:
    """Check that an EDF/BDF file is as long as its header says; raise a clear error if not.

    A file transferred in text mode (every LF byte turned into CRLF), truncated mid-record, or
    whose header announces more records than it holds would otherwise be read with shifted or
    missing samples. Header layout (EDF spec): bytes 184-192 header size, 236-244 number of data
    records (-1: unknown), 252-256 number of signals, then per-signal fields with the samples per
    record at ``256 + 216 * ns``.
    """
    path = Path(path)
    with path.open("rb") as f:
        fixed = f.read(256)
        if len(fixed) < 256:
            raise UserInputError(f"{path}: {len(fixed)} bytes, shorter than an EDF header (256).")
        width = 3 if fixed[:8] == b"\xffBIOSEMI" else 2
        try:
            header_bytes = int(fixed[184:192].decode("ascii").strip())
            n_records = int(fixed[236:244].decode("ascii").strip())
            n_signals = int(fixed[252:256].decode("ascii").strip())
        except ValueError as err:
            raise UserInputError(
                f"{path}: the EDF header has a non-numeric field ({err}); the file is damaged or "
                "not EDF. Re-export it from the recording software."
            ) from err
        if n_signals <= 0 or header_bytes != 256 * (n_signals + 1):
            raise UserInputError(
                f"{path}: the EDF header is inconsistent ({n_signals} signals but a header of "
                f"{header_bytes} bytes); the file is damaged."
            )
        f.seek(256 + 216 * n_signals)
        fields = f.read(8 * n_signals)
    try:
        samples = [int(fields[8 * i : 8 * i + 8].decode("ascii").strip()) for i in range(n_signals)]
    except ValueError as err:
        raise UserInputError(
            f"{path}: unreadable samples-per-record field in the header ({err})."
        ) from err
    if n_records < 0:  # "-1": still being recorded; nothing to compare
        return
    expected = header_bytes + n_records * sum(samples) * width
    actual = path.stat().st_size
    if actual != expected:
        record = sum(samples) * width
        if actual > expected:
            hint = (
                "longer than its header says: typical of a text-mode transfer that turned every "
                "LF byte into CRLF (FTP ASCII mode, git without a binary attribute). Re-copy it "
                "in binary mode."
            )
        else:
            hint = (
                f"shorter than its header says ({(actual - header_bytes) / record:.2f} of "
                f"{n_records} records present): truncated or incompletely copied. Re-copy it."
            )
        raise UserInputError(
            f"{path}: {actual} bytes but the header announces {expected} ({n_records} records "
            f"of {record} bytes); the file is {hint}"
        )


def open_raw(path: Path, preload: bool) -> Any:
    """``mne.io.read_raw`` with a readable error naming the file (EDF/BDF sizes checked first)."""
    import mne

    if path.suffix.lower() in (".edf", ".bdf"):
        check_edf_header(path)
    try:
        return mne.io.read_raw(path, preload=preload, verbose="error")
    except READ_ERRORS as err:  # what MNE raises for damaged or unknown files
        raise _unreadable(path, err) from err


def _unreadable(path: Path, err: Exception) -> UserInputError:
    return UserInputError(
        f"{path}: MNE-Python cannot read this file ({type(err).__name__}: {err}). "
        "Check that the file is complete and in a format MNE reads."
    )


def _read_mne(path: Path) -> Recording:
    import mne

    meta = {"path": str(path), "format": path.suffix.lower().lstrip(".")}
    # Not preloaded: get_data() then reads the file once into the array it returns (preloading
    # reads into the Raw, and get_data() copies that again); the values are the same. The data
    # section is read here, so its damage is reported here too.
    raw = open_raw(path, preload=False)
    try:
        with mne.use_log_level("error"):
            return Recording.from_raw(raw, meta)
    except UserInputError:
        raise
    except READ_ERRORS as err:
        raise _unreadable(path, err) from err


def muse_columns(columns: list[str], path: Path) -> tuple[str, list[str], list[str]]:
    """Split a Muse CSV header into its time column, signal channels and marker columns.

    The one rule for Muse headers, used both to list a file's channels and to read it.
    """
    names = [str(c).strip() for c in columns]
    time_column = next((c for c in names if c.lower() in MUSE_TIME_COLUMNS), None)
    if time_column is None:
        raise UserInputError(
            f"{path}: no time column ({', '.join(MUSE_TIME_COLUMNS)}); a Muse CSV starts with "
            f"'timestamps,TP9,AF7,AF8,TP10,...'. Columns found: {names[:8]}."
        )
    markers = [c for c in names if c.lower().startswith(MUSE_MARKER_PREFIX)]
    channels = [c for c in names if c and c != time_column and c not in markers]
    if not channels:
        raise UserInputError(f"{path}: the CSV header names no signal columns: {names}.")
    return time_column, channels, markers


def read_muse_csv(path: str | Path, sfreq: float | None = None) -> Recording:
    """Read a Muse CSV as recorded by muse-lsl / eeg-notebooks.

    Columns ``timestamps`` (Unix seconds), one per channel in µV, and ``Marker*`` columns
    (0 = nothing). Bluetooth makes the sample times irregular, so the signals are linearly
    interpolated onto a regular grid at ``sfreq`` (default: the Muse rate nearest the mean
    rate measured over the whole file, 256 Hz for Muse 2016/2/S). Non-zero markers become
    annotations named by their value, at their time.

    Parameters
    ----------
    path : str | path-like
        The CSV file.
    sfreq : float | None
        Rate of the regular grid (None: inferred as above).

    Returns
    -------
    Recording
        Signals in volts.
    """
    import pandas as pd

    path = Path(path)
    try:
        table = pd.read_csv(path)
    except READ_ERRORS as err:  # pandas' ParserError, EmptyDataError, UnicodeDecodeError
        raise UserInputError(f"{path}: not a readable CSV file ({err}).") from err
    table.columns = [str(c).strip() for c in table.columns]
    time_column, channels, markers = muse_columns(list(table.columns), path)
    times = table[time_column].to_numpy(dtype=np.float64)
    if len(times) < 2 or not np.all(np.isfinite(times)):
        raise UserInputError(f"{path}: the timestamps column is too short or not numeric.")
    order = np.argsort(times, kind="stable")
    times = times[order]
    if sfreq is None:
        # Mean rate over the file: millisecond-rounded stamps make the median interval useless.
        measured = (len(times) - 1) / (times[-1] - times[0])
        sfreq = min(MUSE_NOMINAL_RATES, key=lambda r: abs(r - measured))
    grid = times[0] + np.arange(int(np.floor((times[-1] - times[0]) * sfreq)) + 1) / sfreq
    values = table[channels].to_numpy(dtype=np.float64)[order]
    data = np.stack([np.interp(grid, times, values[:, k]) for k in range(len(channels))]) * 1e-6
    annotations = []
    for column in markers:
        marks = table[column].to_numpy()[order]
        for i in np.flatnonzero(marks != 0):
            annotations.append(Annotation(float(times[i] - times[0]), 0.0, f"{marks[i]:g}"))
    return Recording(
        data=data,
        sfreq=float(sfreq),
        ch_names=channels,
        annotations=sorted(annotations, key=lambda a: a.onset),
        meta={"path": str(path), "format": "muse-csv", "start_time": float(times[0])},
    )
