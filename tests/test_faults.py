"""Injected faults: a full disk while writing, preprocess killed inside and between commits."""

import hashlib
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import zarr

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


def _build_and_die(manifest, out, target, call):
    """In a forked child: build the corpus, SIGKILL ourselves at the ``call``-th ``target``."""
    import mmm_eeg.corpus.writer as writer
    from mmm_eeg.corpus.build import build_corpus
    from mmm_eeg.io.sources import discover_sources

    calls = 0

    def kill_at(original, before):
        def wrapped(*args, **kwargs):
            nonlocal calls
            calls += 1
            if before and calls == call:
                os.kill(os.getpid(), signal.SIGKILL)
            result = original(*args, **kwargs)
            if not before and calls == call:
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        return wrapped

    if target == "parquet":  # between the index part and the recordings part of a commit
        pd.DataFrame.to_parquet = kill_at(pd.DataFrame.to_parquet, before=True)
    else:  # just before / just after the corpus.json write that makes a commit visible
        writer.write_json = kill_at(writer.write_json, before=target == "before-meta")
    sources, _ = discover_sources([manifest])
    build_corpus(sources, out, commit_windows=300)
    os._exit(0)  # the kill never came: the parent sees exit code 0 and fails


@pytest.mark.parametrize(
    ("target", "call"),
    [("before-meta", 3), ("after-meta", 2), ("parquet", 4), ("before-meta", 6)],
)
def test_preprocess_killed_inside_a_commit(tmp_path, eeg_data, reference, target, call):
    manifest = eeg_data / "eegmat" / "manifest.csv"
    out = tmp_path / "corpus"
    child = multiprocessing.get_context("fork").Process(
        target=_build_and_die, args=(manifest, out, target, call)
    )
    child.start()
    child.join()
    assert child.exitcode == -signal.SIGKILL  # the kill landed, mid-run
    partial = checksums(out)  # what a reader sees right after the kill is consistent
    assert 0 < len(partial) < len(reference)
    assert all(reference[k] == v for k, v in partial.items())
    stored = Corpus(out).features.shape[0]
    on_disk = zarr.open_array(out / "data.zarr" / "features", mode="r").shape[0]
    if target == "after-meta":
        assert on_disk == stored  # killed between commits: nothing uncommitted
    else:
        assert on_disk > stored  # killed inside a commit: rows a reader must not see
    again = subprocess.run(_preprocess(manifest, out), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert checksums(out) == reference


def test_symlinks_planted_in_output_folders_are_refused(tmp_path, eeg_data):
    from mmm_eeg import UserInputError
    from mmm_eeg.corpus.build import build_corpus
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


def test_two_real_preprocess_jobs_on_one_corpus(tmp_path, eeg_data, reference):
    """Two processes start on the same output: one writes, the other waits (--wait), and the
    corpus ends complete and consistent: every recording once, identical to a clean build."""
    manifest = eeg_data / "eegmat" / "manifest.csv"
    out = tmp_path / "corpus"
    first = subprocess.Popen([*_preprocess(manifest, out), "--wait"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(0.5)
    second = subprocess.Popen([*_preprocess(manifest, out), "--wait"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    outputs = [p.communicate(timeout=600) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs
    waited = ["Waiting for host" in err for _, err in outputs]
    assert waited.count(True) == 1, outputs  # they overlapped, and one waited for the other
    assert checksums(out) == reference
