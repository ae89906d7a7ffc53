"""The feature corpus on disk: append-only zarr v3 arrays plus Parquet tables.

Layout of a corpus folder::

    corpus.json             format, version, topology, preprocessing, committed window count,
                            the list of committed table parts (written last, atomically)
    data.zarr/features      (windows, n_nodes, n_bands) float32 or float16, chunked on windows
    data.zarr/present       (windows, n_nodes) bool
    index/part-NNNNN.parquet       one row per window: dataset, recording, subject, session,
                                   label, start_s, plus the manifest's other columns
    recordings/part-NNNNN.parquet  one row per recording: offset, n_windows, per-band mean and
                                   std (normalisation statistics), dropped windows, absent channels
    report.json             the last preprocess run's summary

Writes are commits: the arrays grow first, then the table parts are written (atomically), then
``corpus.json`` records the new committed length (atomically). A reader trusts only
``corpus.json``: rows beyond the committed length, or parts it does not list, are leftovers of a
killed writer, never read, and removed when a writer reopens the corpus. zarr's local store
writes every chunk through a temporary file and a rename, so a chunk is never half-written.

Normalisation is applied on read (:mod:`mmm_eeg.normalization`: per recording, per subject, or
none; per band over present nodes, or per node and band), never baked into the stored features.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from mmm_eeg.atomic import atomic_path
from mmm_eeg.errors import UserInputError
from mmm_eeg.normalization import Normalizer, node_moments, standardize
from mmm_eeg.preprocess import PreprocessConfig, WindowSet
from mmm_eeg.topology import UnifiedTopology

logger = logging.getLogger(__name__)

FORMAT = "mmm-eeg-corpus"
VERSION = 1
INDEX_COLUMNS = ("dataset", "recording", "subject", "session", "label", "start_s")
Normalize = Literal["recording", "subject", "none", "recording-node", "subject-node"]


class CorpusFormatError(UserInputError):
    """A corpus folder that is missing, damaged or from a newer version of mmm-eeg."""


def _read_meta(path: Path) -> dict[str, Any]:
    meta_path = path / "corpus.json"
    if not meta_path.is_file():
        raise CorpusFormatError(
            f"{path} is not an mmm-eeg corpus (no corpus.json). Build one with "
            "`mmm-eeg preprocess INPUT... --out CORPUS`."
        )
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise CorpusFormatError(f"{meta_path} is damaged ({err}); rebuild the corpus.") from err
    if meta.get("format") != FORMAT:
        raise CorpusFormatError(f"{meta_path} is not an mmm-eeg corpus description.")
    if meta.get("version", 0) > VERSION:
        raise CorpusFormatError(
            f"{path} was written by a newer mmm-eeg (corpus format {meta['version']}, this "
            f"version reads up to {VERSION}). Upgrade mmm-eeg."
        )
    return meta


def corpus_settings(meta: Mapping[str, Any]) -> dict[str, Any]:
    """What is fixed for a corpus (topology, preprocessing, dtype), as stored in ``meta``.

    Preprocessing gets the defaults of fields added since the corpus was written, so an older
    corpus compares equal to the same settings today.
    """
    return {
        "topology": meta.get("topology"),
        "preprocessing": PreprocessConfig.from_dict(meta["preprocessing"]).to_dict(),
        "dtype": meta.get("dtype"),
    }


def stores(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The zarr stores of a corpus and the committed windows of each, in row order."""
    return meta.get("stores") or [{"path": "data.zarr", "n_windows": meta["n_windows"]}]


def _write_json(path: Path, value: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, default=str))


class CorpusWriter:
    """Append recordings' windows to a corpus; resumable.

    Parameters
    ----------
    path : str | path-like
        Corpus folder (created if needed).
    topology : UnifiedTopology
        The topology the windows are on.
    config : PreprocessConfig
        How the windows were made; a corpus is never extended with other settings.
    dtype : {"float32", "float16"}
        Storage type of the features.
    chunk_windows : int
        Windows per zarr chunk.
    commit_windows : int
        Commit once this many windows are pending (and always on :meth:`close`).
    """

    def __init__(
        self,
        path: str | Path,
        topology: UnifiedTopology,
        config: PreprocessConfig,
        dtype: Literal["float32", "float16"] = "float32",
        chunk_windows: int = 8192,
        commit_windows: int = 65536,
    ) -> None:
        import zarr

        if dtype not in ("float32", "float16"):
            raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}.")
        self.path = Path(path)
        self.commit_windows = commit_windows
        self._pending: list[tuple[str, dict[str, Any], WindowSet]] = []
        settings = {
            "topology": topology.to_config(),
            "preprocessing": config.to_dict(),
            "dtype": dtype,
        }
        if (self.path / "corpus.json").exists():
            self.meta = _read_meta(self.path)
            if "stores" in self.meta:
                raise UserInputError(
                    f"{self.path} is a merged corpus, which is read-only; preprocess the new "
                    "recordings into a corpus of their own and merge again (mmm-eeg corpus merge)."
                )
            stored = corpus_settings(self.meta)
            different = [k for k, v in settings.items() if stored[k] != v]
            if different:
                raise UserInputError(
                    f"{self.path} was built with other {', '.join(different)}; write to a new "
                    "corpus folder (settings cannot change within one corpus)."
                )
            group = zarr.open_group(self.path / "data.zarr", mode="r+")
            self.features, self.present = group["features"], group["present"]
            self._discard_uncommitted()
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            group = zarr.open_group(self.path / "data.zarr", mode="w", zarr_format=3)
            n_nodes, n_bands = topology.n_nodes, len(config.bands)
            self.features = group.create_array(
                "features", shape=(0, n_nodes, n_bands), chunks=(chunk_windows, n_nodes, n_bands),
                dtype=dtype,
            )  # fmt: skip
            self.present = group.create_array(
                "present", shape=(0, n_nodes), chunks=(chunk_windows, n_nodes), dtype=bool
            )
            self.meta = {
                "format": FORMAT, "version": VERSION, **settings,
                "n_windows": 0, "index_parts": [], "recording_parts": [],
            }  # fmt: skip
            _write_json(self.path / "corpus.json", self.meta)
        self.done: set[str] = self._committed_recordings()

    def _committed_recordings(self) -> set[str]:
        ids: set[str] = set()
        for part in self.meta["recording_parts"]:
            ids.update(pd.read_parquet(self.path / part, columns=["recording"])["recording"])
        return ids

    def _discard_uncommitted(self) -> None:
        """Drop what a killed writer left beyond the last commit."""
        n = self.meta["n_windows"]
        if self.features.shape[0] != n:
            logger.info("Discarding %d uncommitted windows", self.features.shape[0] - n)
            self.features.resize((n, *self.features.shape[1:]))
            self.present.resize((n, *self.present.shape[1:]))
        listed = set(self.meta["index_parts"]) | set(self.meta["recording_parts"])
        for folder in ("index", "recordings"):
            for part in (self.path / folder).glob("*"):
                if f"{folder}/{part.name}" not in listed:
                    part.unlink()
        for leftover in (self.path / "data.zarr").rglob("*.partial"):
            leftover.unlink()

    def add(self, recording_id: str, meta: Mapping[str, Any], windows: WindowSet) -> None:
        """Queue one recording's windows (committed in batches; see ``commit_windows``)."""
        if recording_id in self.done or any(r == recording_id for r, _, _ in self._pending):
            raise ValueError(f"Recording {recording_id!r} is already in the corpus.")
        self._pending.append((recording_id, dict(meta), windows))
        if sum(len(w) for _, _, w in self._pending) >= self.commit_windows:
            self.commit()

    def commit(self) -> None:
        """Write pending recordings and make them visible to readers."""
        if not self._pending:
            return
        n = self.meta["n_windows"]
        sets = [w for _, _, w in self._pending]
        features = np.concatenate([w.features for w in sets]).astype(self.features.dtype)
        present = np.concatenate([w.present for w in sets])
        total = n + len(features)
        self.features.resize((total, *self.features.shape[1:]))
        self.present.resize((total, *self.present.shape[1:]))
        if len(features):
            self.features[n:total] = features
            self.present[n:total] = present
        index_rows, recording_rows, offset = [], [], n
        bands = [b[0] for b in self.meta["preprocessing"]["bands"]]
        for recording_id, meta, w in self._pending:
            base = {
                "dataset": str(meta.get("dataset", "")),
                "recording": recording_id,
                "subject": str(meta.get("subject", "")),
                "session": str(meta.get("session", "")),
            }
            extra = {k: str(v) for k, v in meta.items() if k not in base and k != "label"}
            index_rows.append(
                pd.DataFrame(
                    {
                        **base,
                        "label": [None if x is None else str(x) for x in w.labels],
                        "start_s": w.start_s.astype(np.float64),
                        **extra,
                    }
                )
            )
            mean, std = _band_stats(w)
            recording_rows.append(
                {**base, **extra, "offset": offset, "n_windows": len(w),
                 **{f"mean_{b}": m for b, m in zip(bands, mean, strict=True)},
                 **{f"std_{b}": s for b, s in zip(bands, std, strict=True)},
                 "dropped": json.dumps(w.dropped), "absent_channels": json.dumps(w.absent_channels)}
            )  # fmt: skip
            offset += len(w)
        number = len(self.meta["recording_parts"])
        parts = {}
        for folder, frame in (
            ("index", pd.concat(index_rows, ignore_index=True)),
            ("recordings", pd.DataFrame(recording_rows)),
        ):
            name = f"{folder}/part-{number:05d}.parquet"
            with atomic_path(self.path / name) as tmp:
                frame.to_parquet(tmp, index=False)
            parts[folder] = name
        self.meta = {
            **self.meta,
            "n_windows": total,
            "index_parts": [*self.meta["index_parts"], parts["index"]],
            "recording_parts": [*self.meta["recording_parts"], parts["recordings"]],
        }
        _write_json(self.path / "corpus.json", self.meta)
        self.done.update(r for r, _, _ in self._pending)
        self._pending.clear()

    def close(self) -> None:
        """Commit what is pending."""
        self.commit()

    def __enter__(self) -> CorpusWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


def _band_stats(windows: WindowSet) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std over present nodes of all windows (0 and 1 when there is none)."""
    moments = node_moments(windows.features, windows.present)
    return Normalizer("recording", "band").statistics(*moments)


class CommittedArray:
    """Read-only view of the committed rows of one or more zarr arrays, stacked on axis 0.

    A corpus built in one run has one store; a merged corpus (:func:`merge_corpora`) stacks
    the stores of its parts, each limited to the windows its part committed.
    """

    def __init__(self, arrays: Sequence[Any], counts: Sequence[int]) -> None:
        self._arrays, self._counts = list(arrays), [int(n) for n in counts]
        self._starts = np.concatenate([[0], np.cumsum(self._counts)]).astype(np.int64)
        self._n = int(self._starts[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n, *self._arrays[0].shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._arrays[0].dtype)

    def __len__(self) -> int:
        return self._n

    def blocks(self) -> list[tuple[int, int]]:
        """``(start, stop)`` spans of the rows, one per stored chunk (the unit of decoding)."""
        spans = []
        for array, start, n in zip(self._arrays, self._starts, self._counts, strict=False):
            chunk = array.chunks[0]
            spans += [(int(start + a), int(start + min(a + chunk, n))) for a in range(0, n, chunk)]
        return spans

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(first, slice):
            rows = np.arange(*first.indices(self._n))
            if first.step in (None, 1):
                return self._read_span(int(rows[0]) if len(rows) else 0, len(rows), rest)
        else:
            rows = np.asarray(first)
            rows = np.where(rows < 0, rows + self._n, rows)
            if rows.size and (rows.min() < 0 or rows.max() >= self._n):
                raise IndexError(f"window index out of range for a corpus of {self._n} windows")
            if rows.ndim == 0:
                return self._read_rows(rows[None], rest)[0]
        return self._read_rows(rows, rest)

    def _read_span(self, start: int, length: int, rest: tuple) -> np.ndarray:
        parts = []
        for a, array, n in zip(self._starts, self._arrays, self._counts, strict=False):
            lo, hi = max(start, a), min(start + length, a + n)
            if lo < hi:
                parts.append(np.asarray(array[(slice(lo - a, hi - a), *rest)]))
        if not parts:
            return np.asarray(self._arrays[0][(slice(0, 0), *rest)])
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _read_rows(self, rows: np.ndarray, rest: tuple) -> np.ndarray:
        member = np.searchsorted(self._starts, rows, side="right") - 1
        if len(self._arrays) == 1 or (len(rows) and (member == member[0]).all()):
            m = int(member[0]) if len(rows) else 0
            local = rows - self._starts[m]
            return self._arrays[m].get_orthogonal_selection((local, *rest))
        out = None
        for m in np.unique(member):
            mine = np.flatnonzero(member == m)
            values = self._arrays[m].get_orthogonal_selection((rows[mine] - self._starts[m], *rest))
            if out is None:
                out = np.empty((len(rows), *values.shape[1:]), dtype=values.dtype)
            out[mine] = values
        return out


class Corpus:
    """A feature corpus on disk, read without loading it whole.

    Parameters
    ----------
    path : str | path-like
        Corpus folder written by ``mmm-eeg preprocess`` / :class:`CorpusWriter`.

    Attributes
    ----------
    features : CommittedArray, shape (n_windows, n_nodes, n_bands)
        Chunked, lazily read DE features (as stored: not normalised).
    present : CommittedArray of bool, shape (n_windows, n_nodes)
        Which nodes each window has.
    """

    def __init__(self, path: str | Path) -> None:
        import zarr

        self.path = Path(path)
        self.meta = _read_meta(self.path)
        self.topology = UnifiedTopology.from_config(self.meta["topology"])
        self.config = PreprocessConfig.from_dict(self.meta["preprocessing"])
        features, present, counts = [], [], []
        for store in stores(self.meta):
            try:
                group = zarr.open_group(self.path / store["path"], mode="r")
                features.append(group["features"])
                present.append(group["present"])
            except Exception as err:  # zarr raises several types for missing or damaged stores
                raise CorpusFormatError(
                    f"{self.path}: the {store['path']} store is damaged or missing ({err})."
                ) from err
            n = store["n_windows"]
            if features[-1].shape[0] < n or present[-1].shape[0] < n:
                raise CorpusFormatError(
                    f"{self.path}: corpus.json promises {n} windows in {store['path']} but it "
                    f"holds {min(features[-1].shape[0], present[-1].shape[0])}; the corpus is "
                    "damaged. Rebuild it."
                )
            counts.append(n)
        self.features = CommittedArray(features, counts)
        self.present = CommittedArray(present, counts)
        self._index: pd.DataFrame | None = None
        self._recordings: pd.DataFrame | None = None
        self._stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._node_cache: dict[str, dict[Any, tuple[np.ndarray, np.ndarray]]] = {}

    def __len__(self) -> int:
        return self.meta["n_windows"]

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers receive a pickled corpus: send no cached table (the index can be
        # the largest object in memory); a worker reads what it needs itself.
        return {**self.__dict__, "_index": None}

    def __repr__(self) -> str:
        return f"Corpus({str(self.path)!r}, windows={len(self)}, recordings={len(self.recordings)})"

    @property
    def bands(self) -> list[str]:
        """Band names."""
        return [b[0] for b in self.config.bands]

    def _read_parts(self, key: str) -> pd.DataFrame:
        frames = []
        for part in self.meta[key]:
            try:
                frames.append(pd.read_parquet(self.path / part))
            except Exception as err:  # pyarrow raises several types for damaged files
                raise CorpusFormatError(f"{self.path / part} is damaged ({err}).") from err
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def index(self) -> pd.DataFrame:
        """One row per window: dataset, recording, subject, session, label, start_s, extras."""
        if self._index is None:
            index = self._read_parts("index_parts")
            self._index = index if len(index) else pd.DataFrame(columns=list(INDEX_COLUMNS))
        return self._index

    @property
    def recordings(self) -> pd.DataFrame:
        """One row per recording: offset, n_windows, per-band mean/std, dropped, absent."""
        if self._recordings is None:
            self._recordings = self._read_parts("recording_parts")
        return self._recordings

    def normalization(
        self, mode: str | Normalizer = "recording", rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std for some windows: (len(rows), n_bands), or per node and band
        (len(rows), n_nodes, n_bands) for the ``*-node`` normalisations.

        ``mode`` is a :class:`~mmm_eeg.normalization.Normalizer` or its name. Per band, the
        statistics stored per recording at preprocessing are pooled (weighted by windows) over a
        subject's recordings; per node, a group's recordings are read once and its statistics kept.
        Statistics are kept per recording, so memory does not grow with the number of windows.
        """
        normalizer = Normalizer.parse(mode)
        rows = np.arange(len(self)) if rows is None else np.asarray(rows)
        recording = np.searchsorted(self._offsets, rows, side="right") - 1
        if normalizer.per == "node" and normalizer.by != "none":
            return self._node_stats(normalizer, recording)
        mean, std = self._recording_stats(normalizer.by)
        return mean[recording], std[recording]

    def _recording_stats(self, by: str) -> tuple[np.ndarray, np.ndarray]:
        if by in self._stats:
            return self._stats[by]
        rec = self.recordings
        b = len(self.bands)
        if by == "none":
            self._stats[by] = (np.zeros((len(rec), b)), np.ones((len(rec), b)))
            return self._stats[by]
        mean = rec[[f"mean_{x}" for x in self.bands]].to_numpy(dtype=np.float64, copy=True)
        std = rec[[f"std_{x}" for x in self.bands]].to_numpy(dtype=np.float64, copy=True)
        if by == "subject":
            weight = rec["n_windows"].to_numpy(dtype=np.float64)[:, None]
            for _, members in rec.groupby("subject").indices.items():
                w = weight[members]
                total = np.maximum(w.sum(), 1)
                pooled = np.nansum(w * mean[members], 0) / total
                second = np.nansum(w * (std[members] ** 2 + mean[members] ** 2), 0) / total
                mean[members], std[members] = pooled, np.sqrt(np.maximum(second - pooled**2, 0))
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        self._stats[by] = (mean, std)
        return mean, std

    def _node_stats(
        self, normalizer: Normalizer, recording: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per node and band statistics for windows of the recordings ``recording``.

        A group's (recording's or subject's) statistics are computed once, from the moments of
        its recordings (each read once), and kept.
        """
        rec = self.recordings
        if normalizer.by == "subject":
            groups = rec["subject"].astype(str).to_numpy()
        else:
            groups = np.arange(len(rec))
        cache = self._node_cache.setdefault(str(normalizer), {})
        wanted = np.unique(groups[recording])
        offsets, sizes = rec["offset"].to_numpy(), rec["n_windows"].to_numpy()
        for g in wanted:
            if g in cache:
                continue
            moments = [
                node_moments(self.features[lo : lo + n], self.present[lo : lo + n])
                for lo, n in zip(offsets[groups == g], sizes[groups == g], strict=True)
            ]
            cache[g] = normalizer.statistics(*(sum(m[k] for m in moments) for k in range(3)))
        if not len(wanted):
            shape = (0, self.topology.n_nodes, len(self.bands))
            return np.zeros(shape), np.ones(shape)
        position = np.searchsorted(wanted, groups[recording])
        mean = np.stack([cache[g][0] for g in wanted])[position]
        std = np.stack([cache[g][1] for g in wanted])[position]
        return mean, std

    @property
    def _offsets(self) -> np.ndarray:
        return self.recordings["offset"].to_numpy() if len(self.recordings) else np.zeros(1, int)

    def select(
        self,
        datasets: Sequence[str] | None = None,
        subjects: Sequence[str] | None = None,
        labels: Sequence[str] | None = None,
        labelled: bool = False,
    ) -> np.ndarray:
        """Window indices matching every given filter (strings compare as stored)."""
        index = self.index
        keep = np.ones(len(index), dtype=bool)
        for column, values in (("dataset", datasets), ("subject", subjects), ("label", labels)):
            if values is not None:
                keep &= index[column].isin([str(v) for v in values]).to_numpy()
        if labelled:
            keep &= index["label"].notna().to_numpy()
        return np.flatnonzero(keep)

    def dataset(
        self,
        indices: np.ndarray | None = None,
        normalize: Normalize = "recording",
        label_map: Mapping[str, int] | None = None,
    ) -> CorpusDataset:
        """A ``torch.utils.data.Dataset`` over some windows, normalised on read."""
        return CorpusDataset(self, indices, normalize, label_map)

    def iter_batches(
        self,
        batch_size: int = 512,
        indices: np.ndarray | None = None,
        normalize: Normalize = "recording",
        shuffle: bool = True,
        seed: int = 0,
        pool_chunks: int = 8,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Batches ``(features, present, window indices)``, normalised, in bounded memory.

        Shuffling is two-level, as for any chunked store: chunks in random order, ``pool_chunks``
        of them decoded at once (each exactly once), their selected windows shuffled together
        and cut into batches. Memory stays at about ``pool_chunks`` chunks whatever the corpus
        size; without ``shuffle`` the windows come in corpus order.
        """
        rng = np.random.default_rng(seed)
        n, blocks = len(self), np.array(self.features.blocks(), dtype=np.int64).reshape(-1, 2)
        if indices is None:
            chunk_ids = np.arange(len(blocks))
            members: dict[int, np.ndarray] | None = None
        else:
            wanted = np.unique(np.asarray(indices, dtype=np.int64))
            if len(wanted) and (wanted[0] < 0 or wanted[-1] >= n):
                raise IndexError(f"window index out of range for a corpus of {n} windows")
            block_of = np.searchsorted(blocks[:, 0], wanted, side="right") - 1
            chunk_ids, first = np.unique(block_of, return_index=True)
            members = dict(zip(chunk_ids.tolist(), np.split(wanted, first[1:]), strict=True))
        order = rng.permutation(chunk_ids) if shuffle else chunk_ids
        carry: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        for p in range(0, len(order), pool_chunks):
            parts = [] if carry is None else [carry]
            for c in np.sort(order[p : p + pool_chunks]):
                c0, c1 = (int(v) for v in blocks[c])
                rows = np.arange(c0, c1) if members is None else members[int(c)]
                x = self.features[c0:c1][rows - c0]
                present = self.present[c0:c1][rows - c0]
                parts.append((self._normalize(x, present, rows, normalize), present, rows))
            x, present, rows = (np.concatenate(k) for k in zip(*parts, strict=True))
            parts.clear()
            perm = rng.permutation(len(rows)) if shuffle else np.arange(len(rows))
            cut = len(rows) - len(rows) % batch_size
            for b in range(0, cut, batch_size):
                pick = perm[b : b + batch_size]
                yield x[pick], present[pick], rows[pick]
            rest = perm[cut:]
            carry = (x[rest], present[rest], rows[rest]) if len(rest) else None
        if carry is not None:
            yield carry

    def _normalize(
        self, x: np.ndarray, present: np.ndarray, rows: np.ndarray, mode: Normalize
    ) -> np.ndarray:
        """Features of ``rows`` standardised, float32; absent nodes stay 0."""
        mean, std = self.normalization(mode, rows)
        if mean.ndim == 2:  # per band: broadcast over nodes
            mean, std = mean[:, None, :], std[:, None, :]
        return standardize(x, present, mean, std)

    def read(
        self, rows: np.ndarray, normalize: Normalize = "recording"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normalised features and present masks of some windows (random access)."""
        rows = np.asarray(rows)
        present = self.present[rows]
        return self._normalize(self.features[rows], present, rows, normalize), present

    def summary(self) -> dict[str, Any]:
        """Windows, hours, recordings and subjects per dataset, and labels."""
        index, rec = self.index, self.recordings
        hop = self.config.step or self.config.window
        out: dict[str, Any] = {
            "path": str(self.path),
            "windows": len(self),
            "hours": round(len(self) * hop / 3600, 3),
            "recordings": len(rec),
            "window_s": self.config.window,
            "method": self.config.method,
            "dtype": self.meta["dtype"],
            "datasets": {},
        }
        for name, rows in index.groupby("dataset") if len(index) else []:
            present = self.present[np.asarray(rows.index)] if len(rows) <= 200_000 else None
            out["datasets"][name] = {
                "windows": len(rows),
                "recordings": int(rows["recording"].nunique()),
                "subjects": int(rows["subject"].nunique()),
                "labels": {str(k): int(v) for k, v in rows["label"].value_counts().items()},
                "mean_present_nodes": None
                if present is None
                else round(float(present.sum(1).mean()), 2),
            }
        return out


class CorpusDataset:
    """``torch`` Dataset view of a corpus: items ``(x, present, label)``.

    ``x`` is (n_nodes, n_bands) float32, normalised per band and zero at absent nodes;
    ``label`` is ``label_map[label]`` or -1 for unlabelled windows. Each item is a random
    access (one chunk decoded); to stream a large corpus use :meth:`Corpus.iter_batches`.
    """

    def __init__(
        self,
        corpus: Corpus,
        indices: np.ndarray | None = None,
        normalize: Normalize = "recording",
        label_map: Mapping[str, int] | None = None,
    ) -> None:
        self.corpus, self.normalize = corpus, normalize
        self.indices = np.arange(len(corpus)) if indices is None else np.asarray(indices)
        labels = corpus.index["label"].to_numpy()[self.indices]
        known = [str(v) for v in labels if v is not None and v == v]
        if label_map is None:
            label_map = {name: i for i, name in enumerate(sorted(set(known)))}
        self.label_map = dict(label_map)
        self.targets = np.array(
            [self.label_map.get(str(v), -1) if v is not None and v == v else -1 for v in labels],
            dtype=np.int64,
        )

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        import torch

        x, present = self.corpus.read(self.indices[i : i + 1], self.normalize)
        return torch.from_numpy(x[0]), torch.from_numpy(present[0]), int(self.targets[i])
