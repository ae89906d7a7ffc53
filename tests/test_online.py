"""Live decoding: the online decoder equals the offline route; the LSL loop runs and survives."""

import threading
import time
import uuid

import mne
import numpy as np
import pandas as pd
import pytest
import torch

from mmm_eeg import Recording, UserInputError
from mmm_eeg.inference import MMMModel
from mmm_eeg.model import MMMClassifier, MMMEncoder
from mmm_eeg.normalization import node_moments
from mmm_eeg.online import OnlineDecoder, decode_stream
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.windows import extract_windows


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    classifier = MMMClassifier(MMMEncoder(dim=16, depth=1, heads=2), 2, label_names=["a", "r"])
    return MMMModel(classifier, FeatureSpec(normalize="recording"))


def test_online_windows_equal_the_offline_route(model, eeg_data, caplog):
    raw = mne.io.read_raw_edf(
        eeg_data / "eegmat" / "Subject00_2.edf", preload=True, verbose="error"
    )
    offline = model.predict_proba(raw)
    data, sfreq = raw.get_data(), raw.info["sfreq"]
    windows = extract_windows(Recording.from_raw(raw), model.encoder.topology)
    # Fixed statistics: the recording's own, as the offline route computes them.
    statistics = model.spec.normalizer.statistics(*node_moments(windows.features, windows.present))
    fixed = OnlineDecoder(model, raw.ch_names, sfreq, statistics=statistics)
    running = OnlineDecoder(model, raw.ch_names, sfreq)
    for i, start in enumerate(offline["start_s"]):
        first = round(start * sfreq)
        window = data[:, first : first + fixed.window_samples]
        np.testing.assert_allclose(
            fixed.probabilities(window), offline[["a", "r"]].to_numpy()[i], atol=1e-5
        )
        last = running.probabilities(window)
    # Running statistics reach the recording's own at its last window.
    np.testing.assert_allclose(last, offline[["a", "r"]].to_numpy()[-1], atol=1e-5)
    # Compiled (Inductor, frozen weights, C++ wrapper): the same probabilities.
    compiled = OnlineDecoder(model, raw.ch_names, sfreq, statistics=statistics, compile=True)
    for i in (0, len(offline) // 2, len(offline) - 1):
        first = round(offline["start_s"][i] * sfreq)
        np.testing.assert_allclose(
            compiled.probabilities(data[:, first : first + compiled.window_samples]),
            offline[["a", "r"]].to_numpy()[i],
            atol=1e-5,
        )
    assert "torch.compile failed" not in caplog.text
    with pytest.raises(UserInputError, match="None of the 2 channels maps"):
        OnlineDecoder(model, ["AUX1", "AUX2"], sfreq)


def test_a_compiler_failure_falls_back_to_the_eager_network(model, monkeypatch, caplog):
    import mmm_eeg.online

    def broken(module):
        def run(*args):
            raise RuntimeError("InductorError: no C++ compiler found\nmore lines")

        return run

    names = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]
    eager = OnlineDecoder(model, names, 250.0)
    monkeypatch.setattr(mmm_eeg.online, "compile_for_inference", broken)
    fallback = OnlineDecoder(model, names, 250.0, compile=True)
    assert "torch.compile failed (InductorError: no C++ compiler found)" in caplog.text
    window = np.random.default_rng(0).normal(scale=1e-5, size=(6, 250))
    np.testing.assert_allclose(fallback.probabilities(window), eager.probabilities(window))


def test_decode_an_lsl_stream_and_survive_its_end(model, eeg_data, tmp_path):
    from mne_lsl.player import PlayerLSL

    name = f"mmm-eeg-test-{uuid.uuid4().hex[:8]}"
    player = PlayerLSL(eeg_data / "eegmat" / "Subject00_1.edf", chunk_size=25, name=name)
    player.start()
    stopper = threading.Timer(3.0, player.stop)  # the device goes away mid-stream
    stopper.start()
    try:
        rows = decode_stream(model, name, duration=10.0, step=0.25, out=tmp_path / "p.csv")
    finally:
        stopper.cancel()
        if player.running:
            player.stop()
    assert 3 <= len(rows) < 40  # decoded while it streamed, ended early when it stopped
    table = pd.read_csv(tmp_path / "p.csv")
    assert list(table.columns) == ["time", "a", "r", "label", "latency_ms"]
    assert len(table) == len(rows) and np.allclose(table[["a", "r"]].sum(axis=1), 1.0)
    assert (np.diff(table["time"]) > 0).all()
    with pytest.raises(UserInputError, match="No LSL stream named"):
        decode_stream(model, f"absent-{uuid.uuid4().hex[:8]}", duration=1.0, timeout=1.0)


def test_a_stream_that_returns_is_decoded_again(model, eeg_data, caplog):
    """The device stops mid-stream and comes back under the same name 2 s later: decoding
    resumes on the new samples, with no window mixing the two sessions."""
    from mne_lsl.player import PlayerLSL

    name = f"mmm-eeg-test-{uuid.uuid4().hex[:8]}"
    fname = eeg_data / "eegmat" / "Subject00_1.edf"
    players = [PlayerLSL(fname, chunk_size=25, name=name)]
    players[0].start()
    restarted = {}

    def restart() -> None:
        players[0].stop()
        time.sleep(4.0)  # longer than the stall threshold (2 s): the loop sees it stop
        players.append(PlayerLSL(fname, chunk_size=25, name=name))
        restarted["at"] = time.monotonic()
        players[1].start()

    switcher = threading.Timer(3.0, restart)
    switcher.start()
    try:
        with caplog.at_level("WARNING", logger="mmm_eeg.online"):
            rows = decode_stream(model, name, duration=14.0, step=0.25, reconnect=8.0)
        ended = time.monotonic()
    finally:
        switcher.join()
        for player in players:
            if player.running:
                player.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert any("stopped sending" in m for m in messages)
    assert any("is back" in m for m in messages)
    assert not any("did not return" in m for m in messages)
    # windows from both sessions; the second session starts again at the file's beginning, so
    # the LSL times of its windows begin after the first session's last one
    times = np.array([r["time"] for r in rows])
    assert (np.diff(times) > 0).all()
    gaps = np.diff(times)
    assert gaps.max() > 3.0  # the outage
    after = int(np.argmax(gaps)) + 1
    assert len(rows) - after >= 3 and after >= 3
    assert ended - restarted["at"] > 2.0  # it kept decoding the returned stream


def test_stream_command(model, eeg_data, tmp_path):
    import subprocess
    import sys

    from mne_lsl.player import PlayerLSL

    model.network.feature_spec = model.spec
    model.network.save_pretrained(tmp_path / "clf")
    name = f"mmm-eeg-test-{uuid.uuid4().hex[:8]}"
    player = PlayerLSL(eeg_data / "eegmat" / "Subject00_1.edf", chunk_size=25, name=name)
    player.start()
    try:
        run = subprocess.run(
            [sys.executable, "-m", "mmm_eeg", "stream", str(tmp_path / "clf"), "--stream", name,
             "--duration", "3", "--out", str(tmp_path / "live.csv"), "--compile"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        player.stop()
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Decoded" in run.stdout and "windows" in run.stdout
    assert "torch.compile failed" not in run.stderr
    assert len(pd.read_csv(tmp_path / "live.csv")) >= 3


def test_a_muse_headset_stream_with_a_prediction_outlet(model, muse_file, tmp_path):
    """The Muse CSV, converted for the player, streams 4 channels + AUX; predictions are
    published on an LSL outlet that another program reads."""
    from mne_lsl.lsl import StreamInlet, resolve_streams
    from mne_lsl.player import PlayerLSL

    from mmm_eeg.io.readers import read_muse_csv

    recording = read_muse_csv(muse_file)
    info = mne.create_info(recording.ch_names, recording.sfreq, "eeg")
    mne.io.RawArray(recording.data, info, verbose="error").save(tmp_path / "muse_raw.fif")
    tag = uuid.uuid4().hex[:8]
    player = PlayerLSL(tmp_path / "muse_raw.fif", chunk_size=16, name=f"muse-{tag}")
    player.start()
    results = {}
    worker = threading.Thread(
        target=lambda: results.update(
            rows=decode_stream(model, f"muse-{tag}", duration=4.0, outlet=f"preds-{tag}")
        )
    )
    worker.start()
    try:
        (found,) = resolve_streams(timeout=5.0, name=f"preds-{tag}")
        inlet = StreamInlet(found)
        inlet.open_stream(timeout=5.0)
        assert inlet.get_sinfo().get_channel_names() == ["a", "r"]
        worker.join(timeout=60)
        samples, stamps = inlet.pull_chunk(timeout=1.0)
    finally:
        worker.join(timeout=60)
        player.stop()
    rows = results["rows"]
    assert len(rows) >= 3 and len(samples) >= 1
    np.testing.assert_allclose(np.asarray(samples).sum(axis=1), 1.0, atol=1e-5)
    published = {round(r["time"], 3) for r in rows}
    assert {round(t, 3) for t in stamps} <= published  # each sample is a decoded window
