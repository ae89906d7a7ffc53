"""The front door: registry, load_model, in-memory embed/predict equal to the corpus route."""

import json
import subprocess
import sys

import mne
import numpy as np
import pandas as pd
import pytest
import torch

import mmm_eeg
from mmm_eeg import UserInputError
from mmm_eeg.corpus import Corpus
from mmm_eeg.corpus.build import build_corpus
from mmm_eeg.inference import MMMModel, as_recordings, load_model
from mmm_eeg.io.sources import discover_sources
from mmm_eeg.model import MMMClassifier, MMMEncoder, create_model, list_models
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.train.finetune import embed, evaluate, predict
from mmm_eeg.windows import PreprocessConfig

FILES = ("Subject00_1.edf", "Subject00_2.edf")  # one subject: rest, arithmetic


@pytest.fixture(scope="module")
def corpus_path(tmp_path_factory, eeg_data):
    sources, _ = discover_sources([eeg_data / "eegmat" / "manifest.csv"])
    out = tmp_path_factory.mktemp("inference") / "corpus"
    build_corpus([s for s in sources if s.path.name in FILES], out)
    return out


def _raw(eeg_data, name):
    return mne.io.read_raw_edf(eeg_data / "eegmat" / name, preload=True, verbose="error")


def test_registry_lists_and_builds():
    assert {"mmm_base_tuh", "mmm_base", "mmm_small"} <= set(list_models())
    small = create_model("mmm_small")
    assert isinstance(small, MMMEncoder) and small.dim == 16
    classifier = create_model("mmm_small", n_outputs=3, label_names=["a", "b", "c"])
    assert isinstance(classifier, MMMClassifier) and classifier.n_outputs == 3
    with pytest.raises(UserInputError, match="'name' parameter: 'mmm_huge'"):
        create_model("mmm_huge")
    with pytest.raises(UserInputError, match="no released weights"):
        create_model("mmm_small", pretrained=True)


def test_released_weights_are_found_and_refused_when_wrong(checkpoint_path, tmp_path, monkeypatch):
    monkeypatch.setenv("MMM_EEG_CHECKPOINTS", str(checkpoint_path.parent))
    encoder = create_model("mmm_base_tuh", pretrained=True)
    assert encoder.load_report["initialised"] == ["pos_embed", "region_tokens"]
    assert encoder.feature_spec.normalize == "subject" and encoder.absent == "noise"
    model = MMMModel(encoder)
    x = (np.random.default_rng(0).normal(scale=1e-5, size=(19, 5000)), [
        "Fp1", "Fp2", "F3", "F4", "F7", "F8", "T7", "T8", "C3", "C4", "P7", "P8", "P3", "P4",
        "O1", "O2", "Fz", "Cz", "Pz"], 500.0)  # fmt: skip
    state = torch.random.get_rng_state()
    np.testing.assert_array_equal(model.embed(x), model.embed(x))  # noise drawn from a fixed seed
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's generator untouched
    reference = torch.load(checkpoint_path, weights_only=True)
    key = "blocks.0.attn.in_proj_weight"
    torch.testing.assert_close(encoder.state_dict()[key], reference[f"network.{key}"])
    monkeypatch.delenv("MMM_EEG_CHECKPOINTS")
    monkeypatch.setenv("MMM_EEG_DATA", str(tmp_path / "eeg"))  # no checkpoints/ beside it
    with pytest.raises(UserInputError, match=r"not found in .*empty, .*checkpoints"):
        create_model("mmm_base_tuh", pretrained=True, checkpoint_dir=tmp_path / "empty")
    # A file of other weights: refused, never a silently random model.
    torch.save({"head.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(UserInputError, match=r"no 'network\.patch_embed\.weight' matrix"):
        create_model("mmm_base_tuh", pretrained=tmp_path / "other.pt")


def test_embed_in_memory_equals_the_corpus_route(corpus_path, eeg_data, tmp_path):
    import pyarrow.parquet as pq

    torch.manual_seed(0)
    encoder = MMMEncoder(dim=16, depth=2, heads=2, feature_spec=FeatureSpec(normalize="recording"))
    encoder.save_pretrained(tmp_path / "encoder")
    model = load_model(tmp_path / "encoder")
    corpus = Corpus(corpus_path)
    for name in FILES:
        raw = _raw(eeg_data, name)
        z = model.embed(raw, pool="mean")
        recordings = corpus.index["recording"]
        select = f"recording == {recordings[recordings.str.contains(name[:-4])].iloc[0]}"
        n = embed(corpus_path, str(tmp_path / "encoder"), tmp_path / "z.parquet", select, "mean")[
            "windows"
        ]
        stored = np.stack(
            pq.read_table(tmp_path / "z.parquet")["embedding"].to_numpy(zero_copy_only=False)
        )
        assert n == len(z) > 0
        np.testing.assert_allclose(z, stored, atol=1e-6)
    tokens = model.embed(_raw(eeg_data, FILES[0]))
    assert tokens.shape[1:] == (18, 16)
    np.testing.assert_allclose(model.embed(_raw(eeg_data, FILES[0]), pool="cls"), tokens[:, -1])


def test_embed_command_and_load_model_agree_on_the_released_file(
    corpus_path, eeg_data, checkpoint_path, tmp_path
):
    """The same .pt through ``mmm-eeg embed --init`` (corpus route) and ``load_model().embed``
    (in memory): one resolver, one spec (the card's: per subject, noise-filled absent nodes),
    the same vectors; both say which spec they used."""
    import pyarrow.parquet as pq

    run = subprocess.run([sys.executable, "-m", "mmm_eeg", "embed", str(corpus_path), "--init",
                          str(checkpoint_path), "--out", str(tmp_path / "z.parquet")],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "normalize='subject'" in run.stdout and "model card 'mmm_base_tuh'" in run.stdout
    stored = np.stack(
        pq.read_table(tmp_path / "z.parquet")["embedding"].to_numpy(zero_copy_only=False)
    )
    model = load_model(checkpoint_path)
    assert model.encoder.absent == "noise" and model.spec.normalize == "subject"
    assert "model card 'mmm_base_tuh'" in model.describe_spec() and "subject" in repr(model)
    tokens = model.embed([_raw(eeg_data, name) for name in FILES])  # one subject, one call
    assert tokens.shape == (len(stored), 18, 64)
    np.testing.assert_allclose(tokens.reshape(len(tokens), -1), stored, atol=1e-5)
    # Loading twice gives the same network: the tensors the file lacks have a fixed seed.
    np.testing.assert_array_equal(
        load_model(checkpoint_path).encoder.region_tokens.detach(),
        model.encoder.region_tokens.detach(),
    )


def test_predict_equals_evaluate_window_by_window(corpus_path, eeg_data, tmp_path):
    torch.manual_seed(1)
    classifier = MMMClassifier(
        MMMEncoder(dim=16, depth=1, heads=2), 2, label_names=["arithmetic", "rest"],
        feature_spec=Corpus(corpus_path).feature_spec("subject"),
    )  # fmt: skip
    classifier.save_pretrained(tmp_path / "clf")
    model = load_model(tmp_path / "clf")
    corpus = Corpus(corpus_path)
    raws = [_raw(eeg_data, name) for name in FILES]
    # Per subject: statistics from all of that subject's data, given in one call.
    proba = model.predict_proba(raws)
    expected = predict(classifier, corpus, np.arange(len(corpus)), "subject")
    assert list(proba.columns) == ["start_s", "arithmetic", "rest"]
    np.testing.assert_allclose(proba[["arithmetic", "rest"]].to_numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(proba["start_s"], corpus.index["start_s"])
    labels = model.predict(raws)["label"].to_numpy()
    assert (labels == np.array(["arithmetic", "rest"])[expected.argmax(1)]).all()
    scored = evaluate(tmp_path / "clf", corpus_path)  # reads "subject" from the model's spec
    truth = (corpus.index["label"] == "rest").to_numpy().astype(int)
    from sklearn.metrics import balanced_accuracy_score

    assert scored["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(truth, expected.argmax(1))
    )


@pytest.mark.parametrize("absent", ["exclude", "noise"])
def test_windows_with_different_channels_come_back_in_order(absent):
    """Windows are run grouped by their present nodes (a fixed montage each, under "exclude");
    the outputs are the full network's, in window order."""
    torch.manual_seed(0)
    classifier = MMMClassifier(MMMEncoder(dim=16, depth=2, heads=2, absent=absent), 3).eval()
    model = MMMModel(classifier, FeatureSpec(normalize="recording"))
    rng = np.random.default_rng(0)
    montages = [["Fp1", "Fp2", "C3", "C4", "O1", "O2"], ["TP9", "AF7", "AF8", "TP10"], ["Cz"]]
    data = [(rng.normal(scale=1e-5, size=(len(m), 2000)), m, 250.0) for m in montages * 2]
    x, present, _ = model.features(data)
    assert len(np.unique(present, axis=0)) == 3
    proba = model.predict_proba(data)
    tokens = model.embed(data)
    with torch.no_grad():  # each call of the model draws the noise policy's noise from seed 0
        torch.manual_seed(0)
        logits = classifier(torch.from_numpy(x), torch.from_numpy(present))
        torch.manual_seed(0)
        expected = classifier.encoder.unified(torch.from_numpy(x), torch.from_numpy(present))
    np.testing.assert_allclose(proba[["0", "1", "2"]], torch.softmax(logits, -1), atol=1e-5)
    np.testing.assert_allclose(tokens, expected, atol=1e-5)


def test_a_corpus_made_otherwise_is_refused(corpus_path, tmp_path):
    classifier = MMMClassifier(
        MMMEncoder(dim=16, depth=1, heads=2), 2, label_names=["arithmetic", "rest"],
        feature_spec=FeatureSpec(PreprocessConfig(window=2.0), normalize="subject"),
    )  # fmt: skip
    classifier.save_pretrained(tmp_path / "clf")
    with pytest.raises(UserInputError, match=r"window: model 2\.0, corpus .* 1\.0"):
        evaluate(tmp_path / "clf", corpus_path)


def test_inputs_raw_epochs_arrays(eeg_data):
    raw = _raw(eeg_data, FILES[0]).crop(0, 20)
    model = MMMModel(MMMEncoder(dim=16, depth=1, heads=2), FeatureSpec())
    from_raw = model.embed(raw, pool="mean")
    array = (raw.get_data(), raw.ch_names, raw.info["sfreq"])
    np.testing.assert_allclose(model.embed(array, pool="mean"), from_raw, atol=1e-6)
    epochs = mne.make_fixed_length_epochs(raw, duration=5.0, verbose="error")
    _, _, windows = model.features(epochs)
    assert list(windows.columns) == ["epoch", "start_s"] and windows["epoch"].nunique() == len(
        epochs
    )
    assert len(as_recordings(epochs)) == len(epochs)
    with pytest.raises(UserInputError, match="Cannot read EEG from a str"):
        model.embed("not eeg")
    with pytest.raises(UserInputError, match="is an encoder"):
        model.predict(raw)


def test_top_level_api():
    names = ("load_model", "create_model", "Recording", "read_recording", "differential_entropy",
             "UnifiedTopology", "Corpus", "FeatureSpec", "list_models")  # fmt: skip
    assert set(names) <= set(mmm_eeg.__all__)
    for name in mmm_eeg.__all__:  # every lazy name resolves to what its module defines
        value = getattr(mmm_eeg, name)
        assert value is not None and name in dir(mmm_eeg)
        module = mmm_eeg._LAZY.get(name)
        if module is not None:
            assert value is getattr(__import__(module, fromlist=[name]), name)
    with pytest.raises(AttributeError, match="no_such_name"):
        mmm_eeg.no_such_name  # noqa: B018
    code = "import sys, mmm_eeg; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False"  # importing the package does not import torch


def test_predict_command(corpus_path, eeg_data, tmp_path):
    classifier = MMMClassifier(
        MMMEncoder(dim=16, depth=1, heads=2), 2, label_names=["arithmetic", "rest"],
        feature_spec=Corpus(corpus_path).feature_spec("recording"),
    )  # fmt: skip
    classifier.save_pretrained(tmp_path / "clf")
    (tmp_path / "bad.edf").write_bytes(b"0" * 300)
    files = [eeg_data / "eegmat" / FILES[0], tmp_path / "bad.edf"]
    run = subprocess.run([sys.executable, "-m", "mmm_eeg", "predict", str(tmp_path / "clf"),
                          *map(str, files), "--out", str(tmp_path / "p.csv")],
                         capture_output=True, text=True)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Skipped" in run.stderr and "bad.edf" in run.stderr
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == ["file", "start_s", "arithmetic", "rest", "label"]
    # The oracle: the corpus route (stored windows, per-recording statistics), not predict_proba.
    corpus = Corpus(corpus_path)
    rows = np.flatnonzero(corpus.index["recording"] == corpus.index["recording"].iloc[0])
    expected = predict(classifier, corpus, rows, "recording")
    assert len(table) == len(rows)
    np.testing.assert_allclose(table[["arithmetic", "rest"]], expected, atol=1e-5)
    np.testing.assert_allclose(table["start_s"], corpus.index["start_s"].to_numpy()[rows])
    assert (
        json.loads((tmp_path / "clf" / "config.json").read_text())["feature_spec"]["normalize"]
        == "recording"
    )


def test_noise_is_one_stream_whatever_the_batches():
    """Under the noise policy, the same windows give the same output for batches of any
    multiple of 8 windows, and calls cut apart inside one noise_seed give the single call's."""
    from mmm_eeg.inference import run_windows
    from mmm_eeg.model import noise_seed

    torch.manual_seed(0)
    encoder = MMMEncoder(dim=16, depth=1, heads=2, absent="noise")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 62, 5)).astype(np.float32)
    present = np.zeros((50, 62), dtype=bool)
    present[:, :19] = True
    whole = run_windows(encoder, x, present, batch_size=64)
    np.testing.assert_allclose(run_windows(encoder, x, present, batch_size=24), whole, atol=1e-6)
    with noise_seed(0):
        parts = [run_windows(encoder, x[i : i + 16], present[i : i + 16], seed=None)
                 for i in range(0, 50, 16)]  # fmt: skip
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)
    assert not np.allclose(run_windows(encoder, x, present, seed=1), whole, atol=1e-3)
