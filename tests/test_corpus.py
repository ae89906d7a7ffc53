"""The corpus on the real recordings: counts, labels, masks, resume, reading."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import mne
import numpy as np
import pytest
from typer.testing import CliRunner

from mmm_eeg import UnifiedTopology, UserInputError
from mmm_eeg.cli import app
from mmm_eeg.corpus import Corpus, CorpusFormatError, CorpusWriter
from mmm_eeg.corpus.batches import iter_batches
from mmm_eeg.corpus.build import build_corpus
from mmm_eeg.corpus.labels import label_targets
from mmm_eeg.corpus.summary import corpus_summary
from mmm_eeg.io.readers import read_recording
from mmm_eeg.io.sources import discover_sources
from mmm_eeg.windows import PreprocessConfig, extract_windows

TOPO = UnifiedTopology.default()


@pytest.fixture(scope="module")
def shared_corpus(tmp_path_factory, eeg_data):
    out = tmp_path_factory.mktemp("corpus") / "all"
    sources, skipped = discover_sources([eeg_data], events="T0,T1,T2")
    report = build_corpus(sources, out, workers=2, skipped=skipped)
    return Corpus(out), report, sources


def test_every_recording_is_in_with_the_right_window_count(shared_corpus):
    corpus, report, sources = shared_corpus
    assert report["skipped"] == [] and report["recordings_added"] == len(sources) == 104
    rec = corpus.recordings.set_index("recording")
    for source in sources:
        dropped = sum(json.loads(rec.loc[source.recording_id, "dropped"]).values())
        if source.path.suffix == ".edf":
            duration = mne.io.read_raw_edf(source.path, verbose="error").duration
        else:
            duration = read_recording(source.path).duration
        assert rec.loc[source.recording_id, "n_windows"] + dropped == math.floor(duration)
    assert len(corpus) == rec["n_windows"].sum() == len(corpus.index)
    assert corpus_summary(corpus)["hours"] == pytest.approx(len(corpus) / 3600, abs=1e-3)


def test_labels_subjects_and_present_masks(shared_corpus):
    corpus, _, _ = shared_corpus
    index = corpus.index
    eegmat = index[index.dataset == "eegmat"]
    assert set(eegmat.label) == {"rest", "arithmetic"} and eegmat.subject.nunique() == 36
    assert (eegmat[eegmat.recording.str.endswith("_1.edf")].label == "rest").all()
    mmidb = index[index.dataset == "eegmmidb"]
    run6 = mmidb[mmidb.recording.str.endswith("R06.edf")]
    assert set(run6.label) == {"rest", "both_fists", "both_feet"}
    assert set(mmidb[mmidb.recording.str.endswith("R02.edf")].label) == {"eyes_closed"}
    muse = index[index.dataset == "muse_n170"]
    assert muse.label.isna().all() and muse.subject.nunique() == 5
    for dataset, nodes in (("eegmat", 19), ("eegmmidb", 59), ("muse_n170", 4)):
        rows = np.flatnonzero(index.dataset.to_numpy() == dataset)
        assert (corpus.present[rows].sum(1) == nodes).all(), dataset
    muse_nodes = {TOPO.nodes[i] for i in np.flatnonzero(corpus.present[int(rows[0])])}
    assert muse_nodes == {"TP7", "FP1", "FP2", "TP8"}


def test_stored_features_equal_direct_extraction(shared_corpus, eeg_data):
    corpus, _, _ = shared_corpus
    path = eeg_data / "eegmat" / "Subject07_2.edf"
    direct = extract_windows(read_recording(path), TOPO, label="arithmetic")
    rows = np.flatnonzero(corpus.index.recording.to_numpy() == "eegmat/Subject07_2.edf")
    np.testing.assert_array_equal(corpus.features[rows], direct.features)
    np.testing.assert_array_equal(corpus.index.start_s.to_numpy()[rows], direct.start_s)


def test_rerun_is_a_no_op(shared_corpus, eeg_data):
    corpus, _, _ = shared_corpus
    before = (corpus.path / "corpus.json").read_text()
    sources, _ = discover_sources([eeg_data], events="T0,T1,T2")
    report = build_corpus(sources, corpus.path)
    assert report["already_done"] == 104 and report["recordings_added"] == 0
    assert (corpus.path / "corpus.json").read_text() == before


def test_normalisation_on_read(shared_corpus):
    corpus, _, _ = shared_corpus
    rows = np.flatnonzero(corpus.index.recording.to_numpy() == "eegmat/Subject03_1.edf")
    x, present = corpus.read(rows, "recording")
    values = x[present]
    np.testing.assert_allclose(values.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(values.std(0), 1, atol=1e-4)
    assert not x[~present].any()
    raw = corpus.features[rows]
    mean0, _ = corpus.statistics.normalization("none")
    np.testing.assert_array_equal(mean0[rows], 0)
    subject_mean, _ = corpus.statistics.normalization("subject")
    both = np.flatnonzero(corpus.index.subject.to_numpy() == "eegmat-03")
    assert len(both) > len(rows) and np.allclose(subject_mean[both], subject_mean[both[0]])
    assert not np.allclose(
        subject_mean[rows[0]], corpus.statistics.normalization("recording")[0][rows[0]]
    )
    assert raw.dtype == np.float32  # stored values untouched


def test_shuffled_batches_cover_the_selection_once(shared_corpus):
    corpus, _, _ = shared_corpus
    chosen = corpus.select(datasets=["eegmat"], labels=["rest"])
    seen = np.concatenate([rows for _, _, rows in iter_batches(corpus, 256, chosen, seed=3)])
    assert np.array_equal(np.sort(seen), chosen) and not np.array_equal(seen, chosen)
    again = np.concatenate([rows for _, _, rows in iter_batches(corpus, 256, chosen, seed=3)])
    assert np.array_equal(seen, again)  # reproducible from the seed
    ordered = np.concatenate([r for _, _, r in iter_batches(corpus, 256, chosen, shuffle=False)])
    assert np.array_equal(ordered, chosen)


def test_label_targets(shared_corpus):
    corpus, _, _ = shared_corpus
    chosen = corpus.select(datasets=["eegmat"])
    targets, names = label_targets(corpus.index, chosen)
    assert names == ["arithmetic", "rest"]
    labels = corpus.index["label"].to_numpy()
    assert (targets[chosen] == np.where(labels[chosen] == "arithmetic", 0, 1)).all()
    outside = np.setdiff1d(np.arange(len(corpus)), chosen)
    assert (targets[outside] == -1).all()
    # A model's own class order is kept; windows of other labels get -1.
    reordered, _ = label_targets(corpus.index, chosen, names=["rest", "other"])
    assert (reordered[chosen] == np.where(labels[chosen] == "rest", 0, -1)).all()
    unlabelled = corpus.select(datasets=["muse_n170"])
    with pytest.raises(UserInputError, match="need at least 2"):
        label_targets(corpus.index, unlabelled)


def test_committed_array_bounds(shared_corpus):
    corpus, _, _ = shared_corpus
    n = len(corpus)
    assert corpus.features[n - 1 : n + 5].shape == (1, 62, 5)
    assert corpus.features[-1].shape == (62, 5)
    with pytest.raises(IndexError, match="out of range"):
        corpus.features[np.array([0, n])]


def _small_corpus(tmp_path, eeg_data, n=3, **kw):
    writer = CorpusWriter(tmp_path / "c", TOPO, PreprocessConfig(), chunk_windows=50, **kw)
    for i in range(n):
        path = eeg_data / "eegmat" / f"Subject0{i}_1.edf"
        writer.add(f"r{i}", {"dataset": "eegmat", "subject": str(i)},
                   extract_windows(read_recording(path), TOPO, label="rest"))  # fmt: skip
    return writer


def test_killed_writer_leaves_readers_a_committed_state(tmp_path, eeg_data):
    writer = _small_corpus(tmp_path, eeg_data, n=2, commit_windows=10**9)
    writer.commit()
    committed = len(Corpus(tmp_path / "c"))
    # A writer dies mid-commit: arrays grown, a table part written, corpus.json not updated.
    writer.features.resize((committed + 40, 62, 5))
    writer.features[committed:] = 99.0
    (tmp_path / "c" / "index" / "part-00001.parquet").write_bytes(b"half")
    reader = Corpus(tmp_path / "c")
    assert len(reader) == committed and len(reader.index) == committed
    assert not (reader.features[:] == 99.0).any()
    writer.release()  # its process dies: the OS drops the lock with it
    resumed = CorpusWriter(tmp_path / "c", TOPO, PreprocessConfig(), chunk_windows=50)
    assert resumed.features.shape[0] == committed and resumed.done == {"r0", "r1"}
    assert not (tmp_path / "c" / "index" / "part-00001.parquet").exists()
    windows = extract_windows(read_recording(eeg_data / "eegmat/Subject00_1.edf"), TOPO)
    with pytest.raises(ValueError, match="already in the corpus"):
        resumed.add("r0", {}, windows)
    resumed.add("r9", {}, windows)  # pending, not committed yet: refused twice all the same
    with pytest.raises(ValueError, match="already in the corpus"):
        resumed.add("r9", {}, windows)
    resumed.commit()
    with pytest.raises(ValueError, match="already in the corpus"):
        resumed.add("r9", {}, windows)
    resumed.add("r10", {}, windows)  # the pending set was cleared by the commit
    resumed.close()
    assert Corpus(tmp_path / "c").recordings["recording"].tolist()[-2:] == ["r9", "r10"]


def test_settings_cannot_change_and_newer_versions_are_refused(tmp_path, eeg_data):
    _small_corpus(tmp_path, eeg_data, n=1).close()
    with pytest.raises(UserInputError, match="other preprocessing"):
        CorpusWriter(tmp_path / "c", TOPO, PreprocessConfig(window=2.0))
    CorpusWriter(tmp_path / "c", TOPO, PreprocessConfig()).close()  # the refusal kept no lock
    meta = json.loads((tmp_path / "c" / "corpus.json").read_text())
    (tmp_path / "c" / "corpus.json").write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(CorpusFormatError, match="newer mmm-eeg"):
        Corpus(tmp_path / "c")
    (tmp_path / "c" / "corpus.json").write_text("{not json")
    with pytest.raises(CorpusFormatError, match="damaged"):
        Corpus(tmp_path / "c")
    with pytest.raises(CorpusFormatError, match="not an mmm-eeg corpus"):
        Corpus(tmp_path)


def test_float16_storage(tmp_path, eeg_data):
    writer = CorpusWriter(tmp_path / "h", TOPO, PreprocessConfig(), dtype="float16")
    windows = extract_windows(read_recording(eeg_data / "eegmat/Subject00_1.edf"), TOPO)
    writer.add("r", {}, windows)
    writer.close()
    corpus = Corpus(tmp_path / "h")
    assert corpus.features.dtype == np.float16
    np.testing.assert_allclose(corpus.features[:], windows.features, atol=0.01)


def test_cli_preprocess_and_info(tmp_path, eeg_data):
    runner = CliRunner()
    out = tmp_path / "cli"
    inputs = [str(eeg_data / "eegmat" / "manifest.csv"), str(eeg_data / "muse_n170" / "subject1")]
    result = runner.invoke(app, ["preprocess", *inputs, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "78 recordings" in result.output
    info = runner.invoke(app, ["corpus", "info", str(out), "--json"])
    summary = json.loads(info.stdout)
    assert set(summary["datasets"]) == {"eegmat", "subject1"}
    assert summary["datasets"]["eegmat"]["labels"]["rest"] > 2000
    bad = runner.invoke(app, ["preprocess", str(tmp_path / "nope"), "--out", str(out)])
    assert bad.exit_code == 2 and "no such file or folder" in bad.output
    assert runner.invoke(app, ["corpus", "info", str(tmp_path)]).exit_code == 2


def test_batch_skips_bad_files_and_finishes(tmp_path, eeg_data):
    import shutil

    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(eeg_data / "eegmat" / "Subject00_1.edf", folder / "good.edf")
    (folder / "broken.edf").write_bytes(
        (eeg_data / "eegmat" / "Subject01_1.edf").read_bytes()[:3000]
    )
    (folder / "empty.edf").write_bytes(b"")
    sources, _ = discover_sources([folder])
    report = build_corpus(sources, tmp_path / "out")
    assert report["recordings_added"] == 1
    reasons = {item["path"].split("/")[-1]: item["reason"] for item in report["skipped"]}
    assert set(reasons) == {"broken.edf", "empty.edf"}
    assert "empty.edf: the file is empty" in reasons["empty.edf"]
    assert "broken.edf" in reasons["broken.edf"]
    assert json.loads((tmp_path / "out" / "report.json").read_text())["recordings_added"] == 1


def test_seed_layouts_through_preprocess(tmp_path):
    from scipy.io import savemat

    from mmm_eeg.io.seed import SEED_LABELS

    rng = np.random.default_rng(0)
    features = tmp_path / "ExtractedFeatures"
    features.mkdir()
    for subject in (2, 10):
        savemat(features / f"{subject}_20140101.mat",
                {f"de_LDS{t}": rng.normal(size=(62, 3, 5)) for t in range(1, 16)})  # fmt: skip
    raw = tmp_path / "Preprocessed_EEG"
    raw.mkdir()
    savemat(raw / "1_20131027.mat",
            {f"ab_eeg{t}": rng.normal(0, 20, (62, 400)) for t in range(1, 16)})  # fmt: skip
    sources, _ = discover_sources([features, raw])
    report = build_corpus(sources, tmp_path / "seed")
    assert report["skipped"] == [] and report["recordings_added"] == 45
    corpus = Corpus(tmp_path / "seed")
    index = corpus.index
    assert len(index[index.dataset == "ExtractedFeatures"]) == 2 * 15 * 3
    assert len(index[index.dataset == "Preprocessed_EEG"]) == 15 * 2
    assert sorted(index.subject.unique()) == ["1", "10", "2"]
    trial4 = index[index.recording == "ExtractedFeatures/2_20140101.mat#4"]
    assert set(trial4.label) == {str(SEED_LABELS[3])}
    assert (corpus.present[:].sum(1) == 62).all()


def test_a_corpus_from_before_a_new_setting_still_extends(tmp_path):
    """corpus.json written before ``bipolar`` existed equals today's default settings."""
    topology = UnifiedTopology.default()
    CorpusWriter(tmp_path / "c", topology, PreprocessConfig()).close()
    meta_path = tmp_path / "c" / "corpus.json"
    meta = json.loads(meta_path.read_text())
    del meta["preprocessing"]["bipolar"]
    meta_path.write_text(json.dumps(meta))
    CorpusWriter(tmp_path / "c", topology, PreprocessConfig()).close()
    with pytest.raises(UserInputError, match="other preprocessing"):
        CorpusWriter(tmp_path / "c", topology, PreprocessConfig(bipolar="midpoint"))


def test_node_normalisation_on_read_equals_the_normalizer(shared_corpus):
    from mmm_eeg.normalization import Normalizer

    corpus, _, _ = shared_corpus
    subjects = corpus.index.subject.astype(str).to_numpy()
    rows = np.flatnonzero(subjects == "eegmat-05")  # two recordings: rest and arithmetic
    x, present = corpus.read(rows, "subject-node")
    expected = Normalizer("subject", "node").fit_transform(
        corpus.features[rows], corpus.present[rows]
    )
    np.testing.assert_allclose(x, expected, atol=1e-5)
    nodes = present[0]
    np.testing.assert_allclose(x[:, nodes].mean(0), 0, atol=1e-4)
    # per recording, each file is standardised on its own: a one-condition recording's mean
    # vanishes, which is why the benchmark reads per subject
    first = rows[corpus.index.recording.to_numpy()[rows] == corpus.index.recording.iloc[rows[0]]]
    per_recording, _ = corpus.read(first, "recording-node")
    np.testing.assert_allclose(per_recording[:, nodes].mean(0), 0, atol=1e-4)
    assert np.abs(x[: len(first), nodes].mean(0)).max() > 0.1


def test_one_writer_at_a_time(tmp_path):
    topology, config = UnifiedTopology.default(), PreprocessConfig()
    first = CorpusWriter(tmp_path / "c", topology, config)
    holder = rf"host {socket.gethostname()}, pid {os.getpid()}, since 20\d\d-"
    with pytest.raises(UserInputError, match=rf"being written by another process \({holder}"):
        CorpusWriter(tmp_path / "c", topology, config)
    first.close()
    with CorpusWriter(tmp_path / "c", topology, config) as again:  # free once the first closed
        assert again.meta["n_windows"] == 0
    # A process that dies holding the lock releases it.
    code = (
        "import os, signal\n"
        "from mmm_eeg import UnifiedTopology\n"
        "from mmm_eeg.corpus import CorpusWriter\n"
        "from mmm_eeg.windows import PreprocessConfig\n"
        f"w = CorpusWriter({str(tmp_path / 'c')!r}, UnifiedTopology.default(),\n"
        "                  PreprocessConfig())\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    CorpusWriter(tmp_path / "c", topology, config).release()


def test_a_second_preprocess_refuses_or_waits(tmp_path, eeg_data):
    manifest = eeg_data / "eegmat" / "manifest.csv"
    out = tmp_path / "c"
    holder = CorpusWriter(out, UnifiedTopology.default(), PreprocessConfig())  # job one
    command = [sys.executable, "-m", "mmm_eeg", "preprocess", str(manifest), "--out", str(out)]
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2 and "being written by another process" in refused.stderr
    assert f"pid {os.getpid()}" in refused.stderr and "--wait" in refused.stderr
    waiting = subprocess.Popen([*command, "--wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.0)
    assert waiting.poll() is None  # still waiting for job one
    holder.close()
    _, err = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, err.decode()[-2000:]
    sources, _ = discover_sources([manifest])
    corpus = Corpus(out)
    assert len(corpus.recordings) == len(sources)
    assert corpus.index.groupby("recording").size().to_dict() == dict(
        zip(corpus.recordings["recording"], corpus.recordings["n_windows"], strict=True)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"index_parts": ["../../etc/passwd"]}, "index_parts must list files inside"),
        ({"recording_parts": ["/abs/part.parquet"]}, "recording_parts must list files inside"),
        ({"n_windows": -1}, "n_windows must be a non-negative integer"),
        ({"stores": [{"path": "../x.zarr", "n_windows": 1}]}, "a store entry is malformed"),
    ],
)
def test_crafted_corpus_descriptions_are_refused(tmp_path, change, message):
    CorpusWriter(tmp_path / "c", UnifiedTopology.default(), PreprocessConfig()).close()
    meta = json.loads((tmp_path / "c" / "corpus.json").read_text())
    (tmp_path / "c" / "corpus.json").write_text(json.dumps({**meta, **change}))
    with pytest.raises(CorpusFormatError, match=message):
        Corpus(tmp_path / "c")
