"""Append recordings' windows to a corpus, commit by commit (see :mod:`mmm_eeg.corpus.format`)."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from mmm_eeg.atomic import atomic_path, write_json
from mmm_eeg.corpus.format import FORMAT, VERSION, corpus_settings, read_meta
from mmm_eeg.errors import UserInputError
from mmm_eeg.normalization import Normalizer, node_moments
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.validation import check_option
from mmm_eeg.windows import PreprocessConfig, WindowSet

logger = logging.getLogger(__name__)
#: Windows per stored chunk of a corpus that keeps the signal (a window holds 20x the values
#: of its DE; 62 nodes x 100 samples x 1024 windows: 12 MB per chunk before compression).
SIGNAL_CHUNK = 1024


def signal_codec() -> Any:
    """The signal's compressor: Blosc's LZ4 over byte-shuffled float16. A signal is barely
    compressible (its low bits are noise), so decoding speed is what counts: on the signal of
    ../shared/eeg this decodes about twice as fast as zarr's default Zstandard for 11 % more
    bytes (4,504 against 4,043 per window; docs/design.md)."""
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


try:
    import fcntl
except ImportError:  # Windows has no flock: one writer per corpus is then the user's to keep
    fcntl = None  # type: ignore[assignment]


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
    wait : bool
        When another process is writing the corpus, wait for it instead of refusing.
    """

    def __init__(
        self,
        path: str | Path,
        topology: UnifiedTopology,
        config: PreprocessConfig,
        dtype: Literal["float32", "float16"] = "float32",
        chunk_windows: int = 8192,
        commit_windows: int = 65536,
        wait: bool = False,
    ) -> None:
        check_option("dtype", dtype, ("float32", "float16"))
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock: int | None = _lock(self.path, wait)  # one writer per corpus, across processes
        self.commit_windows = commit_windows
        self._pending: list[tuple[str, dict[str, Any], WindowSet]] = []
        self._pending_ids: set[str] = set()
        self._pending_windows = 0
        try:
            self._open(topology, config, dtype, chunk_windows)
        except BaseException:
            self.release()  # a refused corpus stays free for others
            raise

    def _open(
        self, topology: UnifiedTopology, config: PreprocessConfig, dtype: str, chunk_windows: int
    ) -> None:
        """Open the corpus (checking its settings), or create it."""
        import zarr

        settings = {
            "topology": topology.to_config(),
            "preprocessing": config.to_dict(),
            "dtype": dtype,
        }
        if (self.path / "corpus.json").exists():
            self.meta = read_meta(self.path)
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
            self.signal = group["signal"] if config.signal_rate is not None else None
            self._discard_uncommitted()
        else:
            group = zarr.open_group(self.path / "data.zarr", mode="w", zarr_format=3)
            n_nodes, n_bands = topology.n_nodes, len(config.bands)
            if config.signal_rate is not None:  # one chunking for all arrays: aligned reads
                chunk_windows = min(chunk_windows, SIGNAL_CHUNK)
            self.features = group.create_array(
                "features", shape=(0, n_nodes, n_bands), chunks=(chunk_windows, n_nodes, n_bands),
                dtype=dtype,
            )  # fmt: skip
            self.present = group.create_array(
                "present", shape=(0, n_nodes), chunks=(chunk_windows, n_nodes), dtype=bool
            )
            self.signal = None
            if config.signal_samples is not None:
                # float16 of signal_unit_uv units (3 significant digits, range far beyond EEG)
                n = config.signal_samples
                self.signal = group.create_array(
                    "signal", shape=(0, n_nodes, n), chunks=(chunk_windows, n_nodes, n),
                    dtype="float16", compressors=signal_codec(),
                )  # fmt: skip
            self.meta = {
                # Version 1 readers read a corpus without the signal array.
                "format": FORMAT, "version": VERSION if self.signal is not None else 1,
                **settings,
                "n_windows": 0, "index_parts": [], "recording_parts": [],
            }  # fmt: skip
            write_json(self.path / "corpus.json", self.meta)
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
        if self.signal is not None and self.signal.shape[0] != n:
            self.signal.resize((n, *self.signal.shape[1:]))
        listed = set(self.meta["index_parts"]) | set(self.meta["recording_parts"])
        for folder in ("index", "recordings"):
            for part in (self.path / folder).glob("*"):
                if f"{folder}/{part.name}" not in listed:
                    part.unlink()
        for leftover in (self.path / "data.zarr").rglob("*.partial"):
            leftover.unlink()

    def add(self, recording_id: str, meta: Mapping[str, Any], windows: WindowSet) -> None:
        """Queue one recording's windows (committed in batches; see ``commit_windows``)."""
        if recording_id in self.done or recording_id in self._pending_ids:
            raise ValueError(f"Recording {recording_id!r} is already in the corpus.")
        if self.signal is not None and windows.signal is None:
            raise UserInputError(
                f"{recording_id}: the corpus keeps each window's signal, and these windows have "
                "none (ready-made features, or windows made without signal_rate); write them to "
                "a corpus without a signal rate."
            )
        if windows.signal is not None and not np.all(np.abs(windows.signal) < 6e4):
            raise UserInputError(
                f"{recording_id}: its signal exceeds what float16 stores (6e4 units of "
                f"{self.meta['preprocessing']['signal_unit_uv']:g} µV); the recording is not in "
                "volts (check the reader's unit), or set max_amplitude_uv to drop such windows."
            )
        self._pending.append((recording_id, dict(meta), windows))
        self._pending_ids.add(recording_id)
        self._pending_windows += len(windows)
        if self._pending_windows >= self.commit_windows:
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
        if self.signal is not None:
            self.signal.resize((total, *self.signal.shape[1:]))
            if len(features):
                self.signal[n:total] = np.concatenate([w.signal for w in sets]).astype("float16")
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
        write_json(self.path / "corpus.json", self.meta)
        self.done.update(r for r, _, _ in self._pending)
        self._pending.clear()
        self._pending_ids.clear()
        self._pending_windows = 0

    def close(self) -> None:
        """Commit what is pending and let other writers in."""
        try:
            self.commit()
        finally:
            self.release()

    def release(self) -> None:
        """Give up the corpus's lock without committing (a no-op once released)."""
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = None

    def __enter__(self) -> CorpusWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.release()


def _lock(folder: Path, wait: bool = False) -> int | None:
    """An exclusive lock on ``folder/.writer.lock``, with the holder's host, pid and start.

    The operating system releases the lock when its process exits or dies, so a lock left by
    a killed writer is never stale: the next writer takes it over, and the corpus's own commit
    protocol discards what the killed one left uncommitted. (``flock`` is local to one machine
    on some network file systems: run one job per corpus folder there, or ``--shard`` + merge.)

    Raises
    ------
    UserInputError
        When another process holds it and ``wait`` is False, naming that process.
    """
    if fcntl is None:
        logger.warning("No file locks on this system: run one writer per corpus at a time.")
        return None
    path = folder / ".writer.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "an unknown process"
        if not wait:
            os.close(fd)
            raise UserInputError(
                f"{folder} is being written by another process ({holder}); wait for it "
                "(--wait), or write to another corpus folder and merge them "
                "(mmm-eeg corpus merge)."
            ) from None
        logger.warning("Waiting for %s to finish writing %s", holder, folder)
        fcntl.flock(fd, fcntl.LOCK_EX)
    since = datetime.now(UTC).isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"host {socket.gethostname()}, pid {os.getpid()}, since {since}".encode(), 0)
    return fd


def _band_stats(windows: WindowSet) -> tuple[np.ndarray, np.ndarray]:
    """Per-band mean and std over present nodes of all windows (0 and 1 when there is none)."""
    moments = node_moments(windows.features, windows.present)
    return Normalizer("recording", "band").statistics(*moments)
