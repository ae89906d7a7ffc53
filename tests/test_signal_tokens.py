"""Tokens from the signal: the window path keeps it, the corpus stores it, every route reads it."""

import json
import subprocess
import sys

import mne
import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from mmm_eeg import Recording, UserInputError
from mmm_eeg.corpus import Corpus
from mmm_eeg.corpus.batches import iter_batches
from mmm_eeg.inference import MMMModel, load_model
from mmm_eeg.model import MMMAutoencoder, MMMClassifier, MMMEncoder
from mmm_eeg.normalization import node_moments
from mmm_eeg.online import OnlineDecoder
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.train.config import PretrainConfig
from mmm_eeg.train.pretrain import pretrain, training_summary
from mmm_eeg.waveforms import signal_windows
from mmm_eeg.windows import PreprocessConfig, extract_windows

SIGNAL = PreprocessConfig(signal_rate=100.0)


def test_signal_windows_band_limit_and_resample_a_known_signal():
    sfreq, t = 500.0, np.arange(1000) / 500.0
    # 10 Hz (kept), 70 Hz (above the band: gone), a DC offset (removed), in volts.
    data = (20e-6 * np.sin(2 * np.pi * 10 * t) + 5e-6 * np.sin(2 * np.pi * 70 * t) + 1e-3)[None]
    out = signal_windows(data, sfreq, np.array([0, 500]), 500, 100.0, (1.0, 45.0), 100.0)
    assert out.shape == (2, 1, 100) and out.dtype == np.float32
    expected = 0.2 * np.sin(2 * np.pi * 10 * np.arange(100) / 100.0)  # 20 µV in 100 µV units
    # Within 12 % of the amplitude: removing each window's linear trend also removes the sine's
    # own small correlation with a ramp; the 70 Hz part (0.05) and the offset (10) are gone.
    np.testing.assert_allclose(out[0, 0], expected, atol=0.025)
    np.testing.assert_allclose(out[1, 0], expected, atol=0.025)
    np.testing.assert_allclose(out[0, 0], out[1, 0], atol=1e-6)
    # A drift within the window is removed, not wrapped around into the band.
    drift = np.linspace(0, 50e-6, 256) + 10e-6 * np.sin(2 * np.pi * 10 * np.arange(256) / 256)
    out = signal_windows(drift[None], 256.0, np.array([0]), 256, 100.0, (1.0, 45.0), 100.0)
    np.testing.assert_allclose(
        out[0, 0], 0.1 * np.sin(2 * np.pi * 10 * np.arange(100) / 100), atol=0.0125
    )
    # Upsampling keeps the band too: 160 Hz -> 200 Hz.
    slow = np.sin(2 * np.pi * 10 * np.arange(160) / 160.0)[None] * 1e-4
    up = signal_windows(slow, 160.0, np.array([0]), 160, 200.0, (1.0, 45.0), 100.0)
    np.testing.assert_allclose(up[0, 0], np.sin(2 * np.pi * 10 * np.arange(200) / 200), atol=0.12)


def test_signal_settings_are_checked():
    with pytest.raises(UserInputError, match="signal_band must satisfy"):
        PreprocessConfig(signal_rate=64.0, signal_band=(1.0, 45.0))
    with pytest.raises(UserInputError, match="whole number of samples"):
        PreprocessConfig(window=0.255, signal_rate=100.0)
    with pytest.raises(UserInputError, match="preprocess with a signal rate"):
        FeatureSpec(tokens="raw")
    assert PreprocessConfig.from_dict(SIGNAL.to_dict()) == SIGNAL


@pytest.mark.parametrize("tokens", ["raw", "de+raw"])
def test_raw_token_encoder_round_trips_and_its_fixed_montage_form_agrees(tokens, tmp_path):
    spec = FeatureSpec(SIGNAL, normalize="subject", tokens=tokens)
    torch.manual_seed(0)
    encoder = MMMEncoder(
        dim=32, depth=2, heads=4, tokens=tokens, signal_samples=100, feature_spec=spec
    ).eval()
    assert encoder.n_inputs == spec.n_inputs == (105 if tokens == "de+raw" else 100)
    x = torch.randn(6, 62, encoder.n_inputs)
    nodes = np.array([0, 5, 9, 22, 40, 61])
    present = torch.zeros(6, 62, dtype=torch.bool)
    present[:, nodes] = True
    encoder.save_pretrained(tmp_path / "enc")
    loaded = MMMEncoder.from_pretrained(tmp_path / "enc").eval()
    assert loaded.feature_spec == spec and loaded.tokens == tokens
    with torch.no_grad():
        reference = encoder.unified(x, present)
        np.testing.assert_array_equal(loaded.unified(x, present), reference)
        short = encoder.for_montage(nodes)(x[:, nodes])
    np.testing.assert_allclose(short, reference, atol=1e-5)
    # A DE spec cannot be given to a raw-token encoder.
    with pytest.raises(UserInputError, match="Build the spec with the encoder's tokens"):
        MMMEncoder(tokens=tokens, signal_samples=100, feature_spec=FeatureSpec())


def test_raw_pretraining_targets_and_weights():
    torch.manual_seed(0)
    encoder = MMMEncoder(dim=16, depth=1, heads=2, tokens="de+raw", signal_samples=100)
    x = torch.randn(3, 62, 105)
    full = MMMAutoencoder(encoder, 1)
    assert full.targets == {"de": 1.0, "waveform": 1.0, "spectrum": 1.0}
    target = full.reconstruction_target(x)
    assert target.shape == (3, 62, 5 + 100 + 51)
    torch.testing.assert_close(target[..., :5], x[..., :5])
    waveform = target[..., 5:105]
    torch.testing.assert_close(waveform.mean(-1), torch.zeros(3, 62), atol=1e-5, rtol=0)
    spectrum = torch.log(torch.fft.rfft(x[..., 5:], dim=-1).abs() + 1e-3)
    torch.testing.assert_close(target[..., 105:], spectrum, atol=1e-4, rtol=1e-4)
    # Weights: only the spectrum counts, so the error is the spectrum's mean squared error.
    only = MMMAutoencoder(encoder, 1, targets={"spectrum": 2.0, "waveform": 0.0})
    assert only.reconstruction_target(x).shape[-1] == 51
    prediction = torch.zeros(3, 62, 51)
    torch.testing.assert_close(only.node_error(prediction, spectrum), 2.0 * (spectrum**2).mean(-1))
    with pytest.raises(UserInputError, match="do not suit an encoder"):
        MMMAutoencoder(MMMEncoder(dim=16, depth=1, heads=2), 1, targets={"waveform": 1.0})


@pytest.fixture(scope="module")
def signal_corpus(eeg_data, tmp_path_factory):
    from mmm_eeg.corpus.build import build_corpus
    from mmm_eeg.io.sources import discover_sources

    out = tmp_path_factory.mktemp("signal") / "corpus"
    files = [eeg_data / "eegmat" / f"Subject0{s}_{r}.edf" for s in range(4) for r in (1, 2)]
    sources, skipped = discover_sources(files)
    build_corpus(sources, out, config=SIGNAL, skipped=skipped)
    return Corpus(out)


def test_the_corpus_stores_the_signal_of_each_window(signal_corpus, eeg_data):
    corpus = signal_corpus
    assert corpus.meta["version"] == 2 and corpus.signal.shape == (len(corpus), 62, 100)
    assert corpus.signal.dtype == np.float16
    first = corpus.recordings.iloc[0]
    raw = mne.io.read_raw_edf(first["path"], preload=True, verbose="error")
    windows = extract_windows(Recording.from_raw(raw), corpus.topology, SIGNAL)
    rows = np.arange(first["offset"], first["offset"] + first["n_windows"])
    stored = corpus.signal[rows].astype(np.float32)
    np.testing.assert_allclose(stored, windows.signal, atol=2e-3, rtol=1e-3)  # float16
    assert not stored[:, ~windows.present[0]].any()  # absent nodes hold zeros
    # Inputs by tokens: DE first, then the signal; batches equal random access.
    de, _ = corpus.read(rows[:50], "subject")
    both, _ = corpus.read(rows[:50], "subject", "de+raw")
    np.testing.assert_array_equal(both[..., :5], de)
    np.testing.assert_array_equal(both[..., 5:], stored[:50])
    for x, _, batch_rows in iter_batches(corpus, 64, rows, "subject", seed=1, tokens="raw"):
        np.testing.assert_array_equal(x, corpus.read(batch_rows, "subject", "raw")[0])
    # A DE model reads a signal corpus; a raw model refuses a corpus without the signal.
    FeatureSpec().check_features(corpus.feature_spec(), "the corpus")
    with pytest.raises(UserInputError, match=r"signal_rate: model 100\.0, the corpus None"):
        FeatureSpec(SIGNAL, tokens="raw").check_features(FeatureSpec(), "the corpus")


def test_a_version_1_corpus_reads_as_before(signal_corpus, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(signal_corpus.path, old)
    meta = json.loads((old / "corpus.json").read_text())
    meta["version"] = 1
    meta["preprocessing"] = {k: v for k, v in meta["preprocessing"].items()
                             if not k.startswith("signal_")}  # fmt: skip
    (old / "corpus.json").write_text(json.dumps(meta))
    corpus = Corpus(old)
    assert corpus.signal is None and corpus.config.signal_rate is None
    np.testing.assert_array_equal(corpus.read(np.arange(9))[0], signal_corpus.read(np.arange(9))[0])
    with pytest.raises(UserInputError, match="keeps no signal"):
        corpus.read(np.arange(9), tokens="raw")


def test_a_corpus_with_a_zstd_signal_still_reads_and_extends(signal_corpus, eeg_data, tmp_path):
    """The signal is written with Blosc LZ4; corpora written with zarr's default Zstandard
    (before it) read the same values and take new recordings in their own codec."""
    import shutil

    import zarr
    from zarr.codecs import BloscCodec, ZstdCodec

    from mmm_eeg.corpus.build import build_corpus
    from mmm_eeg.io.sources import discover_sources

    stored = zarr.open_array(signal_corpus.path / "data.zarr" / "signal")
    assert [type(c) for c in stored.compressors] == [BloscCodec]
    assert stored.compressors[0].cname.value == "lz4"
    old = tmp_path / "zstd"
    shutil.copytree(signal_corpus.path, old)
    shutil.rmtree(old / "data.zarr" / "signal")
    values = np.asarray(stored[:])
    zarr.create_array(old / "data.zarr" / "signal", data=values, chunks=stored.chunks,
                      compressors=ZstdCodec())  # fmt: skip
    rows = np.arange(0, len(values), 7)
    np.testing.assert_array_equal(Corpus(old).read(rows, "subject", "de+raw")[0],
                                  signal_corpus.read(rows, "subject", "de+raw")[0])  # fmt: skip
    sources, _ = discover_sources([eeg_data / "eegmat" / "Subject05_1.edf"])
    build_corpus(sources, old, config=SIGNAL)
    extended = Corpus(old)
    assert len(extended) > len(values)
    np.testing.assert_array_equal(np.asarray(extended.signal[: len(values)]), values)
    appended = zarr.open_array(old / "data.zarr" / "signal")
    assert [type(c) for c in appended.compressors] == [ZstdCodec]


def test_raw_pretraining_learns_and_every_route_reads_the_raw_model(signal_corpus, tmp_path):
    config = PretrainConfig(
        tokens="de+raw", epochs=10, batch_size=32, dim=32, depth=2, heads=4, decoder_depth=1,
        normalize="subject", lr=3e-3, warmup_fraction=0.1,
    )  # fmt: skip
    run = pretrain(signal_corpus.path, tmp_path / "run", config)
    summary = training_summary(run)
    # It learns: the held-out loss falls well below its first epoch's, to about the loss of
    # predicting each target's mean (going below that takes the benchmark's pool and epochs).
    val = pd.read_csv(run / "logs" / "metrics.csv")["val_loss"].dropna()
    assert summary["best_val_loss"] < 0.8 * val.iloc[0]
    assert summary["best_val_loss"] < 1.1 * summary["val_baseline"]
    model = load_model(run)
    assert model.spec.tokens == "de+raw" and model.encoder.n_inputs == 105
    # An MNE Raw gives the corpus's inputs: one recording given, its own statistics, as the
    # corpus's per-recording standardisation.
    first = signal_corpus.recordings.iloc[0]
    raw = mne.io.read_raw_edf(first["path"], preload=True, verbose="error")
    rows = np.arange(first["offset"], first["offset"] + first["n_windows"])
    x_corpus, present = signal_corpus.read(rows, "recording", "de+raw")
    x_raw, present_raw, _ = model.features(raw)
    np.testing.assert_allclose(x_raw, x_corpus, atol=2e-3)  # float16 storage of the signal
    np.testing.assert_array_equal(present_raw, present)
    embedded = model.embed(raw)
    assert embedded.shape == (len(rows), 18, 32) and np.isfinite(embedded).all()


def test_online_and_onnx_equal_the_offline_route_for_raw_tokens(eeg_data, tmp_path):
    raw = mne.io.read_raw_edf(
        eeg_data / "eegmat" / "Subject00_2.edf", preload=True, verbose="error"
    )
    spec = FeatureSpec(SIGNAL, normalize="recording", tokens="de+raw")
    torch.manual_seed(0)
    encoder = MMMEncoder(dim=16, depth=1, heads=2, tokens="de+raw", signal_samples=100)
    classifier = MMMClassifier(encoder, 2, label_names=["a", "r"], feature_spec=spec)
    model = MMMModel(classifier)
    offline = model.predict_proba(raw)
    data, sfreq = raw.get_data(), raw.info["sfreq"]
    windows = extract_windows(Recording.from_raw(raw), encoder.topology, SIGNAL)
    statistics = spec.normalizer.statistics(*node_moments(windows.features, windows.present))
    online = OnlineDecoder(model, raw.ch_names, sfreq, statistics=statistics)
    for i in (0, len(offline) // 2, len(offline) - 1):
        first = round(offline["start_s"][i] * sfreq)
        np.testing.assert_allclose(
            online.probabilities(data[:, first : first + online.window_samples]),
            offline[["a", "r"]].to_numpy()[i],
            atol=1e-5,
        )
    classifier.save_pretrained(tmp_path / "clf")
    command = [sys.executable, "-m", "mmm_eeg", "export", str(tmp_path / "clf"), "--onnx",
               str(tmp_path / "clf.onnx")]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    x, present, _ = load_model(tmp_path / "clf").features(raw)
    (logits,) = ort.InferenceSession(str(tmp_path / "clf.onnx")).run(
        None, {"x": x, "present": present}
    )
    with torch.no_grad():
        expected = classifier.eval()(torch.from_numpy(x), torch.from_numpy(present)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_the_registered_raw_architecture_through_the_estimators_and_load_encoder(
    signal_corpus, eeg_data
):
    from mmm_eeg.estimators import MMMEmbedder
    from mmm_eeg.model import create_model
    from mmm_eeg.model.loading import load_encoder

    encoder = create_model("mmm_base_raw")
    assert (encoder.tokens, encoder.n_inputs, encoder.feature_spec.tokens) == (
        "de+raw",
        105,
        "de+raw",
    )
    # A run on DE settings that names the raw card gets the card's tokens, its spec following.
    run = load_encoder(
        "mmm_base_raw", signal_corpus.topology, feature_spec=signal_corpus.feature_spec()
    )
    assert run.tokens == run.feature_spec.tokens == "de+raw"
    raw = mne.io.read_raw_edf(
        eeg_data / "eegmat" / "Subject05_2.edf", preload=True, verbose="error"
    )
    raw.pick([c for c in raw.ch_names if c.startswith("EEG ") and "A2-A1" not in c])
    epochs = mne.make_fixed_length_epochs(raw, duration=2.0, verbose="error").get_data()[:6]
    names = [c.replace("EEG ", "") for c in raw.ch_names]
    vectors = MMMEmbedder("mmm_base_raw", raw.info["sfreq"], names).fit_transform(epochs)
    assert vectors.shape == (6, 64) and np.isfinite(vectors).all()
    assert not np.allclose(vectors[0], vectors[1])  # the epochs' own signals, not a constant


def test_a_spec_of_other_tokens_is_refused_by_the_model():
    encoder = MMMEncoder(dim=16, depth=1, heads=2, tokens="raw", signal_samples=100)
    with pytest.raises(UserInputError, match=r"spec gives 5 values per node \('de' tokens\)"):
        MMMModel(encoder, FeatureSpec())
    assert MMMModel(encoder, FeatureSpec(SIGNAL, tokens="raw")).spec.n_inputs == 100
