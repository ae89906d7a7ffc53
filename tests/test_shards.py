"""Sharded preprocessing (``--shard I/N``) and ``mmm-eeg corpus merge`` on the real recordings."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mmm_eeg import UserInputError
from mmm_eeg.cli import app
from mmm_eeg.corpus import Corpus, CorpusWriter
from mmm_eeg.corpus.batches import iter_batches
from mmm_eeg.corpus.merge import merge_corpora
from mmm_eeg.io.sources import discover_sources, shard_sources
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.windows import PreprocessConfig

runner = CliRunner()


def _inputs(eeg_data):
    """Seven real files from the three datasets (three montages, three sampling rates)."""
    files = [eeg_data / "eegmat" / f"Subject0{s}_{r}.edf" for s in (0, 1) for r in (1, 2)]
    files += [eeg_data / "eegmmidb" / "S001" / f"S001R0{r}.edf" for r in (1, 2)]
    files += sorted((eeg_data / "muse_n170").rglob("*.csv"))[:1]
    return [str(f) for f in files]


@pytest.fixture(scope="module")
def built(tmp_path_factory, eeg_data):
    """The same inputs preprocessed once, and as 3 shards merged."""
    root = tmp_path_factory.mktemp("shards")
    inputs = _inputs(eeg_data)
    result = runner.invoke(app, ["preprocess", *inputs, "--out", str(root / "whole")])
    assert result.exit_code == 0, result.output
    for i in range(3):
        part = ["--out", str(root / f"part{i}"), "--shard", f"{i}/3"]
        result = runner.invoke(app, ["preprocess", *reversed(inputs), *part])
        assert result.exit_code == 0, result.output
    parts = [str(root / f"part{i}") for i in range(3)]
    result = runner.invoke(app, ["corpus", "merge", *parts, "--out", str(root / "merged")])
    assert result.exit_code == 0, result.output
    return root


def test_shards_are_disjoint_cover_everything_and_ignore_input_order(eeg_data):
    sources, _ = discover_sources(_inputs(eeg_data))
    slices = [shard_sources(sources, f"{i}/3") for i in range(3)]
    ids = [s.recording_id for part in slices for s in part]
    assert sorted(ids) == sorted(s.recording_id for s in sources) and len(set(ids)) == len(ids)
    assert all(len(part) in (2, 3) for part in slices)
    again = shard_sources(list(reversed(sources)), "1/3")
    assert [s.recording_id for s in again] == [s.recording_id for s in slices[1]]
    for bad in ("3/3", "-1/3", "1", "a/b", "0/0"):
        with pytest.raises(UserInputError, match="shard"):
            shard_sources(sources, bad)


def test_merged_corpus_has_identical_content(built):
    whole, merged = Corpus(built / "whole"), Corpus(built / "merged")
    assert len(merged) == len(whole) > 0
    assert sorted(merged.recordings["recording"]) == sorted(whole.recordings["recording"])
    assert len(merged.meta["stores"]) == 3
    stats = [c for c in whole.recordings.columns if c.startswith(("mean_", "std_"))]
    for recording in whole.recordings["recording"]:
        a = np.flatnonzero(whole.index["recording"].to_numpy() == recording)
        b = np.flatnonzero(merged.index["recording"].to_numpy() == recording)
        assert len(a) == len(b) > 0
        np.testing.assert_array_equal(whole.features[a], merged.features[b])
        np.testing.assert_array_equal(whole.present[a], merged.present[b])
        for column in ("subject", "label", "start_s"):
            assert whole.index[column].iloc[a].tolist() == merged.index[column].iloc[b].tolist()
        row_a = whole.recordings.set_index("recording").loc[recording]
        row_b = merged.recordings.set_index("recording").loc[recording]
        np.testing.assert_allclose(row_a[stats].astype(float), row_b[stats].astype(float))
        # each recording's offset points at its own windows in the merged corpus
        assert row_b["offset"] == b[0] and row_b["n_windows"] == len(b)
    for mode in ("recording", "subject"):
        x_whole, _ = whole.read(np.arange(len(whole)), mode)
        order = _matching_rows(whole, merged)
        x_merged, _ = merged.read(order, mode)
        np.testing.assert_allclose(x_whole, x_merged, atol=1e-5)


def _matching_rows(whole, merged):
    """For each window of ``whole``, its row in ``merged`` (by recording and start)."""
    key = merged.index["recording"].astype(str) + "@" + merged.index["start_s"].astype(str)
    where = {k: i for i, k in enumerate(key)}
    wanted = whole.index["recording"].astype(str) + "@" + whole.index["start_s"].astype(str)
    return np.array([where[k] for k in wanted])


def test_merge_links_the_feature_chunks_instead_of_copying(built):
    part = built / "part0" / "data.zarr" / "features" / "c" / "0" / "0" / "0"
    linked = built / "merged" / "stores" / "part-00000.zarr" / "features" / "c" / "0" / "0" / "0"
    assert part.stat().st_ino == linked.stat().st_ino and part.stat().st_nlink >= 2


def test_batches_span_every_store_once(built):
    merged = Corpus(built / "merged")
    rows = np.arange(5, len(merged), 3)
    seen = np.concatenate([r for _, _, r in iter_batches(merged, 64, rows, seed=1)])
    np.testing.assert_array_equal(np.sort(seen), rows)
    x, _, r = next(iter_batches(merged, 10_000, shuffle=False))
    expected, _ = merged.read(r)
    np.testing.assert_array_equal(x, expected)


def test_merge_refuses_overlaps_other_settings_and_extension(built, tmp_path):
    with pytest.raises(UserInputError, match="in both"):
        merge_corpora([built / "part0", built / "whole"], tmp_path / "overlap")
    other = tmp_path / "other"
    CorpusWriter(other, UnifiedTopology.default(), PreprocessConfig(window=2.0)).close()
    with pytest.raises(UserInputError, match="other preprocessing"):
        merge_corpora([built / "part0", other], tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))
    with pytest.raises(UserInputError, match="read-only"):
        CorpusWriter(built / "merged", UnifiedTopology.default(), PreprocessConfig())
    result = runner.invoke(
        app, ["corpus", "merge", str(built / "part0"), "--out", str(built / "merged")]
    )
    assert result.exit_code == 2 and "already exists" in result.output


def test_merged_corpora_merge_again_and_copy_mode(built, tmp_path):
    twice = merge_corpora([built / "merged"], tmp_path / "twice", copy=True)
    assert twice["linked_bytes"] == 0 and twice["copied_bytes"] > 0
    a, b = Corpus(built / "merged"), Corpus(tmp_path / "twice")
    np.testing.assert_array_equal(a.features[:], b.features[:])
    assert json.loads((tmp_path / "twice" / "corpus.json").read_text())["n_windows"] == len(a)


@pytest.mark.parametrize("workers", [0, 2])
def test_dataloader_workers_read_each_window_once_and_resume(built, workers):
    import torch

    from mmm_eeg.train.data import CorpusBatches

    merged = Corpus(built / "merged")
    rows = np.arange(len(merged))

    def epoch(skip=0):
        batches = CorpusBatches(merged, rows, 50, seed=3, workers=workers)
        batches.set_epoch(1)
        batches.skip = skip
        loader = torch.utils.data.DataLoader(
            batches, batch_size=None, num_workers=workers,
            multiprocessing_context="spawn" if workers else None,
        )  # fmt: skip
        return len(batches), [b[0].numpy() for b in loader]

    n_batches, full = epoch()
    assert len(full) == n_batches >= len(rows) // 50 - workers
    seen = np.concatenate(full).reshape(-1, *merged.features.shape[1:])
    assert len(seen) == n_batches * 50
    # every batch row is a distinct window: no window read twice in one epoch
    assert len(np.unique(seen.reshape(len(seen), -1), axis=0)) == len(seen)
    _, resumed = epoch(skip=5)
    assert len(resumed) == n_batches - 5
    for a, b in zip(full[5:], resumed, strict=True):
        np.testing.assert_array_equal(a, b)
