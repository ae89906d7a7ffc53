"""TUH-style inputs: TUH file layout and channel names, mixed sampling rates, TCP bipolar.

The tests write small EDF files in the TUH EEG corpus's layout from a real eegmat recording
(its 19 10-20 electrodes renamed as TUH spells them, resampled to TUH's rates), then run the
unchanged ``mmm-eeg preprocess`` command on the folder.
"""

import mne
import numpy as np
import pytest
from typer.testing import CliRunner

from mmm_eeg.cli import app
from mmm_eeg.corpus import Corpus

runner = CliRunner()

ELECTRODES = [
    "FP1", "FP2", "F7", "F3", "FZ", "F4", "F8", "T3", "C3", "CZ",
    "C4", "T4", "T5", "P3", "PZ", "P4", "T6", "O1", "O2",
]  # fmt: skip
#: The TCP (temporal central parasagittal) bipolar montage of TUH's ``*_tcp_*`` files.
TCP = [
    ("FP1", "F7"), ("F7", "T3"), ("T3", "T5"), ("T5", "O1"), ("FP2", "F8"), ("F8", "T4"),
    ("T4", "T6"), ("T6", "O2"), ("T3", "C3"), ("C3", "CZ"), ("CZ", "C4"), ("C4", "T4"),
    ("FP1", "F3"), ("F3", "C3"), ("C3", "P3"), ("P3", "O1"), ("FP2", "F4"), ("F4", "C4"),
    ("C4", "P4"), ("P4", "O2"),
]  # fmt: skip


def _referential(eegmat_file, seconds=30.0) -> mne.io.BaseRaw:
    raw = mne.io.read_raw_edf(eegmat_file, preload=True, verbose="error")
    raw.crop(0, seconds - 1 / raw.info["sfreq"])
    names = {ch: ch.replace("EEG ", "").upper() for ch in raw.ch_names}
    raw.rename_channels(names)
    return raw.pick(ELECTRODES)


def _write(raw: mne.io.BaseRaw, path, sfreq: float, names: dict[str, str]) -> None:
    raw = raw.copy().resample(sfreq, verbose="error").rename_channels(names)
    path.parent.mkdir(parents=True, exist_ok=True)
    mne.export.export_raw(path, raw, fmt="edf", physical_range="channelwise", verbose="error")


@pytest.fixture(scope="module")
def tuh_folder(tmp_path_factory, eegmat_file):
    root = tmp_path_factory.mktemp("tuh") / "tuh_eeg"
    raw = _referential(eegmat_file)
    noise = np.random.default_rng(0).normal(0, 1e-5, (4, raw.n_times))
    with_extra = mne.io.RawArray(
        np.vstack([raw.get_data(), noise]),
        mne.create_info([*raw.ch_names, "EKG1", "PHOTIC", "T1", "26"], raw.info["sfreq"], "eeg"),
        verbose="error",
    )
    edf = root / "edf"
    _write(
        with_extra,
        edf / "000/aaaaaaaa/s001_2015/01_tcp_ar/aaaaaaaa_s001_t000.edf",
        250,
        {ch: f"EEG {ch}-REF" for ch in with_extra.ch_names} | {"PHOTIC": "PHOTIC-REF"},
    )
    _write(
        raw,
        edf / "000/aaaaaaab/s002_2016/02_tcp_le/aaaaaaab_s002_t001.edf",
        256,
        {ch: f"EEG {ch}-LE" for ch in raw.ch_names},
    )
    _write(raw, edf / "001/aaaaaaac/s001_2017/01_tcp_ar/aaaaaaac_s001_t000.edf", 512,
           {ch: f"EEG {ch}-REF" for ch in raw.ch_names})  # fmt: skip
    data = raw.get_data()
    index = {ch: i for i, ch in enumerate(raw.ch_names)}
    bipolar = mne.io.RawArray(
        np.stack([data[index[a]] - data[index[b]] for a, b in TCP]),
        mne.create_info([f"{a}-{b}" for a, b in TCP], raw.info["sfreq"], "eeg"),
        verbose="error",
    )
    _write(bipolar, edf / "001/aaaaaaad/s003_2018/03_tcp_ar_a/aaaaaaad_s003_t002.edf", 400, {})
    return root


def _preprocess(folder, out, *options):
    result = runner.invoke(app, ["preprocess", str(folder), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    return Corpus(out)


def test_tuh_layout_names_and_mixed_rates(tuh_folder, tmp_path):
    corpus = _preprocess(tuh_folder, tmp_path / "corpus", "--bipolar", "midpoint")
    rec = corpus.recordings.set_index("subject")
    assert sorted(rec.index) == ["aaaaaaaa", "aaaaaaab", "aaaaaaac", "aaaaaaad"]
    assert rec.loc["aaaaaaab", "session"] == "s002" and rec.loc["aaaaaaad", "session"] == "s003"
    assert (rec["n_windows"] == 30).all()
    present = {s: corpus.present[int(rec.loc[s, "offset"])] for s in rec.index}
    # the 19 referential electrodes feed the same 19 nodes whatever the suffix and the rate;
    # EKG1, PHOTIC are excluded as non-EEG, T1 and "26" dropped as unknown
    nodes = [corpus.topology.nodes[i] for i in np.flatnonzero(present["aaaaaaaa"])]
    assert len(nodes) == 19 and {"FP1", "T7", "P8", "CZ"} <= set(nodes)
    for s in ("aaaaaaab", "aaaaaaac"):
        np.testing.assert_array_equal(present[s], present["aaaaaaaa"])
    assert present["aaaaaaad"].sum() == 20  # TCP derivations, each at its midpoint's node
    # the same signal at 250, 256 and 512 Hz gives the same DE (bands end at 50 Hz)
    first = {s: corpus.features[int(rec.loc[s, "offset"])] for s in ("aaaaaaaa", "aaaaaaac")}
    mask = present["aaaaaaaa"]
    diff = np.abs(first["aaaaaaaa"][mask] - first["aaaaaaac"][mask])
    assert diff.max() < 0.05, diff.max()


def test_tcp_files_without_midpoint_are_skipped_with_the_fix(tuh_folder, tmp_path):
    out = tmp_path / "corpus"
    result = runner.invoke(app, ["preprocess", str(tuh_folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    corpus = Corpus(out)
    assert sorted(corpus.recordings["subject"]) == ["aaaaaaaa", "aaaaaaab", "aaaaaaac"]
    import json

    skipped = json.loads((out / "report.json").read_text())["skipped"]
    assert len(skipped) == 1 and "aaaaaaad_s003_t002.edf" in skipped[0]["path"]
    assert "bipolar='midpoint'" in skipped[0]["reason"]
