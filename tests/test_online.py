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
    spec = FeatureSpec(normalize="recording")
    classifier = MMMClassifier(
        MMMEncoder(dim=16, depth=1, heads=2), 2, label_names=["a", "r"], feature_spec=spec
    )
    return MMMModel(classifier)


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


def _corrupted(data, sfreq):
    """A copy with a 0.3 s NaN burst on one channel at 20 s and a 1.5 s flat stretch on another
    at 40 s (a loose electrode)."""
    bad = data.copy()
    bad[3, round(20.0 * sfreq) : round(20.3 * sfreq)] = np.nan
    bad[7, round(40.0 * sfreq) : round(41.5 * sfreq)] = bad[7, round(40.0 * sfreq)]
    return bad


def test_a_nan_burst_costs_only_the_windows_it_touches(model, eeg_data):
    """Windows every 0.25 s over a real recording with a NaN burst and a flat stretch: the
    windows that touch them fail their check (named), get no prediction and leave the running
    statistics alone; every other window gets exactly the probabilities of a clean stream from
    which those windows were left out."""
    raw = mne.io.read_raw_edf(
        eeg_data / "eegmat" / "Subject00_2.edf", preload=True, verbose="error"
    )
    data, sfreq = raw.get_data(), raw.info["sfreq"]
    bad = _corrupted(data, sfreq)
    corrupted = OnlineDecoder(model, raw.ch_names, sfreq)
    clean = OnlineDecoder(model, raw.ch_names, sfreq)
    n = corrupted.window_samples
    starts = range(0, data.shape[1] - n, round(0.25 * sfreq))
    qualities = []
    for first in starts:
        result = corrupted.decode(bad[:, first : first + n])
        qualities.append(result.quality)
        if result.quality != "ok":
            assert result.probabilities is None
            continue
        expected = clean.probabilities(data[:, first : first + n])
        # Exact before the flat stretch; after it, the windows that overlap it in part (they
        # pass: not flat over a whole second) have entered the running statistics with their
        # real, partly flat, data, so the two streams differ a little.
        before_flat = first + n <= round(40.0 * sfreq)
        np.testing.assert_allclose(
            result.probabilities, expected, atol=1e-6 if before_flat else 1e-2
        )
        assert np.isfinite(corrupted._moments[0]).all()
    touched = {q for q in qualities if q != "ok"}
    assert touched == {"non-finite samples", "flat signal"}
    # 0.3 s of NaN: the 5 windows starting in (19, 20.3) s; 1.5 s flat: the 3 windows wholly
    # inside it (starting at 40, 40.25, 40.5 s)
    assert qualities.count("non-finite samples") == 5
    assert qualities.count("flat signal") == 3
    assert qualities.count("ok") > 200
    # A channel that stays flat fails every window, and says so; left out as a bad channel
    # (as Raw.info["bads"] offline), the others are decoded.
    dead = data.copy()
    dead[7] = 0.0
    window = dead[:, :n]
    assert OnlineDecoder(model, raw.ch_names, sfreq).decode(window).quality == "flat signal"
    without = OnlineDecoder(model, raw.ch_names, sfreq, bads=[raw.ch_names[7]])
    assert without.decode(window).quality == "ok" and len(without.nodes) == len(clean.nodes) - 1
    with pytest.raises(UserInputError, match=r"bads \['XX'\] are not channels"):
        OnlineDecoder(model, raw.ch_names, sfreq, bads=["XX"])


def test_a_corrupted_stream_over_lsl_reports_the_bad_windows(model, eeg_data, tmp_path):
    """The same faults in a recording played over LSL: the bad windows are reported in the
    CSV's quality column with no prediction; the windows after them are decoded."""
    from mne_lsl.player import PlayerLSL

    raw = mne.io.read_raw_edf(
        eeg_data / "eegmat" / "Subject00_2.edf", preload=True, verbose="error"
    ).crop(17.0, 24.0)
    sfreq = raw.info["sfreq"]
    data = raw.get_data()
    data[3, round(2.0 * sfreq) : round(2.6 * sfreq)] = np.nan  # at 2 s into the stream
    raw = mne.io.RawArray(data, raw.info, verbose="error")
    raw.save(tmp_path / "burst_raw.fif", verbose="error")
    name = f"mmm-eeg-test-{uuid.uuid4().hex[:8]}"
    player = PlayerLSL(tmp_path / "burst_raw.fif", chunk_size=25, name=name, n_repeat=1)
    player.start()
    try:
        rows = decode_stream(model, name, duration=7.5, step=0.1, out=tmp_path / "p.csv")
    finally:
        if player.running:
            player.stop()
    table = pd.read_csv(tmp_path / "p.csv")
    assert len(table) == len(rows) >= 20
    failed = table[table["quality"] != "ok"]
    assert len(failed) >= 3 and set(failed["quality"]) == {"non-finite samples"}
    assert failed[["a", "r"]].isna().all().all() and (failed["label"].isna()).all()
    ok = table[table["quality"] == "ok"]
    assert np.allclose(ok[["a", "r"]].sum(axis=1), 1.0)
    assert (ok["time"] > failed["time"].max()).sum() >= 3  # decoding went on after the burst


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
    assert list(table.columns) == ["time", "a", "r", "label", "quality", "latency_ms"]
    assert (table["quality"] == "ok").all()
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
