"""BIDS in: a dataset written with mne-bids from the real files reads like the manifest route."""

import json
import subprocess
import sys

import mne
import numpy as np
import pandas as pd
import pytest

from mmm_eeg import UnifiedTopology, UserInputError
from mmm_eeg.corpus import Corpus
from mmm_eeg.corpus.build import build_corpus
from mmm_eeg.io.bids import discover_bids, read_bids_recording
from mmm_eeg.io.sources import discover_sources
from mmm_eeg.windows import PreprocessConfig

MOTOR = {"T0": "rest", "T1": "left_fist", "T2": "right_fist"}
BAD = "C3.."  # eegmmidb's spelling of C3
TEMPLATE = next(
    m for m in ("colin27_1020", "standard_1020") if m in mne.channels.get_builtin_montages()
)


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory, eeg_data):
    import mne_bids

    root = tmp_path_factory.mktemp("bids") / "ds"
    raw = mne.io.read_raw_edf(eeg_data / "eegmmidb" / "S001" / "S001R03.edf", verbose="error")
    raw.annotations.rename(MOTOR)  # events.tsv trial_type: rest, left_fist, right_fist
    raw.info["bads"] = [BAD]  # channels.tsv status=bad
    path = mne_bids.BIDSPath(subject="mmidb001", task="motor", run=3, datatype="eeg", root=root)
    mne_bids.write_raw_bids(raw, path, verbose="error")
    for subject in (0, 1):
        raw = mne.io.read_raw_edf(
            eeg_data / "eegmat" / f"Subject{subject:02d}_1.edf", verbose="error"
        )
        if subject == 1:  # custom electrode positions: electrodes.tsv
            template = mne.channels.make_standard_montage(TEMPLATE).get_positions()["ch_pos"]
            positions = {
                ch: template[ch.removeprefix("EEG ")] + 0.004
                for ch in raw.ch_names
                if ch.removeprefix("EEG ") in template
            }
            montage = mne.channels.make_dig_montage(positions, coord_frame="head")
            raw.set_montage(montage, on_missing="ignore")
        path = mne_bids.BIDSPath(subject=f"eegmat{subject:02d}", task="rest", datatype="eeg",
                                 root=root)  # fmt: skip
        mne_bids.write_raw_bids(raw, path, verbose="error")
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    table["group"] = table["participant_id"].map(
        {"sub-mmidb001": "motor", "sub-eegmat00": "control", "sub-eegmat01": "patient"}
    )
    table.to_csv(root / "participants.tsv", sep="\t", index=False)
    return root


def test_bids_events_route_equals_the_manifest_route_with_the_bad_channel_absent(
    bids_root, eeg_data, tmp_path
):
    sources, skipped = discover_bids(bids_root, task="motor", label_from="events:trial_type")
    assert skipped == [] and len(sources) == 1
    assert (sources[0].subject, sources[0].extra["run"]) == ("sub-mmidb001", "3")
    report = build_corpus(sources, tmp_path / "bids")
    manifest, _ = discover_sources([eeg_data / "eegmmidb" / "manifest.csv"], events="T0,T1,T2")
    build_corpus([s for s in manifest if s.path.name == "S001R03.edf"], tmp_path / "manifest")
    a, b = Corpus(tmp_path / "bids"), Corpus(tmp_path / "manifest")
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a.index["start_s"], b.index["start_s"])
    assert list(a.index["label"]) == list(b.index["label"])
    assert set(a.index["label"]) == {"rest", "left_fist", "right_fist"}
    c3 = UnifiedTopology.default().index("C3")
    assert not a.present[:, c3].any() and b.present[:, c3].all()  # bad: absent, not kept
    others = np.ones(a.present.shape[1], dtype=bool)
    others[c3] = False
    np.testing.assert_array_equal(a.present[:][:, others], b.present[:][:, others])
    np.testing.assert_allclose(a.features[:][:, others], b.features[:][:, others], rtol=1e-6)
    assert report["absent_channels"] == {"marked bad by the source": 1}
    assert set(a.index["task"]) == {"motor"} and set(a.index["subject"]) == {"sub-mmidb001"}
    # Event-locked from BIDS events: one window per events.tsv row, at its onset, its label.
    locked = PreprocessConfig(window=1.0, epoch_tmin=0.0)
    dropped = build_corpus(sources, tmp_path / "locked", config=locked)["dropped_windows"]
    events = pd.read_csv(next(bids_root.rglob("*motor*_events.tsv")), sep="\t")
    c = Corpus(tmp_path / "locked")
    assert len(c) + dropped.get("event too close to the recording's edge", 0) == len(events)
    np.testing.assert_allclose(c.index["start_s"], events["onset"][: len(c)], atol=1 / 160)
    assert list(c.index["label"]) == list(events["trial_type"][: len(c)]) and len(c) > 20


def test_bids_participants_labels_and_electrode_positions(bids_root):
    sources, _ = discover_bids(bids_root, task="rest", label_from="participants:group")
    assert {s.subject: s.label for s in sources} == {
        "sub-eegmat00": "control", "sub-eegmat01": "patient"
    }  # fmt: skip
    with_positions = read_bids_recording(next(s.path for s in sources if s.subject.endswith("01")))
    template = mne.channels.make_standard_montage(TEMPLATE).get_positions()["ch_pos"]
    assert with_positions.positions, "electrodes.tsv positions were not read"
    np.testing.assert_allclose(
        with_positions.positions["EEG CZ"], template["Cz"] + 0.004, atol=1e-4
    )
    only, _ = discover_bids(bids_root, subjects=["eegmat00"])
    assert [s.subject for s in only] == ["sub-eegmat00"] and only[0].label is None


def test_bids_errors_and_the_command(bids_root, tmp_path):
    with pytest.raises(UserInputError, match=r"dataset_description\.json is missing"):
        discover_bids(tmp_path)
    with pytest.raises(UserInputError, match=r"no EEG recording .* for task 'sleep'"):
        discover_bids(bids_root, task="sleep")
    with pytest.raises(UserInputError, match="'events:trial_type' or 'participants:COLUMN'"):
        discover_bids(bids_root, label_from="group")
    run = subprocess.run(
        [sys.executable, "-m", "mmm_eeg", "preprocess", str(bids_root), "--task", "motor",
         "--label-from", "events:trial_type", "--out", str(tmp_path / "c")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "marked bad by the source" in run.stdout
    summary = json.loads((tmp_path / "c" / "report.json").read_text())
    assert summary["corpus_recordings"] == 1
