"""Batches from a corpus for Lightning, sharded across DDP ranks.

Each epoch, the selected windows are permuted with ``seed + epoch``; rank ``r`` of ``w`` takes
every ``w``-th window of that permutation, cut to the same length on every rank, so the shards
of one epoch are disjoint and every rank runs the same number of steps (DDP requires it). A
rank then streams its shard through :meth:`Corpus.iter_batches` (chunk-pooled shuffling).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import IterableDataset

from mmm_eeg.corpus import Corpus, Normalize


def shard(indices: np.ndarray, epoch: int, seed: int, rank: int, world: int) -> np.ndarray:
    """This rank's windows for ``epoch``: disjoint across ranks, equal in size."""
    order = np.random.default_rng([seed, epoch]).permutation(np.asarray(indices))
    per_rank = len(order) // world
    return order[rank : per_rank * world : world]


class CorpusBatches(IterableDataset):
    """Iterable of ``(x, present, y)`` batches for one rank; call :meth:`set_epoch` each epoch.

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
    normalize : {"recording", "subject", "none"}
        Normalisation on read.
    shuffle : bool
        Shuffle (training) or keep corpus order (evaluation).
    seed : int
        Base seed; the epoch's permutation uses ``seed + epoch``.
    drop_last : bool
        Drop a final short batch (training keeps batch statistics and DDP steps even).
    """

    def __init__(
        self,
        corpus: Corpus,
        indices: np.ndarray,
        batch_size: int,
        targets: np.ndarray | None = None,
        normalize: Normalize = "recording",
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
    ) -> None:
        super().__init__()
        self.corpus, self.indices = corpus, np.asarray(indices)
        self.batch_size, self.targets, self.normalize = batch_size, targets, normalize
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
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

    def __len__(self) -> int:
        n = len(self.indices) // self.world if self.shuffle else len(self.my_indices())
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        batches = self.corpus.iter_batches(
            self.batch_size,
            self.my_indices(),
            normalize=self.normalize,
            shuffle=self.shuffle,
            seed=self.seed * 1_000_003 + self.epoch,
        )
        skip, self.skip = self.skip, 0
        for step, (x, present, rows) in enumerate(batches):
            if step >= len(self):
                return
            if step < skip:
                continue
            y = np.full(len(rows), -1) if self.targets is None else self.targets[rows]
            yield torch.from_numpy(x), torch.from_numpy(present), torch.from_numpy(y)


def _lightning_data_module():
    import lightning as L

    return L.LightningDataModule


class CorpusDataModule(_lightning_data_module()):
    """Training and validation batches; each rank's shard is set in ``setup`` (DDP-aware)."""

    def __init__(self, train_set: CorpusBatches, val_set: CorpusBatches) -> None:
        super().__init__()
        self.train_set, self.val_set = train_set, val_set

    def setup(self, stage: str) -> None:
        for dataset in (self.train_set, self.val_set):
            dataset.set_rank(self.trainer.global_rank, self.trainer.world_size)

    def train_dataloader(self):
        return torch.utils.data.DataLoader(self.train_set, batch_size=None)

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.val_set, batch_size=None)
