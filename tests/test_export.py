"""ONNX export: onnxruntime equals PyTorch on real windows; the input contract travels along."""

import json
import subprocess
import sys

import mne
import numpy as np
import onnx
import onnxruntime as ort
import torch

from mmm_eeg.inference import MMMModel, load_model
from mmm_eeg.model import MMMClassifier, MMMEncoder
from mmm_eeg.spec import FeatureSpec


def test_onnx_classifier_and_encoder_equal_pytorch_on_real_windows(eeg_data, tmp_path):
    raw = mne.io.read_raw_edf(
        eeg_data / "eegmat" / "Subject00_2.edf", preload=True, verbose="error"
    )
    torch.manual_seed(0)
    classifier = MMMClassifier(
        MMMEncoder(dim=32, depth=2, heads=4), 2, label_names=["a", "r"],
        feature_spec=FeatureSpec(normalize="subject"),
    )  # fmt: skip
    classifier.save_pretrained(tmp_path / "clf")
    command = [sys.executable, "-m", "mmm_eeg", "export", str(tmp_path / "clf"), "--onnx",
               str(tmp_path / "clf.onnx")]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    model = load_model(tmp_path / "clf")
    x, present, _ = model.features(raw)
    present[:10, :5] = False  # some windows lack some nodes: the absent path in the graph
    session = ort.InferenceSession(str(tmp_path / "clf.onnx"))
    (logits,) = session.run(None, {"x": x, "present": present})
    with torch.no_grad():
        expected = classifier.eval()(torch.from_numpy(x), torch.from_numpy(present)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "clf.onnx")).metadata_props}
    assert json.loads(meta["classes"]) == ["a", "r"] and meta["output"] == "logits"
    assert FeatureSpec.from_dict(json.loads(meta["feature_spec"])) == classifier.feature_spec

    encoder = MMMModel(MMMEncoder(dim=16, depth=1, heads=2), FeatureSpec())
    from mmm_eeg.export import export_onnx

    export_onnx(encoder, tmp_path / "enc.onnx")
    (tokens,) = ort.InferenceSession(str(tmp_path / "enc.onnx")).run(
        None, {"x": x[:7], "present": present[:7]}
    )
    with torch.no_grad():
        reference = encoder.encoder.unified(torch.from_numpy(x[:7]), torch.from_numpy(present[:7]))
    np.testing.assert_allclose(tokens, reference.numpy(), atol=1e-5)


def test_onnx_for_a_headset_montage_equals_the_full_network(muse_file, tmp_path):
    """``--channels``: the graph of the fixed montage (absent nodes out of the sequence) gives
    the full network's logits on real Muse windows, from the mapped channels alone."""
    from mmm_eeg.io.readers import read_muse_csv

    recording = read_muse_csv(muse_file)
    torch.manual_seed(0)
    classifier = MMMClassifier(
        MMMEncoder(dim=32, depth=2, heads=4), 2, label_names=["a", "r"],
        feature_spec=FeatureSpec(normalize="recording"),
    )  # fmt: skip
    classifier.save_pretrained(tmp_path / "clf")
    channels = ",".join(recording.ch_names)  # TP9, AF7, AF8, TP10 and the unmapped AUX
    command = [sys.executable, "-m", "mmm_eeg", "export", str(tmp_path / "clf"), "--onnx",
               str(tmp_path / "muse.onnx"), "--channels", channels]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    model = load_model(tmp_path / "clf")
    x, present, _ = model.features(recording)
    nodes = np.flatnonzero(present[0])
    assert len(nodes) == 4 and present.all(axis=0)[nodes].all()
    session = ort.InferenceSession(str(tmp_path / "muse.onnx"))
    assert [i.name for i in session.get_inputs()] == ["x"]
    (logits,) = session.run(None, {"x": x[:, nodes]})
    with torch.no_grad():
        expected = classifier.eval()(torch.from_numpy(x), torch.from_numpy(present)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-5)
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "muse.onnx")).metadata_props}
    topology = model.encoder.topology
    assert json.loads(meta["input_nodes"]) == [topology.nodes[i] for i in nodes]
    mapping = topology.map_channels(recording.ch_names, on_unknown="drop")
    assert json.loads(meta["input_channels"]) == [
        recording.ch_names[mapping.source[i]] for i in nodes
    ]
    assert sorted(json.loads(meta["input_channels"])) == ["AF7", "AF8", "TP10", "TP9"]

    # An encoder that fills absent nodes with noise has no fixed-montage form: a clear error.
    noisy = MMMEncoder(dim=16, depth=1, heads=2, absent="noise", feature_spec=FeatureSpec())
    noisy.save_pretrained(tmp_path / "noisy")
    command[4], command[6] = str(tmp_path / "noisy"), str(tmp_path / "noisy.onnx")
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode != 0 and "export it without channels" in run.stderr + run.stdout
    assert "Traceback" not in run.stderr and not (tmp_path / "noisy.onnx").exists()
