"""A corpus's standardisation statistics: per recording or subject, per band or per node, or
fitted on some of its windows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mmm_eeg.errors import UserInputError
from mmm_eeg.normalization import Normalization, Normalizer, node_moments, standardize

if TYPE_CHECKING:
    from mmm_eeg.corpus.reader import Corpus


class CorpusStatistics:
    """The statistics a corpus's windows are standardised with, computed once and kept.

    Per band, the statistics stored per recording at preprocessing are pooled over a subject's
    recordings; per node, a group's recordings are read once. Memory grows with recordings and
    groups, never with windows.

    Parameters
    ----------
    corpus : Corpus
        The store they describe.
    """

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self._stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._node_cache: dict[str, dict[Any, tuple[np.ndarray, np.ndarray]]] = {}

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
        rows = np.arange(len(self.corpus)) if rows is None else np.asarray(rows)
        if normalizer.by == "fitted":
            if normalizer.mean is None or normalizer.std is None:
                raise UserInputError(
                    "normalize='fitted' reads statistics fitted on training windows; fit them "
                    "(Corpus.statistics.fit(rows)) or read with a model's saved FeatureSpec.",
                    parameter="normalize",
                )
            shape = (len(rows), *np.shape(normalizer.mean))
            return np.broadcast_to(normalizer.mean, shape), np.broadcast_to(normalizer.std, shape)
        recording = np.searchsorted(self.corpus.offsets, rows, side="right") - 1
        if normalizer.per == "node" and normalizer.by != "none":
            return self._node_stats(normalizer, recording)
        mean, std = self._recording_stats(normalizer.by)
        return mean[recording], std[recording]

    def fit(self, rows: np.ndarray, chunk: int = 65536) -> Normalizer:
        """Per node and band statistics of the windows ``rows`` (read ``chunk`` at a time):
        the ``"fitted"`` normaliser, to standardise any window with."""
        rows = np.sort(np.asarray(rows))
        if len(rows) == 0:
            raise UserInputError("No window to fit standardisation statistics on.")
        moments = None
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            m = node_moments(self.corpus.features[part], self.corpus.present[part])
            if moments is not None:
                m = tuple(a + b for a, b in zip(moments, m, strict=True))
            moments = m
        return Normalizer.from_moments(*moments)

    def _recording_stats(self, by: str) -> tuple[np.ndarray, np.ndarray]:
        if by in self._stats:
            return self._stats[by]
        rec = self.corpus.recordings
        b = len(self.corpus.bands)
        if by == "none":
            self._stats[by] = (np.zeros((len(rec), b)), np.ones((len(rec), b)))
            return self._stats[by]
        mean = rec[[f"mean_{x}" for x in self.corpus.bands]].to_numpy(dtype=np.float64, copy=True)
        std = rec[[f"std_{x}" for x in self.corpus.bands]].to_numpy(dtype=np.float64, copy=True)
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
        rec = self.corpus.recordings
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
                node_moments(self.corpus.features[lo : lo + n], self.corpus.present[lo : lo + n])
                for lo, n in zip(offsets[groups == g], sizes[groups == g], strict=True)
            ]
            cache[g] = normalizer.statistics(*(sum(m[k] for m in moments) for k in range(3)))
        if not len(wanted):
            shape = (0, self.corpus.topology.n_nodes, len(self.corpus.bands))
            return np.zeros(shape), np.ones(shape)
        position = np.searchsorted(wanted, groups[recording])
        mean = np.stack([cache[g][0] for g in wanted])[position]
        std = np.stack([cache[g][1] for g in wanted])[position]
        return mean, std

    def standardize(
        self,
        x: np.ndarray,
        present: np.ndarray,
        rows: np.ndarray,
        mode: Normalization | Normalizer,
    ) -> np.ndarray:
        """Features of ``rows`` standardised, float32; absent nodes stay 0."""
        mean, std = self.normalization(mode, rows)
        if mean.ndim == 2:  # per band: broadcast over nodes
            mean, std = mean[:, None, :], std[:, None, :]
        return standardize(x, present, mean, std)
