"""Event-locked windows: one per stimulus, from --tmin to --tmax around its onset; xDAWN on them."""

import numpy as np
import pytest
from typer.testing import CliRunner

from mmm_eeg import UserInputError
from mmm_eeg.cli import app
from mmm_eeg.corpus import Corpus
from mmm_eeg.features import differential_entropy
from mmm_eeg.io.readers import read_recording
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.train.protocols import make_folds
from mmm_eeg.windows import PreprocessConfig, extract_windows

EVENTS = {"1": "house", "2": "face"}
runner = CliRunner()


def test_event_locked_windows_start_at_their_events(muse_file):
    recording = read_recording(muse_file)
    config = PreprocessConfig(window=1.0, epoch_tmin=-0.1)
    windows = extract_windows(recording, UnifiedTopology.default(), config, events=EVENTS)
    onsets = [(a.onset, EVENTS[a.description]) for a in recording.annotations
              if a.description in EVENTS]  # fmt: skip
    inside = [(t, label) for t, label in onsets
              if t - 0.1 >= 0 and t + 0.9 <= recording.duration]  # fmt: skip
    assert len(windows) + sum(windows.dropped.values()) == len(onsets)
    assert len(windows) >= len(inside) - 1 and len(windows) > 50
    sfreq = recording.sfreq
    kept = {round(t * sfreq): label for t, label in inside}
    for start, label in zip(windows.start_s, windows.labels, strict=True):
        onset = round((start + 0.1) * sfreq)
        assert kept.get(onset, kept.get(onset - 1, kept.get(onset + 1))) == label
    # Each window's DE is the DE of exactly its samples.
    mapping = UnifiedTopology.default().map_channels(recording.ch_names, on_unknown="drop")
    channels = mapping.source[mapping.present]
    first = round(windows.start_s[0] * sfreq)
    segment = recording.data[channels, first : first + round(sfreq)]
    expected = differential_entropy(segment, sfreq, config.bands, 1.0)[0]
    np.testing.assert_allclose(windows.features[0][mapping.present], expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(UserInputError, match="need the events that lock"):
        extract_windows(recording, UnifiedTopology.default(), config)
    with pytest.raises(UserInputError, match="neither a step nor LDS"):
        PreprocessConfig(epoch_tmin=0.0, step=0.5)
    with pytest.raises(UserInputError, match="use method='fft'"):
        PreprocessConfig(epoch_tmin=0.0, method="filter")
    # Two labels at one onset: no window (it cannot carry both).
    import dataclasses

    from mmm_eeg.io.recording import Annotation

    first = next(a for a in recording.annotations if a.description in EVENTS)
    other = "2" if first.description == "1" else "1"
    doubled = dataclasses.replace(
        recording, annotations=[*recording.annotations, Annotation(first.onset, 0.0, other)]
    )
    again = extract_windows(doubled, UnifiedTopology.default(), config, events=EVENTS)
    assert len(again) == len(windows) - 1
    assert again.dropped["events of two labels at one onset"] == 2


@pytest.fixture(scope="module")
def muse_corpus(muse_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("epochs") / "corpus"
    folder = muse_file.parents[1]  # one subject, every session
    result = runner.invoke(
        app, ["preprocess", str(folder), "--out", str(out), "--epochs-from", "1=house,2=face",
              "--tmin", "-0.1", "--tmax", "0.9"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return Corpus(out)


def test_preprocess_epochs_from_writes_event_locked_windows(muse_corpus, tmp_path, muse_file):
    corpus = muse_corpus
    assert corpus.config.epoch_tmin == -0.1 and corpus.config.window == 1.0
    assert corpus.meta["version"] == 1  # no signal array: readable by version-1 readers
    assert set(corpus.index["label"]) == {"house", "face"}
    # A DE model made on tiled windows reads event-locked ones (where windows lie is no
    # property of what they hold).
    FeatureSpec().check_features(corpus.feature_spec(), "the corpus")
    for args, message in (
        (["--epochs-from", "1=house"], "need --tmax after --tmin"),
        (["--tmin", "-0.1"], "need --tmax after --tmin"),
        (["--epochs-from", "1=house", "--events", "1=house", "--tmax", "1"], "events once"),
        (["--epochs-from", "1=house", "--tmax", "1", "--window", "2"], "contradicts"),
    ):
        result = runner.invoke(
            app, ["preprocess", str(muse_file), "--out", str(tmp_path / "x"), *args]
        )
        assert result.exit_code == 2 and message in result.output, result.output


def test_xdawn_features_are_fitted_on_the_training_fold_only(muse_corpus):
    from mmm_eeg.corpus.labels import label_targets
    from mmm_eeg.experiments.compare import _xdawn

    corpus = muse_corpus
    rows = np.arange(len(corpus))
    targets, _ = label_targets(corpus.index, rows)
    folds = make_folds(corpus.index, rows, "time-blocked", k=3, seed=0)
    features = _xdawn(corpus, rows, targets)
    fold = folds[0]
    first = features(fold)
    assert first.shape[0] == len(rows) and np.isfinite(first).all()
    # Labels of the held-out epochs do not reach the features; the training labels do.
    shuffled = targets.copy()
    shuffled[fold.test] = np.random.default_rng(0).permutation(shuffled[fold.test])
    np.testing.assert_allclose(_xdawn(corpus, rows, shuffled)(fold), first)
    flipped = targets.copy()
    flipped[fold.train] = 1 - flipped[fold.train]
    assert not np.allclose(_xdawn(corpus, rows, flipped)(fold), first)


def test_mne_epochs_become_one_window_each(muse_file, tmp_path):
    """``build_corpus_from_recordings`` with an ``mne.Epochs``: each epoch is a window whose DE
    is that of the epoch's own first second, labelled by its event's name."""
    import mne

    from mmm_eeg.corpus.build import build_corpus_from_recordings

    recording = read_recording(muse_file)
    info = mne.create_info(recording.ch_names, recording.sfreq, "eeg")
    raw = mne.io.RawArray(recording.data, info, verbose=False)
    sfreq = recording.sfreq
    onsets = [(round(a.onset * sfreq), int(a.description)) for a in recording.annotations
              if a.description in EVENTS]  # fmt: skip
    events = np.array([[sample, 0, code] for sample, code in onsets])
    epochs = mne.Epochs(raw, events, {"house": 1, "face": 2}, tmin=-0.1, tmax=0.9,
                        baseline=None, preload=True, verbose=False)  # fmt: skip
    report = build_corpus_from_recordings([(epochs, "s1", None)], tmp_path / "c", dataset="muse")
    assert not report["skipped"]
    corpus = Corpus(tmp_path / "c")
    assert corpus.config.window == 1.0  # MNE's tmin is on a sample: -26 / 256 s
    assert corpus.config.epoch_tmin == pytest.approx(-0.1, abs=1 / sfreq)
    index = corpus.index
    assert 0 < len(index) and len(index) + sum(report["dropped_windows"].values()) == len(epochs)
    which = np.round(index["start_s"].to_numpy() * sfreq / len(epochs.times)).astype(int)
    names = {1: "house", 2: "face"}
    assert list(index["label"]) == [names[c] for c in epochs.events[which, 2]]
    mapping = UnifiedTopology.default().map_channels(recording.ch_names, on_unknown="drop")
    channels, nodes = mapping.source[mapping.present], np.flatnonzero(mapping.present)
    data = epochs.get_data()[which][:, channels, : round(sfreq)]
    expected = np.stack([differential_entropy(d, sfreq, corpus.config.bands, 1.0)[0] for d in data])
    x, present = corpus.read(np.arange(len(index)), "none")
    np.testing.assert_allclose(x[:, nodes], expected, rtol=1e-5, atol=1e-5)
    assert present[:, nodes].all()
    # One label for every epoch; an events map naming other events, or other epochs, skipped
    again = build_corpus_from_recordings(
        [(epochs, "s2", "stimulus"), (epochs, "s3", {"car": "x"}),
         (epochs.copy().crop(0.0, 0.5), "s4", None)],
        tmp_path / "c",
        dataset="muse",
    )  # fmt: skip
    reasons = " ".join(s["reason"] for s in again["skipped"])
    assert "['car'] are not among the epochs' events" in reasons and "tmin=0" in reasons
    index = Corpus(tmp_path / "c").index
    assert set(index.loc[index["subject"] == "s2", "label"]) == {"stimulus"}
    assert not any("item" in s["reason"] for s in again["skipped"])  # named once, as the path
    with pytest.raises(UserInputError, match="separate calls"):
        build_corpus_from_recordings(
            [(recording, "s5", None), (epochs, "s5", None)], tmp_path / "m"
        )
    with pytest.raises(UserInputError, match="resample them first"):
        build_corpus_from_recordings(
            [(epochs, "s6", None)], tmp_path / "r",
            config=PreprocessConfig(window=1.0, epoch_tmin=-0.1, resample=128.0),
        )  # fmt: skip
