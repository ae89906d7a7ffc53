"""Batches from a corpus for Lightning, sharded across DDP ranks.

Each epoch, the selected windows are permuted with ``seed + epoch``; rank ``r`` of ``w`` takes
every ``w``-th window of that permutation, cut to the same length on every rank, so the shards
of one epoch are disjoint and every rank runs the same number of steps (DDP requires it). A
rank then streams its shard through :meth:`Corpus.iter_batches` (chunk-pooled shuffling).
"""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import IterableDataset

from mmm_eeg.corpus import Corpus
from mmm_eeg.corpus.batches import iter_batches
from mmm_eeg.normalization import Normalization, Normalizer


def shard(indices: np.ndarray, epoch: int, seed: int, rank: int, world: int) -> np.ndarray:
    """This rank's windows for ``epoch``: disjoint across ranks, equal in size."""
    order = np.random.default_rng([seed, epoch]).permutation(np.asarray(indices))
    per_rank = len(order) // world
    return order[rank : per_rank * world : world]


def training_normalization(corpus: Corpus, rows: np.ndarray, normalize: str) -> str | Normalizer:
    """``normalize``, or for ``"fitted"`` the statistics of the training windows ``rows``
    (saved with the model in its feature spec)."""
    return corpus.statistics.fit(rows) if normalize == "fitted" else normalize


class CorpusBatches(IterableDataset):
    """Iterable of ``(x, present, y)`` batches for one rank; call :meth:`set_epoch` each epoch.

    With ``workers`` DataLoader processes (the same number must be given to the DataLoader),
    the rank's windows are grouped by stored chunk and cut into ``workers`` equal parts, so each
    process decodes its own chunks; the batch count is fixed in advance from the part sizes, the
    same on every rank.

    Parameters
    ----------
    corpus : Corpus
        The corpus (opened once per process).
    indices : ndarray
        Windows to draw from.
    batch_size : int
        Windows per batch.
    targets : ndarray | None
        Class index per corpus window (-1 unlabelled); None yields ``y = -1``.
    normalize : str | Normalizer
        Normalisation on read (a name from :data:`mmm_eeg.normalization.NORMALIZATIONS`, or a
        fitted :class:`~mmm_eeg.normalization.Normalizer`).
    tokens : str
        What the model reads per node (DE, signal or both; :meth:`Corpus.read`).
    shuffle : bool
        Shuffle (training) or keep corpus order (evaluation).
    seed : int
        Base seed; the epoch's permutation uses ``seed + epoch``.
    drop_last : bool
        Drop a final short batch (training keeps batch statistics and DDP steps even).
    workers : int
        DataLoader worker processes (0: read in the training process).
    """

    def __init__(
        self,
        corpus: Corpus,
        indices: np.ndarray,
        batch_size: int,
        targets: np.ndarray | None = None,
        normalize: Normalization | Normalizer = "recording",
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        workers: int = 0,
        tokens: str = "de",
    ) -> None:
        super().__init__()
        self.tokens = tokens
        self.corpus, self.indices = corpus, np.asarray(indices)
        self.batch_size, self.targets, self.normalize = batch_size, targets, normalize
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.workers = max(workers, 0)
        self.epoch, self.rank, self.world = 0, 0, 1
        self.skip = 0  # batches of this epoch already consumed before a resume

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def set_rank(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    def my_indices(self) -> np.ndarray:
        if not self.shuffle:
            return self.indices[self.rank :: self.world] if self.world > 1 else self.indices
        return shard(self.indices, self.epoch, self.seed, self.rank, self.world)

    def _rank_size(self) -> int:
        return len(self.indices) // self.world if self.shuffle else len(self.my_indices())

    def _batches(self, n: int) -> int:
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def worker_counts(self) -> list[int]:
        """Batches each DataLoader worker yields this epoch (one entry without workers)."""
        n = self._rank_size()
        sizes = [len(p) for p in np.array_split(np.arange(n), max(self.workers, 1))]
        return [self._batches(k) for k in sizes]

    def __len__(self) -> int:
        return sum(self.worker_counts())

    def _worker_part(self, rows: np.ndarray, worker: int) -> np.ndarray:
        """The ``worker``-th of equal parts of ``rows``, grouped by stored chunk."""
        starts = np.array([a for a, _ in self.corpus.features.blocks()], dtype=np.int64)
        block = np.searchsorted(starts, rows, side="right") - 1
        if self.shuffle:
            rank_of_block = np.random.default_rng([self.seed, self.epoch, self.rank]).permutation(
                len(starts)
            )
            block = rank_of_block[block]
        grouped = rows[np.argsort(block, kind="stable")]
        return np.array_split(grouped, self.workers)[worker]

    def _worker_skip(self, worker: int) -> int:
        """Batches of ``worker`` among the first ``self.skip`` that the DataLoader yielded.

        The DataLoader takes batches from its workers in turn, passing over exhausted ones.
        """
        counts, taken, left, w = self.worker_counts(), [0] * self.workers, self.skip, 0
        while left > 0 and any(t < c for t, c in zip(taken, counts, strict=True)):
            if taken[w] < counts[w]:
                taken[w] += 1
                left -= 1
            w = (w + 1) % self.workers
        return taken[worker]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        rows, seed = self.my_indices(), self.seed * 1_000_003 + self.epoch
        info = torch.utils.data.get_worker_info()
        if self.workers > 1 or info is not None:
            if info is None or info.num_workers != self.workers:
                raise RuntimeError(
                    f"CorpusBatches(workers={self.workers}) needs a DataLoader with "
                    f"num_workers={self.workers}."
                )
            # The DataLoader starts every epoch at process 0; after a resume mid-epoch, process
            # i plays part (i + skip) mod workers so the batches keep their original order.
            part = (info.id + self.skip) % self.workers
            rows, seed = self._worker_part(rows, part), seed * 1_009 + part
            limit, skip = self.worker_counts()[part], self._worker_skip(part)
        else:
            limit, skip = len(self), self.skip
        self.skip = 0
        batches = iter_batches(
            self.corpus,
            self.batch_size,
            rows,
            normalize=self.normalize,
            shuffle=self.shuffle,
            seed=seed,
            tokens=self.tokens,
        )
        for step, (x, present, rows_) in enumerate(batches):
            if step >= limit:
                return
            if step < skip:
                continue
            y = np.full(len(rows_), -1) if self.targets is None else self.targets[rows_]
            yield torch.from_numpy(x), torch.from_numpy(present), torch.from_numpy(y)


class CorpusDataModule(L.LightningDataModule):
    """Training and validation batches; each rank's shard is set in ``setup`` (DDP-aware)."""

    def __init__(self, train_set: CorpusBatches, val_set: CorpusBatches) -> None:
        super().__init__()
        self.train_set, self.val_set = train_set, val_set

    def setup(self, stage: str) -> None:
        for dataset in (self.train_set, self.val_set):
            dataset.set_rank(self.trainer.global_rank, self.trainer.world_size)

    def train_dataloader(self):
        return _loader(self.train_set)

    def val_dataloader(self):
        return _loader(self.val_set)


def _loader(dataset: CorpusBatches) -> torch.utils.data.DataLoader:
    workers = dataset.workers
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, num_workers=workers, persistent_workers=False,
        multiprocessing_context="spawn" if workers else None,
    )  # fmt: skip
