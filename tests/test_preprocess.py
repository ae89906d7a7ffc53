"""Windows of one recording: quality checks, labels, smoothing, referencing."""

import numpy as np
import pytest

from mmm_eeg import UnifiedTopology, UserInputError
from mmm_eeg.features import differential_entropy, lds_smooth
from mmm_eeg.io.recording import Annotation, Recording
from mmm_eeg.windows import PreprocessConfig, extract_windows, window_labels

TOPO = UnifiedTopology.default()
NAMES = ["Fp1", "Fp2", "Cz", "O1", "ECG"]


def make_recording(seconds=20, sfreq=200.0, seed=0, **kwargs):
    data = np.random.default_rng(seed).normal(0, 10e-6, (len(NAMES), int(seconds * sfreq)))
    return Recording(data, sfreq, list(NAMES), **kwargs)


def test_clean_recording_gives_one_window_per_second():
    rec = make_recording()
    w = extract_windows(rec, TOPO)
    assert len(w) == 20 and not w.dropped
    present_nodes = {TOPO.nodes[i] for i in np.flatnonzero(w.present[0])}
    assert present_nodes == {"FP1", "FP2", "CZ", "O1"}
    expected = differential_entropy(rec.data[[0, 1, 2, 3]], 200.0)
    np.testing.assert_allclose(w.features[:, TOPO.index("CZ")], expected[:, 2], rtol=1e-6)
    assert not w.features[:, ~w.present[0]].any()  # absent nodes are zero
    np.testing.assert_array_equal(w.start_s, np.arange(20.0))


def test_nan_window_dropped_flat_channel_absent_amplitude_limit():
    rec = make_recording()
    rec.data[0, 450:460] = np.nan  # window 2 of Fp1
    rec.data[2] = 0.0  # Cz flat throughout
    rec.data[3, 1000] = 500e-6  # a spike in window 5 of O1
    w = extract_windows(rec, TOPO, PreprocessConfig(max_amplitude_uv=200))
    assert w.absent_channels == {"Cz": "flat signal in most windows"}
    assert not w.present[:, TOPO.index("CZ")].any()
    assert w.dropped == {"non-finite samples": 1, "amplitude above limit": 1}
    assert 2.0 not in w.start_s and 5.0 not in w.start_s and len(w) == 18
    assert np.all(np.isfinite(w.features))


def test_all_channels_bad_and_too_short_are_user_errors():
    rec = make_recording()
    rec.data[:] = 0.0
    with pytest.raises(UserInputError, match="every mapped channel is bad"):
        extract_windows(rec, TOPO)
    with pytest.raises(UserInputError, match="shorter than one 1 s window"):
        extract_windows(make_recording(seconds=0.5), TOPO)


def test_labels_from_annotation_spans():
    spans = [Annotation(0.0, 4.5, "T0"), Annotation(4.5, 4.0, "T1"), Annotation(8.5, 4.0, "T0")]
    labels, ok, reasons = window_labels(
        np.arange(14.0), 1.0, annotations=spans, events={"T0": "rest", "T1": "move"}
    )
    assert labels[:4] == ["rest"] * 4 and labels[5:8] == ["move"] * 3
    assert not ok[4] and reasons[4] == "straddles labels"
    assert not ok[8] and reasons[8] == "straddles labels"
    assert labels[9:12] == ["rest"] * 3
    assert not ok[12] and reasons[12] == "outside labelled spans"  # 12-13 leaves the last span


def test_events_and_manifest_label_are_exclusive():
    with pytest.raises(ValueError, match="either one label"):
        extract_windows(make_recording(), TOPO, label="rest", events={"T0": "rest"})


def test_lds_never_crosses_a_label_change():
    rec = make_recording(seconds=20)
    rec.annotations = [Annotation(0, 10, "A"), Annotation(10, 10, "B")]
    rec.data[:, 2000:] *= 100  # a big jump exactly at the label change
    smooth = extract_windows(rec, TOPO, PreprocessConfig(lds=True), events={"A": "a", "B": "b"})
    plain = extract_windows(rec, TOPO, events={"A": "a", "B": "b"})
    node = TOPO.index("FP1")
    # before the change the smoothed series stays at the "a" level: nothing leaked from "b"
    assert smooth.features[9, node, 2] < plain.features[10:, node, 2].min() - 2
    assert np.std(smooth.features[:10, node, 2]) < np.std(plain.features[:10, node, 2])


def test_lds_smooth_runs_are_independent():
    series = np.concatenate([np.zeros(10), np.full(10, 5.0)])[:, None] + np.random.default_rng(
        0
    ).normal(0, 0.1, (20, 1))
    out = lds_smooth(series, segments=np.repeat([0, 1], 10))
    np.testing.assert_allclose(out[:10], lds_smooth(series[:10]))
    assert out[9, 0] < 1.0


def test_average_reference_and_resample():
    rec = make_recording()
    w = extract_windows(rec, TOPO, PreprocessConfig(reference="average", resample=100.0))
    referenced = rec.data[:4] - rec.data[:4].mean(0)
    from scipy.signal import resample_poly

    expected = differential_entropy(resample_poly(referenced, 1, 2, axis=1), 100.0)
    np.testing.assert_allclose(w.features[:, TOPO.index("O1")], expected[:, 3], rtol=1e-5)
