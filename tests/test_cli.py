"""The ``mmm-eeg`` command on the real files."""

import json

import pytest
import typer
from typer.testing import CliRunner

from mmm_eeg.cli import app

runner = CliRunner()


def _json(args):
    result = runner.invoke(app, ["montage", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_montage_json_eegmat(eegmat_file):
    out = _json([str(eegmat_file)])
    assert sum(out["present"]) == 19
    assert [e["name"] for e in out["excluded"]] == ["EEG A2-A1", "ECG ECG"]
    t3 = next(c for c in out["channels"] if c["name"] == "EEG T3")
    assert (t3["node"], t3["region"], t3["method"]) == ("T7", 6, "alias")


def test_montage_json_eegmmidb(eegmmidb_file):
    out = _json([str(eegmmidb_file)])
    assert len(out["channels"]) == 64 and sum(out["present"]) == 59
    assert sum(c["node"] is None for c in out["channels"]) == 5


def test_montage_json_muse(muse_file):
    out = _json([str(muse_file)])
    assert {c["name"]: c["node"] for c in out["channels"]} == {
        "TP9": "TP7", "AF7": "FP1", "AF8": "FP2", "TP10": "TP8"
    }  # fmt: skip
    assert all(0 < c["distance_mm"] < 40 for c in out["channels"])


def test_montage_table_and_plot(tmp_path, eegmat_file):
    plot = tmp_path / "sub" / "montage.png"
    result = runner.invoke(app, ["montage", str(eegmat_file), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "19 of 62 nodes present" in result.output and "reference derivation" in result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in plot.parent.iterdir()] == ["montage.png"]  # no temporary left


@pytest.mark.parametrize(
    ("source", "needle"),
    [("Cz,Foo,Bar", "'Foo', 'Bar'"), ("missing.edf", "missing.edf: no such file")],
)
def test_user_errors_exit_2_without_traceback(source, needle):
    result = runner.invoke(app, ["montage", source])
    assert result.exit_code == 2
    assert needle in result.output
    assert "Traceback" not in result.output


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"this is not an EDF file")
    result = runner.invoke(app, ["montage", str(bad)])
    assert result.exit_code == 2
    assert "broken.edf: 23 bytes, shorter than an EDF header" in result.output


def test_bad_option_value():
    result = runner.invoke(app, ["montage", "Cz", "--bipolar", "sum"])
    output = " ".join(result.output.replace("│", " ").split())  # the error box wraps lines
    assert result.exit_code == 2 and "Invalid value for '--bipolar'" in output
    assert "'sum' is not one of 'exclude', 'midpoint', 'raise'" in output


def test_library_errors_name_the_flag():
    result = runner.invoke(app, ["montage", "Cz,XX1"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "on_unknown='drop'" in result.output
    assert "(command-line option --on-unknown)" in result.output


def test_training_options_are_the_config_fields():
    from dataclasses import fields

    from mmm_eeg.train.config import FinetuneConfig, PretrainConfig

    for command, cls in (("finetune", FinetuneConfig), ("pretrain", PretrainConfig)):
        click_command = typer.main.get_command(app).commands[command]
        flags = {o for p in click_command.params for o in p.opts}
        for f in fields(cls):
            assert f"--{f.name.replace('_', '-')}" in flags, (command, f.name)


def test_names_and_drop():
    out = _json(["Cz,Foo", "--on-unknown", "drop"])
    assert out["channels"][1] | {} == {
        "name": "Foo", "node": None, "region": None, "method": None,
        "distance_mm": None, "reason": "unknown name with no position",
    }  # fmt: skip


def test_options_reach_the_config(monkeypatch, tmp_path):
    import mmm_eeg.train.finetune as finetune_module

    seen = {}

    def fake_finetune(corpus, out, config, resume):
        seen["config"] = config
        return {"folds": [], "balanced_accuracy": {"mean": 0.5, "std": 0.0}}

    monkeypatch.setattr(finetune_module, "finetune", fake_finetune)
    (tmp_path / "base.yaml").write_text("lr: 0.01\nepochs: 3\n")
    result = runner.invoke(
        app,
        ["finetune", "corpus", "--out", str(tmp_path / "res"), "--config",
         str(tmp_path / "base.yaml"), "--epochs", "7", "--layer-decay", "0.5",
         "--test-subjects", "s1, s2", "--protocol", "holdout", "--train-encoder"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert (config.lr, config.epochs, config.layer_decay) == (0.01, 7, 0.5)  # file, then flags
    assert config.test_subjects == ["s1", "s2"] and config.protocol == "holdout"
    assert config.freeze_encoder is False and config.batch_size == 256  # a default
    bad = runner.invoke(app, ["finetune", "corpus", "--out", "x", "--layer-decay", "2"])
    assert bad.exit_code == 2 and "'layer_decay' parameter: 2.0; it must be in (0, 1]" in bad.output


def test_no_eeg_files_says_why_each_input_was_skipped(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("not EEG")
    (tmp_path / "empty").mkdir()
    result = runner.invoke(
        app, ["preprocess", str(tmp_path / "notes"), str(tmp_path / "empty"), "--out", "x"]
    )
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "No EEG files found in the inputs" in output
    assert "notes: no file with an EEG extension" in output and "found only .txt" in output
    assert "empty: no file with an EEG extension" in output and "the folder is empty" in output


def test_messages_keep_their_brackets():
    """Messages are printed as they are: rich markup would eat "[...]" (a file name, a pip
    extra such as mmm-eeg[onnx])."""
    result = runner.invoke(app, ["montage", "Cz,Pz", "--montage", "cap[easycap].elc"])
    assert result.exit_code == 2 and "'cap[easycap].elc'" in result.output


def test_hardware_this_machine_lacks_is_a_clear_error(eeg_data, tmp_path):
    """--accelerator gpu without a GPU: which options, what this machine has, what to pass;
    no Lightning traceback."""
    import torch

    from mmm_eeg.corpus.build import build_corpus
    from mmm_eeg.io.sources import discover_sources

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")  # CI's has none
    sources, _ = discover_sources([eeg_data / "eegmat" / "Subject00_1.edf"])
    build_corpus(sources, tmp_path / "corpus")
    result = runner.invoke(
        app, ["pretrain", str(tmp_path / "corpus"), "--out", str(tmp_path / "run"),
              "--accelerator", "gpu", "--batch-size", "16", "--epochs", "1"],
    )  # fmt: skip
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in output
    assert "Lightning cannot train with accelerator='gpu'" in output
    assert "0 CUDA GPUs" in output and "Pass accelerator='cpu'" in output
    assert "(command-line option --accelerator)" in output
