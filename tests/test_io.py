"""Readers: MNE formats, Muse CSV, SEED layouts (built here), manifests and folders."""

import numpy as np
import pytest
from scipy.io import savemat

from mmm_eeg import UserInputError
from mmm_eeg.io.readers import read_muse_csv, read_recording
from mmm_eeg.io.seed import (
    SEED_CHANNELS,
    SEED_IV_LABELS,
    SEED_LABELS,
    read_seed_features,
    read_seed_raw,
    seed_files,
)
from mmm_eeg.io.sources import discover_sources, parse_events, read_manifest


def test_edf_in_volts_with_annotations(eegmmidb_file, eegmat_file):
    rec = read_recording(eegmat_file)
    assert rec.sfreq == 500 and rec.data.shape == (21, 31000) and rec.duration == 62.0
    eeg_std = rec.data[:19].std(axis=1)
    assert np.all((eeg_std > 1e-7) & (eeg_std < 1e-3))  # microvolt-scale signals, in volts
    mmidb = read_recording(eegmmidb_file.parent / "S001R04.edf")
    assert [a.description for a in mmidb.annotations[:3]] == ["T0", "T2", "T0"]
    assert mmidb.annotations[1].onset == pytest.approx(4.2)


def test_muse_csv_regular_grid_markers_and_units(muse_file):
    import pandas as pd

    table = pd.read_csv(muse_file)
    rec = read_muse_csv(muse_file)
    assert rec.sfreq == 256.0
    assert rec.ch_names == ["TP9", "AF7", "AF8", "TP10", "Right AUX"]
    span = table["timestamps"].iloc[-1] - table["timestamps"].iloc[0]
    assert rec.n_samples == int(np.floor(span * 256)) + 1
    # µV -> V: the mean of each channel survives resampling to within a fraction of a µV
    np.testing.assert_allclose(rec.data.mean(1) * 1e6, table[rec.ch_names].mean(), atol=0.5)
    n_marks = int((table["Marker0"] != 0).sum())
    assert len(rec.annotations) == n_marks and {a.description for a in rec.annotations} <= {
        "1", "2"
    }  # fmt: skip


def test_reader_errors(tmp_path):
    with pytest.raises(UserInputError, match="no such file"):
        read_recording(tmp_path / "missing.edf")
    (tmp_path / "empty.edf").write_bytes(b"")
    with pytest.raises(UserInputError, match=r"empty\.edf: the file is empty"):
        read_recording(tmp_path / "empty.edf")
    (tmp_path / "notes.edf").write_text("these are not EEG samples\n" * 20)
    with pytest.raises(UserInputError, match=r"notes\.edf: the EDF header has a non-numeric"):
        read_recording(tmp_path / "notes.edf")
    (tmp_path / "notes.gdf").write_text("these are not EEG samples\n" * 20)
    with pytest.raises(UserInputError, match=r"notes\.gdf: MNE-Python cannot read"):
        read_recording(tmp_path / "notes.gdf")
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    with pytest.raises(UserInputError, match=r"no time column \(timestamps, timestamp, time\)"):
        read_recording(tmp_path / "table.csv")


# -- SEED layouts, built here -------------------------------------------------------------------


def _seed_features(folder, subjects_dates, n_trials=15, windows=(3, 4)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for subject, date in subjects_dates:
        content = {}
        for t in range(1, n_trials + 1):
            w = windows[t % 2]
            content[f"de_LDS{t}"] = rng.normal(subject, 1, (62, w, 5))
            content[f"de_movingAve{t}"] = rng.normal(-subject, 1, (62, w, 5))
            content[f"psd_LDS{t}"] = rng.normal(size=(62, w, 5))
        savemat(folder / f"{subject}_{date}.mat", content)


def test_seed_files_sort_numerically(tmp_path):
    _seed_features(tmp_path, [(10, 20131130), (2, 20140404), (1, 20131027), (1, 20131001)])
    assert [p.name for p in seed_files(tmp_path)] == [
        "1_20131001.mat", "1_20131027.mat", "2_20140404.mat", "10_20131130.mat"
    ]  # fmt: skip
    with pytest.raises(UserInputError, match=r"no '<subject>_<date>\.mat' files"):
        seed_files(tmp_path / "nothing")


def test_seed_extracted_features(tmp_path):
    _seed_features(tmp_path, [(3, 20140101)])
    savemat(tmp_path / "label.mat", {"label": np.array([SEED_LABELS])})
    trials = read_seed_features(tmp_path / "3_20140101.mat")
    assert len(trials) == 15 and [t.label for t in trials] == list(SEED_LABELS)
    from scipy.io import loadmat

    raw = loadmat(tmp_path / "3_20140101.mat")["de_LDS2"]
    np.testing.assert_array_equal(trials[1].features, raw.transpose(1, 0, 2))
    assert trials[1].ch_names == list(SEED_CHANNELS) and trials[1].window == 1.0
    moving = read_seed_features(tmp_path / "3_20140101.mat", kind="de_movingAve")
    assert moving[0].features.mean() < 0 < trials[0].features.mean()


def test_seed_iv_session_labels(tmp_path):
    _seed_features(tmp_path / "2", [(4, 20160518)], n_trials=24)
    trials = read_seed_features(tmp_path / "2" / "4_20160518.mat")
    assert [t.label for t in trials] == list(SEED_IV_LABELS[2])
    assert trials[0].window == 4.0 and trials[0].meta["session"] == 2


def test_seed_raw_trials(tmp_path):
    rng = np.random.default_rng(1)
    content = {f"djc_eeg{t}": rng.normal(0, 20, (62, 200 * (3 + t % 2))) for t in range(1, 16)}
    savemat(tmp_path / "1_20131027.mat", content)
    recordings = read_seed_raw(tmp_path / "1_20131027.mat")
    assert len(recordings) == 15 and recordings[0].sfreq == 200.0
    assert recordings[0].ch_names == list(SEED_CHANNELS)
    assert [r.meta["label"] for r in recordings] == list(SEED_LABELS)
    assert [r.meta["trial"] for r in recordings] == list(range(1, 16))
    np.testing.assert_allclose(recordings[1].data, content["djc_eeg2"] * 1e-6)
    with pytest.raises(UserInputError, match="3 labels for 15 trials"):
        read_seed_raw(tmp_path / "1_20131027.mat", labels=[1, 0, -1])


# -- manifests and folders ----------------------------------------------------------------------


def test_events_spec():
    assert parse_events("T1=left,T2=right") == ({"T1": "left", "T2": "right"}, ())
    assert parse_events("T0, T1") == ({}, ("T0", "T1"))
    with pytest.raises(UserInputError, match="NAME=LABEL"):
        parse_events("T1=")


def test_shared_folder_is_a_collection(eeg_data):
    sources, skipped = discover_sources([eeg_data], events="T0,T1,T2")
    assert not skipped
    by_dataset = {}
    for s in sources:
        by_dataset.setdefault(s.dataset, []).append(s)
    assert {k: len(v) for k, v in by_dataset.items()} == {
        "eegmat": 72, "eegmmidb": 14, "muse_n170": 18
    }  # fmt: skip
    eegmat = by_dataset["eegmat"][1]
    assert (eegmat.subject, eegmat.label, eegmat.events) == ("eegmat-00", "arithmetic", {})
    run4 = next(s for s in by_dataset["eegmmidb"] if s.path.name == "S001R04.edf")
    assert run4.events == {"T0": "rest", "T1": "left_fist", "T2": "right_fist"}
    assert run4.extra["task"] == "imagined_left_right_fist" and run4.label is None
    run1 = next(s for s in by_dataset["eegmmidb"] if s.path.name == "S001R01.edf")
    assert run1.events == {"T0": "eyes_open"}
    muse = by_dataset["muse_n170"][0]
    assert (muse.subject, muse.session) == ("subject1", "session1")


def test_manifest_rows_are_checked(tmp_path, eegmat_file):
    import shutil

    (tmp_path / "data").mkdir()
    shutil.copy(eegmat_file, tmp_path / "data" / "a.edf")
    (tmp_path / "data" / "manifest.csv").write_text(
        "path,subject,label,site\na.edf,s1,rest,x\nmissing.edf,s2,rest,x\n"
        f"{tmp_path / 'elsewhere' / 'b.edf'},s3,arithmetic,y\n../elsewhere/c.edf,s4,rest,z\n"
    )
    (tmp_path / "elsewhere").mkdir()  # the user's own files, beside the manifest's folder
    shutil.copy(eegmat_file, tmp_path / "elsewhere" / "b.edf")
    shutil.copy(eegmat_file, tmp_path / "elsewhere" / "c.edf")
    sources, skipped = read_manifest(tmp_path / "data" / "manifest.csv")
    assert [s.path.name for s in sources] == ["a.edf", "b.edf", "c.edf"]  # relative, absolute
    assert sources[0].extra == {"site": "x"} and sources[1].label == "arithmetic"
    assert [s.reason.split(" (")[0] for s in skipped] == ["file 'missing.edf' not found"]
    assert skipped[0].path.endswith("row 3")
    (tmp_path / "bad.csv").write_text("file,subject\na.edf,s1\n")
    with pytest.raises(UserInputError, match="no 'path' column"):
        read_manifest(tmp_path / "bad.csv")
