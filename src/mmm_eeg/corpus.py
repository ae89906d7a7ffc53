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

Normalisation is applied on read (per recording, per subject, or none), per band over present
nodes, never baked into the stored features.
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
from mmm_eeg.preprocess import PreprocessConfig, WindowSet
from mmm_eeg.topology import UnifiedTopology

logger = logging.getLogger(__name__)

FORMAT = "mmm-eeg-corpus"
VERSION = 1
INDEX_COLUMNS = ("dataset", "recording", "subject", "session", "label", "start_s")
Normalize = Literal["recording", "subject", "none"]


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
            different = [k for k, v in settings.items() if self.meta.get(k) != v]
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
    """Per-band mean and std over present nodes of all windows (NaN when there is none)."""
    values = windows.features.astype(np.float64)
    mask = np.broadcast_to(windows.present[..., None], values.shape)
    count = mask.sum(axis=(0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(mask, values, 0).sum(axis=(0, 1)) / count
        var = np.where(mask, (values - mean) ** 2, 0).sum(axis=(0, 1)) / count
    return mean, np.sqrt(var)


class CommittedArray:
    """Read-only view of the committed rows of a zarr array (first axis limited to ``n``)."""

    def __init__(self, array: Any, n: int) -> None:
        self._array, self._n = array, n

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._n, *self._array.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._array.dtype)

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, key: Any) -> np.ndarray:
        first = key[0] if isinstance(key, tuple) else key
        if isinstance(first, slice):
            first = slice(*first.indices(self._n))
            key = (first, *key[1:]) if isinstance(key, tuple) else first
        else:
            rows = np.asarray(first)
            rows = np.where(rows < 0, rows + self._n, rows)
            if rows.size and (rows.min() < 0 or rows.max() >= self._n):
                raise IndexError(f"window index out of range for a corpus of {self._n} windows")
            if rows.ndim == 1:
                return self._array.get_orthogonal_selection(
                    (rows, *(key[1:] if isinstance(key, tuple) else ()))
                )
            key = (int(rows), *key[1:]) if isinstance(key, tuple) else int(rows)
        return np.asarray(self._array[key])


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
        n = self.meta["n_windows"]
        try:
            group = zarr.open_group(self.path / "data.zarr", mode="r")
            features, present = group["features"], group["present"]
        except Exception as err:  # zarr raises several types for missing or damaged stores
            raise CorpusFormatError(
                f"{self.path}: the data.zarr store is damaged ({err})."
            ) from err
        if features.shape[0] < n or present.shape[0] < n:
            raise CorpusFormatError(
                f"{self.path}: corpus.json promises {n} windows but data.zarr holds "
                f"{features.shape[0]}; the corpus is damaged. Rebuild it."
            )
        self.features = CommittedArray(features, n)
        self.present = CommittedArray(present, n)
        self._index: pd.DataFrame | None = None
        self._recordings: pd.DataFrame | None = None

    def __len__(self) -> int:
        return self.meta["n_windows"]

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

    def normalization(self, mode: Normalize = "recording") -> tuple[np.ndarray, np.ndarray]:
        """Per-window band mean and std, each (n_windows, n_bands), for the given mode.

        ``"recording"``: each recording's own statistics; ``"subject"``: pooled over the
        subject's recordings (weighted by their windows); ``"none"``: 0 and 1.
        """
        n, b = len(self), len(self.bands)
        if mode == "none":
            return np.zeros((n, b)), np.ones((n, b))
        if mode not in ("recording", "subject"):
            raise ValueError(f"normalize must be 'recording', 'subject' or 'none', got {mode!r}.")
        rec = self.recordings
        mean = rec[[f"mean_{x}" for x in self.bands]].to_numpy(dtype=np.float64, copy=True)
        std = rec[[f"std_{x}" for x in self.bands]].to_numpy(dtype=np.float64, copy=True)
        if mode == "subject":
            weight = rec["n_windows"].to_numpy(dtype=np.float64)[:, None]
            for _, rows in rec.groupby("subject").indices.items():
                w = weight[rows]
                pooled = (w * mean[rows]).sum(0) / np.maximum(w.sum(), 1)
                second = (w * (std[rows] ** 2 + mean[rows] ** 2)).sum(0) / np.maximum(w.sum(), 1)
                mean[rows], std[rows] = pooled, np.sqrt(np.maximum(second - pooled**2, 0))
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        counts = rec["n_windows"].to_numpy()
        return np.repeat(mean, counts, axis=0), np.repeat(std, counts, axis=0)

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
        """Batches (features, present, window indices), normalised, in bounded memory.

        Shuffling is two-level, as for any chunked store: chunks in random order, ``pool_chunks``
        of them read at once, their selected windows shuffled together, then cut into batches.
        Memory stays at about ``pool_chunks`` chunks whatever the corpus size.
        """
        rng = np.random.default_rng(seed)
        wanted = np.arange(len(self)) if indices is None else np.sort(np.asarray(indices))
        chunk = self.features._array.chunks[0]
        groups = (
            np.split(wanted, np.flatnonzero(np.diff(wanted // chunk)) + 1) if len(wanted) else []
        )
        order = rng.permutation(len(groups)) if shuffle else np.arange(len(groups))
        mean, std = self._normalization_cache(normalize)
        carry: list[np.ndarray] = []
        for start in range(0, len(order), pool_chunks):
            picked = np.concatenate([groups[g] for g in order[start : start + pool_chunks]])
            pool = np.concatenate([*carry, picked]) if carry else picked
            if shuffle:
                pool = pool[rng.permutation(len(pool))]
            cut = len(pool) - len(pool) % batch_size
            for b in range(0, cut, batch_size):
                yield self._read_normalized(np.sort(pool[b : b + batch_size]), mean, std)
            carry = [pool[cut:]] if cut < len(pool) else []
        if carry and len(carry[0]):
            yield self._read_normalized(np.sort(carry[0]), mean, std)

    def _normalization_cache(self, mode: Normalize) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_norm"):
            self._norm: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if mode not in self._norm:
            self._norm[mode] = self.normalization(mode)
        return self._norm[mode]

    def _read_normalized(
        self, rows: np.ndarray, mean: np.ndarray, std: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = self.features[rows].astype(np.float32)
        present = self.present[rows]
        x = (x - mean[rows, None, :]) / std[rows, None, :]
        x[~present] = 0.0
        return x.astype(np.float32), present, rows

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
    ``label`` is ``label_map[label]`` or -1 for unlabelled windows.
    """

    def __init__(
        self,
        corpus: Corpus,
        indices: np.ndarray | None = None,
        normalize: Normalize = "recording",
        label_map: Mapping[str, int] | None = None,
    ) -> None:
        self.corpus = corpus
        self.indices = np.arange(len(corpus)) if indices is None else np.asarray(indices)
        self.mean, self.std = corpus.normalization(normalize)
        labels = corpus.index["label"].to_numpy()
        if label_map is None:
            names = sorted({str(v) for v in labels[self.indices] if v is not None and v == v})
            label_map = {name: i for i, name in enumerate(names)}
        self.label_map = dict(label_map)
        self.targets = np.array(
            [self.label_map.get(str(v), -1) if v is not None and v == v else -1 for v in labels],
            dtype=np.int64,
        )

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        import torch

        row = int(self.indices[i])
        x, present, _ = self.corpus._read_normalized(np.array([row]), self.mean, self.std)
        return torch.from_numpy(x[0]), torch.from_numpy(present[0]), int(self.targets[row])
