"""Shuffled batches of a corpus's windows in bounded memory (two-level shuffling)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from mmm_eeg.corpus.reader import Corpus
from mmm_eeg.normalization import Normalization, Normalizer
from mmm_eeg.spec import token_input


def iter_batches(
    corpus: Corpus,
    batch_size: int = 512,
    indices: np.ndarray | None = None,
    normalize: Normalization | Normalizer = "recording",
    shuffle: bool = True,
    seed: int = 0,
    pool_chunks: int = 8,
    tokens: str = "de",
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Batches ``(inputs, present, window indices)``, normalised, in bounded memory.

    The inputs are what ``tokens`` reads (see :meth:`Corpus.read`); the signal stays float16
    in the pool and becomes float32 batch by batch.

    Shuffling is two-level, as for any chunked store: chunks in random order, ``pool_chunks``
    of them decoded at once (each exactly once), their selected windows shuffled together
    and cut into batches. Memory stays at about ``pool_chunks`` chunks whatever the corpus
    size; without ``shuffle`` the windows come in corpus order.
    """
    rng = np.random.default_rng(seed)
    n, blocks = len(corpus), np.array(corpus.features.blocks(), dtype=np.int64).reshape(-1, 2)
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
    carry: tuple[np.ndarray, ...] | None = None
    no_signal = np.zeros((0, 0, 0), dtype=np.float16)
    for p in range(0, len(order), pool_chunks):
        parts = [] if carry is None else [carry]
        for c in np.sort(order[p : p + pool_chunks]):
            c0, c1 = (int(v) for v in blocks[c])
            rows = np.arange(c0, c1) if members is None else members[int(c)]
            x = corpus.features[c0:c1][rows - c0]
            present = corpus.present[c0:c1][rows - c0]
            signal = corpus.signal_of(slice(c0, c1), tokens)
            signal = no_signal if signal is None else signal[rows - c0]
            x = corpus.statistics.standardize(x, present, rows, normalize)
            parts.append((x, present, rows, signal))
        x, present, rows, signal = (np.concatenate(k) for k in zip(*parts, strict=True))
        parts.clear()
        perm = rng.permutation(len(rows)) if shuffle else np.arange(len(rows))
        cut = len(rows) - len(rows) % batch_size
        for b in range(0, cut, batch_size):
            pick = perm[b : b + batch_size]
            yield _batch(tokens, x, present, rows, signal, pick)
        rest = perm[cut:]
        carry = (x[rest], present[rest], rows[rest], signal[rest] if len(signal) else signal)
        carry = carry if len(rest) else None
    if carry is not None:
        yield _batch(tokens, *carry, np.arange(len(carry[0])))


def _batch(tokens, x, present, rows, signal, pick):
    """One batch ``(inputs, present, rows)`` of the pool's windows ``pick``."""
    return (
        token_input(tokens, x[pick], signal[pick] if len(signal) else None),
        present[pick],
        rows[pick],
    )
