"""Damaged inputs made from the real files: one clear error each, and the batch goes on."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mmm_eeg import UserInputError
from mmm_eeg.cli import app
from mmm_eeg.corpus.build import build_corpus
from mmm_eeg.io.readers import read_recording
from mmm_eeg.io.sources import discover_sources


@pytest.fixture()
def edf_bytes(eegmat_file):
    return eegmat_file.read_bytes()


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_crlf_transfer_is_detected(tmp_path, edf_bytes):
    damaged = edf_bytes.replace(b"\n", b"\r\n")
    assert len(damaged) > len(edf_bytes)  # the real file holds LF bytes in its samples
    path = _write(tmp_path, "crlf.edf", damaged)
    with pytest.raises(UserInputError, match=r"crlf\.edf: .*longer than its header says.*CRLF"):
        read_recording(path)


def test_truncated_mid_record(tmp_path, edf_bytes):
    path = _write(tmp_path, "cut.edf", edf_bytes[: len(edf_bytes) // 2 + 7])
    with pytest.raises(UserInputError, match=r"cut\.edf: .*shorter than its header says"):
        read_recording(path)


def test_header_announces_more_records(tmp_path, edf_bytes):
    header = bytearray(edf_bytes)
    n = int(header[236:244].decode().strip())
    header[236:244] = f"{n + 10:<8d}".encode()
    path = _write(tmp_path, "more.edf", bytes(header))
    with pytest.raises(UserInputError, match=rf"announces .* \({n + 10} records"):
        read_recording(path)


def test_header_with_a_bad_field(tmp_path, edf_bytes):
    header = bytearray(edf_bytes)
    header[252:256] = b"ab  "
    path = _write(tmp_path, "field.edf", bytes(header))
    with pytest.raises(UserInputError, match="non-numeric field"):
        read_recording(path)


def test_cli_message_and_exit_code(tmp_path, edf_bytes):
    path = _write(tmp_path, "crlf.edf", edf_bytes.replace(b"\n", b"\r\n"))
    result = CliRunner().invoke(app, ["montage", str(path)])
    assert result.exit_code == 2
    assert "crlf.edf" in result.output and "binary mode" in result.output
    assert "Traceback" not in result.output
    verbose = CliRunner().invoke(app, ["--verbose", "montage", str(path)])
    assert verbose.exit_code == 2 and "Traceback" in verbose.output


def test_batch_skips_every_damaged_file_and_finishes(tmp_path, edf_bytes, eeg_data):
    folder = tmp_path / "batch"
    folder.mkdir()
    _write(folder, "good.edf", edf_bytes)
    _write(folder, "crlf.edf", edf_bytes.replace(b"\n", b"\r\n"))
    _write(folder, "cut.edf", edf_bytes[:5000])
    _write(folder, "empty.edf", b"")
    _write(folder, "text.edf", b"not EEG at all\n" * 30)
    (folder / "short.csv").write_text("timestamps,TP9,AF7,AF8,TP10\n1.0,1,2,3,4\n1.004,1,2,3,4\n")
    sources, _ = discover_sources([folder])
    report = build_corpus(sources, tmp_path / "corpus")
    assert report["recordings_added"] == 1
    reasons = {item["path"].rsplit("/", 1)[-1]: item["reason"] for item in report["skipped"]}
    assert set(reasons) == {"crlf.edf", "cut.edf", "empty.edf", "text.edf", "short.csv"}
    assert "shorter than one 1 s window" in reasons["short.csv"]
    saved = json.loads((tmp_path / "corpus" / "report.json").read_text())
    assert len(saved["skipped"]) == 5
    assert not list((tmp_path / "corpus").rglob("*.tmp*")) and not list(
        (tmp_path / "corpus").rglob("*.partial")
    )


def test_a_data_section_mne_cannot_read_is_a_clear_error(eegmat_file, monkeypatch):
    """The data are read after the header (not preloaded): a failure there names the file."""
    import mne

    def broken(self, *args, **kwargs):
        raise OSError("unexpected end of data")

    monkeypatch.setattr(mne.io.BaseRaw, "get_data", broken)
    with pytest.raises(UserInputError, match=f"{eegmat_file.name}: MNE-Python cannot read"):
        read_recording(eegmat_file)


def test_nan_inf_and_flat_channels_in_a_real_recording(eegmat_file):
    from mmm_eeg import UnifiedTopology
    from mmm_eeg.windows import extract_windows

    rec = read_recording(eegmat_file)
    rec.data[0, 1000:1100] = np.nan  # Fp1, window 2 (500 Hz)
    rec.data[1, 5000] = np.inf  # Fp2, window 10
    rec.data[2] = 0.0  # F3 flat
    w = extract_windows(rec, UnifiedTopology.default())
    assert w.absent_channels == {"EEG F3": "flat signal in most windows"}
    assert w.dropped == {"non-finite samples": 2} and len(w) == 60
    assert np.isfinite(w.features).all()


def test_duplicate_channel_names_keep_the_first(tmp_path, edf_bytes):
    from mmm_eeg import UnifiedTopology

    header = bytearray(edf_bytes)
    n = int(header[252:256].decode().strip())
    labels = [header[256 + 16 * i : 256 + 16 * (i + 1)].decode().strip() for i in range(n)]
    header[256 + 16 : 256 + 32] = f"{labels[0]:<16}".encode()  # channel 2 renamed like channel 1
    path = _write(tmp_path, "dup.edf", bytes(header))
    rec = read_recording(path)
    assert rec.ch_names[:2] == ["EEG Fp1-0", "EEG Fp1-1"]  # MNE's renaming
    mapping = UnifiedTopology.default().map_channels(rec.ch_names, types=rec.ch_types)
    first, second = mapping.channels[:2]
    assert first.node_name == "FP1" and first.method == "name"
    assert second.node is None and second.reason == "node FP1 is already fed by 'EEG Fp1-0'"
    assert "FP2" not in {c.node_name for c in mapping.channels}  # the renamed Fp2 is gone


def test_manifest_with_an_unknown_label(tmp_path, eeg_data):
    """With --labels, a row naming another label (a typo) is skipped and reported."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("Subject00_1.edf", "Subject00_2.edf", "Subject01_2.edf"):
        (data / name).write_bytes((eeg_data / "eegmat" / name).read_bytes())
    (data / "manifest.csv").write_text(
        "path,subject,label\nSubject00_1.edf,s0,rest\nSubject00_2.edf,s0,arithmetic\n"
        "Subject01_2.edf,s1,arithmetc\n"
    )
    out = tmp_path / "corpus"
    args = ["preprocess", str(data / "manifest.csv"), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--labels", "rest,arithmetic"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["recordings_added"] == 2
    [skipped] = report["skipped"]
    assert skipped["path"].endswith("manifest.csv, row 4")
    assert "label 'arithmetc' is not one of the allowed labels" in skipped["reason"]
    # without --labels every label is taken as given
    assert discover_sources([data / "manifest.csv"])[1] == []
    # an events map naming a label outside --labels is refused before any work
    result = CliRunner().invoke(app, [*args, "--events", "T1=left", "--labels", "rest"])
    assert result.exit_code == 2 and "not among the allowed labels" in result.output


def test_manifest_events_columns_with_an_unknown_label(eeg_data):
    sources, skipped = discover_sources(
        [eeg_data / "eegmmidb"], "T0,T1,T2", labels=["rest", "left_fist", "right_fist"]
    )
    # baseline runs (eyes_open, eyes_closed) and fists/feet runs carry other labels
    assert sources and skipped
    assert all("is not one of the allowed labels" in s.reason for s in skipped)
    assert all(set(s.events.values()) <= {"rest", "left_fist", "right_fist"} for s in sources)


def test_refused_inputs_leave_no_corpus_behind(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.edf").write_bytes(b"0" * 23)
    out = tmp_path / "corpus"
    result = CliRunner().invoke(app, ["preprocess", str(tmp_path / "in"), "--out", str(out)])
    assert result.exit_code == 2 and "No window could be extracted" in result.output
    assert "was not created" in " ".join(result.output.split())
    assert not out.exists()
