"""Injected faults: a full disk while writing, preprocess killed at random moments."""

import hashlib
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mmm_eeg.corpus import Corpus


def _preprocess(manifest, out, *extra):
    return [sys.executable, "-m", "mmm_eeg", "preprocess", str(manifest), "--out", str(out),
            "--commit-every", "300", *extra]  # fmt: skip


def checksums(path):
    """Per recording: number of windows and a hash of its features, present mask and labels."""
    corpus = Corpus(path)
    out = {}
    for _, rec in corpus.recordings.iterrows():
        rows = np.arange(rec["offset"], rec["offset"] + rec["n_windows"])
        digest = hashlib.sha256(corpus.features[rows].tobytes() + corpus.present[rows].tobytes())
        labels = corpus.index["label"].to_numpy()[rows]
        digest.update(",".join(map(str, labels)).encode())
        assert rec["recording"] not in out, "a recording stored twice"
        out[rec["recording"]] = (int(rec["n_windows"]), digest.hexdigest())
    assert len(corpus.index) == len(corpus) == sum(n for n, _ in out.values())
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory, eeg_data):
    out = tmp_path_factory.mktemp("faults") / "clean"
    subprocess.run(_preprocess(eeg_data / "eegmat" / "manifest.csv", out), check=True,
                   capture_output=True)  # fmt: skip
    return checksums(out)


def _limit_file_size(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_gives_a_clear_error_and_a_rerun_completes(tmp_path, eeg_data, reference):
    manifest = eeg_data / "eegmat" / "manifest.csv"
    out = tmp_path / "corpus"
    run = subprocess.run(_preprocess(manifest, out), capture_output=True, text=True,
                         preexec_fn=_limit_file_size(600_000))  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "no space left while writing" in run.stderr and "rerun the same command" in run.stderr
    assert "Traceback" not in run.stderr
    partial = checksums(out)  # readable, consistent, a subset of the reference
    assert 0 < len(partial) < len(reference)
    assert all(reference[k] == v for k, v in partial.items())
    assert not list(out.rglob("*.partial")) and not list(out.rglob(".*.tmp*"))
    again = subprocess.run(_preprocess(manifest, out), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert checksums(out) == reference


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_preprocess_killed_at_random_moments(tmp_path, eeg_data, reference, seed):
    manifest = eeg_data / "eegmat" / "manifest.csv"
    out = tmp_path / "corpus"
    delay = np.random.default_rng(seed).uniform(1.5, 3.5)
    proc = subprocess.Popen(_preprocess(manifest, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if (out / "corpus.json").exists():  # what a reader sees right after the kill is consistent
        partial = checksums(out)
        assert all(reference[k] == v for k, v in partial.items())
    again = subprocess.run(_preprocess(manifest, out), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert checksums(out) == reference


def test_symlinks_planted_in_output_folders_are_refused(tmp_path, eeg_data):
    from mmm_eeg import UserInputError
    from mmm_eeg.build import build_corpus
    from mmm_eeg.io.sources import discover_sources
    from mmm_eeg.train.config import PretrainConfig
    from mmm_eeg.train.pretrain import pretrain

    outside = tmp_path / "outside"
    outside.mkdir()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "index").symlink_to(outside)
    sources, _ = discover_sources([eeg_data / "eegmat" / "Subject00_1.edf"])
    with pytest.raises(UserInputError, match=r"index is a symbolic link to .*outside"):
        build_corpus(sources, corpus)
    (corpus / "index").unlink()
    build_corpus(sources, corpus)  # without the link it works
    run = tmp_path / "run"
    run.mkdir()
    (run / "plots").symlink_to(outside)
    with pytest.raises(UserInputError, match="Refusing to write into"):
        pretrain(corpus, run, PretrainConfig(epochs=1, batch_size=8, dim=8, depth=1, heads=2))
    assert list(outside.iterdir()) == []
    inside = run / "inside"
    inside.mkdir()
    (run / "alias").symlink_to(inside)  # a link that stays inside the folder is fine
    from mmm_eeg.atomic import check_output_folder

    (run / "plots").unlink()
    assert check_output_folder(run) == run
