"""Read a corpus: committed windows, their index, normalisation on read, shuffled batches."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmm_eeg.corpus.format import (
    INDEX_COLUMNS,
    CorpusFormatError,
    read_meta,
    stores,
)
from mmm_eeg.errors import READ_ERRORS, UserInputError
from mmm_eeg.normalization import Normalization, Normalizer, node_moments, standardize
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.windows import PreprocessConfig

logger = logging.getLogger(__name__)


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
        self.meta = read_meta(self.path)
        self.topology = UnifiedTopology.from_config(self.meta["topology"])
        self.config = PreprocessConfig.from_dict(self.meta["preprocessing"])
        features, present, counts = [], [], []
        for store in stores(self.meta):
            try:
                group = zarr.open_group(self.path / store["path"], mode="r")
                features.append(group["features"])
                present.append(group["present"])
            except READ_ERRORS as err:  # what zarr raises for missing or damaged stores
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

    def feature_spec(self, normalize: Normalization = "recording") -> FeatureSpec:
        """The input contract of features read from this corpus with ``normalize``."""
        return FeatureSpec.of(self.topology, self.config, normalize)

    @property
    def bands(self) -> list[str]:
        """Band names."""
        return [b[0] for b in self.config.bands]

    def _read_parts(self, key: str) -> pd.DataFrame:
        frames = []
        for part in self.meta[key]:
            try:
                frames.append(pd.read_parquet(self.path / part))
            except READ_ERRORS as err:  # pyarrow's ArrowInvalid (ValueError), ArrowIOError
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

    def label_targets(
        self, rows: np.ndarray, names: Sequence[str] | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """Class index of every window (-1 outside ``rows``, unlabelled or not in ``names``).

        Parameters
        ----------
        rows : ndarray of int
            The windows whose labels count.
        names : sequence of str | None
            The class names in class-index order (a trained model's); None: the sorted labels
            found in ``rows``, which must be at least two.

        Returns
        -------
        targets : ndarray of int64, shape (n_windows,)
        names : list of str
        """
        labels = self.index["label"].to_numpy()
        found = sorted({str(v) for v in labels[rows] if v is not None and v == v})
        if names is None:
            if len(found) < 2:
                raise UserInputError(
                    f"The selection holds {len(found)} label(s) {found}; need at least 2."
                )
            names = found
        lookup = {str(n): i for i, n in enumerate(names)}
        targets = np.full(len(labels), -1, dtype=np.int64)
        targets[rows] = [lookup.get(str(v), -1) if v is not None and v == v else -1
                         for v in labels[rows]]  # fmt: skip
        return targets, list(names)

    def iter_batches(
        self,
        batch_size: int = 512,
        indices: np.ndarray | None = None,
        normalize: Normalization = "recording",
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
        self, x: np.ndarray, present: np.ndarray, rows: np.ndarray, mode: Normalization
    ) -> np.ndarray:
        """Features of ``rows`` standardised, float32; absent nodes stay 0."""
        mean, std = self.normalization(mode, rows)
        if mean.ndim == 2:  # per band: broadcast over nodes
            mean, std = mean[:, None, :], std[:, None, :]
        return standardize(x, present, mean, std)

    def read(
        self, rows: np.ndarray, normalize: Normalization = "recording"
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
