"""A corpus from recordings held in memory, and Recording.from_array's checks."""

import mne
import numpy as np
import pytest

from mmm_eeg import Recording, UserInputError
from mmm_eeg.corpus import Corpus
from mmm_eeg.corpus.build import build_corpus, build_corpus_from_recordings
from mmm_eeg.io.sources import discover_sources

FILES = ("Subject00_1.edf", "Subject00_2.edf", "Subject01_1.edf")


def test_in_memory_corpus_equals_the_file_route(eeg_data, tmp_path):
    items = []
    for name in FILES:
        raw = mne.io.read_raw_edf(eeg_data / "eegmat" / name, preload=True, verbose="error")
        # Arrays a user loaded their own way: microvolts, their own channel list.
        data_uv = raw.get_data() * 1e6
        recording = Recording.from_array(data_uv, raw.info["sfreq"], raw.ch_names, unit=1e-6,
                                         meta={"name": name[:-4]})  # fmt: skip
        label = "rest" if name.endswith("_1.edf") else "arithmetic"
        items.append((recording, f"eegmat-{name[7:9]}", label))
    items.append(("not a recording", "x", None))
    report = build_corpus_from_recordings(items, tmp_path / "memory", dataset="eegmat", workers=2)
    assert [s["reason"] for s in report["skipped"]] == [
        "not a (Recording or Epochs, subject, labels) triple"
    ]
    sources, _ = discover_sources([eeg_data / "eegmat" / "manifest.csv"])
    build_corpus([s for s in sources if s.path.name in FILES], tmp_path / "files")
    a, b = Corpus(tmp_path / "memory"), Corpus(tmp_path / "files")
    assert len(a) == len(b) > 0
    np.testing.assert_allclose(a.features[:], b.features[:], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(a.present[:], b.present[:])
    assert list(a.index["label"]) == list(b.index["label"])
    assert list(a.index["subject"]) == list(b.index["subject"])
    again = build_corpus_from_recordings(items[:3], tmp_path / "memory", dataset="eegmat")
    assert again["already_done"] == 3 and again["windows_added"] == 0  # resumes by name


def test_from_array_says_what_is_wrong():
    data = np.zeros((3, 1000))
    with pytest.raises(UserInputError, match=r"It looks transposed: pass data\.T"):
        Recording.from_array(data.T, 250.0, ["Cz", "Pz", "Fz"])
    with pytest.raises(UserInputError, match="3 rows for 2 channel names"):
        Recording.from_array(data, 250.0, ["Cz", "Pz"])
    with pytest.raises(UserInputError, match="Give unit=1e-6 for microvolts"):
        Recording.from_array(data + 50.0, 250.0, ["Cz", "Pz", "Fz"])  # µV given as volts
    ok = Recording.from_array(data + 50.0, 250.0, ["Cz", "Pz", "Fz"], unit=1e-6)
    assert ok.data.max() == pytest.approx(5e-5)
