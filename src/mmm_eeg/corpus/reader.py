"""Read a corpus: committed windows and their index, standardised on read."""

from __future__ import annotations

import logging
from collections.abc import Sequence
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
from mmm_eeg.corpus.statistics import CorpusStatistics
from mmm_eeg.errors import READ_ERRORS, UserInputError
from mmm_eeg.normalization import Normalization, Normalizer
from mmm_eeg.spec import FeatureSpec, token_input
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
    signal : CommittedArray, shape (n_windows, n_nodes, n_samples) | None
        Each window's signal (float16, in ``config.signal_unit_uv``) when preprocessing kept it.
    statistics : CorpusStatistics
        The standardisation statistics of its windows (per recording or subject, per band or
        node), computed once and kept.

    See Also
    --------
    mmm_eeg.corpus.batches.iter_batches : shuffled batches in bounded memory.
    mmm_eeg.corpus.labels.label_targets : class indices of windows.
    mmm_eeg.corpus.summary.corpus_summary : windows, hours, subjects and labels per dataset.
    """

    def __init__(self, path: str | Path) -> None:
        import zarr

        self.path = Path(path)
        self.meta = read_meta(self.path)
        self.topology = UnifiedTopology.from_config(self.meta["topology"])
        self.config = PreprocessConfig.from_dict(self.meta["preprocessing"])
        features, present, signal, counts = [], [], [], []
        for store in stores(self.meta):
            try:
                group = zarr.open_group(self.path / store["path"], mode="r")
                features.append(group["features"])
                present.append(group["present"])
                if self.config.signal_rate is not None:
                    signal.append(group["signal"])
            except READ_ERRORS as err:  # what zarr raises for missing or damaged stores
                raise CorpusFormatError(
                    f"{self.path}: the {store['path']} store is damaged or missing ({err})."
                ) from err
            n = store["n_windows"]
            held = min(a[-1].shape[0] for a in (features, present, signal) if a)
            if held < n:
                raise CorpusFormatError(
                    f"{self.path}: corpus.json promises {n} windows in {store['path']} but it "
                    f"holds {held}; the corpus is damaged. Rebuild it."
                )
            counts.append(n)
        self.features = CommittedArray(features, counts)
        self.present = CommittedArray(present, counts)
        self.signal = CommittedArray(signal, counts) if signal else None
        self._index: pd.DataFrame | None = None
        self._recordings: pd.DataFrame | None = None
        self.statistics = CorpusStatistics(self)

    def __len__(self) -> int:
        return self.meta["n_windows"]

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers receive a pickled corpus: send no cached table (the index can be
        # the largest object in memory); a worker reads what it needs itself.
        return {**self.__dict__, "_index": None}

    def __repr__(self) -> str:
        return f"Corpus({str(self.path)!r}, windows={len(self)}, recordings={len(self.recordings)})"

    def feature_spec(
        self, normalize: Normalization | Normalizer = "recording", tokens: str = "de"
    ) -> FeatureSpec:
        """The input contract of ``tokens`` read from this corpus with ``normalize`` (a fitted
        :class:`~mmm_eeg.normalization.Normalizer` brings its statistics)."""
        return FeatureSpec.of(self.topology, self.config, normalize, tokens)

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

    @property
    def offsets(self) -> np.ndarray:
        """The first window of each recording."""
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

    def read(
        self,
        rows: np.ndarray,
        normalize: Normalization | Normalizer = "recording",
        tokens: str = "de",
    ) -> tuple[np.ndarray, np.ndarray]:
        """Model inputs and present masks of some windows (random access).

        The inputs are what ``tokens`` reads (:func:`~mmm_eeg.spec.token_input`): DE
        standardised with ``normalize``, the signal as stored, or both.
        """
        rows = np.asarray(rows)
        present = self.present[rows]
        de = self.statistics.standardize(self.features[rows], present, rows, normalize)
        return token_input(tokens, de, self.signal_of(rows, tokens)), present

    def signal_of(self, rows: np.ndarray | slice, tokens: str = "raw") -> np.ndarray | None:
        """The stored signal of some windows when ``tokens`` reads it (None for DE tokens).

        Raises
        ------
        UserInputError
            When ``tokens`` reads the signal and the corpus keeps none.
        """
        if tokens == "de":
            return None
        if self.signal is None:
            raise UserInputError(
                f"{self.path} keeps no signal, which {tokens!r} tokens read; preprocess the "
                "recordings again with a signal rate (mmm-eeg preprocess --signal-rate 100)."
            )
        return self.signal[rows]
