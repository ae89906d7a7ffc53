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
    classifier = MMMClassifier(MMMEncoder(dim=32, depth=2, heads=4), 2, label_names=["a", "r"])
    classifier.feature_spec = FeatureSpec(normalize="subject")
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
