"""The feature corpus on disk: append-only zarr v3 arrays plus Parquet tables.

Layout of a corpus folder::

    corpus.json             format, version, topology, preprocessing, committed window count,
                            the list of committed table parts (written last, atomically)
    data.zarr/features      (windows, n_nodes, n_bands) float32 or float16, chunked on windows
    data.zarr/present       (windows, n_nodes) bool
    data.zarr/signal        (windows, n_nodes, n_samples) float16, only when preprocessing kept
                            each window's signal (``signal_rate``; format version 2)
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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmm_eeg.errors import UserInputError
from mmm_eeg.windows import PreprocessConfig

FORMAT = "mmm-eeg-corpus"
#: 2: the optional signal array (version-1 corpora read as before).
VERSION = 2
INDEX_COLUMNS = ("dataset", "recording", "subject", "session", "label", "start_s")


class CorpusFormatError(UserInputError):
    """A corpus folder that is missing, damaged or from a newer version of mmm-eeg."""


def read_meta(path: Path) -> dict[str, Any]:
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
    _check_meta(meta, meta_path)
    return meta


def _check_meta(meta: Mapping[str, Any], where: Path) -> None:
    """Corpora are shared: a crafted corpus.json must never reach a path or an array shape."""
    count = meta.get("n_windows")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise CorpusFormatError(
            f"{where}: n_windows must be a non-negative integer, got {count!r}."
        )
    for key, folder in (("index_parts", "index"), ("recording_parts", "recordings")):
        parts = meta.get(key)
        if not isinstance(parts, list) or not all(_inside(p, folder) for p in parts):
            raise CorpusFormatError(
                f"{where}: {key} must list files inside the corpus's {folder}/ folder; "
                f"got {parts!r}. The corpus is damaged or not from mmm-eeg."
            )
    for store in meta.get("stores") or []:
        n = store.get("n_windows") if isinstance(store, Mapping) else None
        if not (_inside(store.get("path"), None) and isinstance(n, int) and n >= 0):
            raise CorpusFormatError(f"{where}: a store entry is malformed: {store!r}.")


def _inside(relative: Any, folder: str | None) -> bool:
    """Whether ``relative`` is a plain relative path (inside ``folder``/ when given)."""
    if not isinstance(relative, str) or not relative:
        return False
    parts = Path(relative).parts
    if Path(relative).is_absolute() or ".." in parts:
        return False
    return folder is None or (len(parts) == 2 and parts[0] == folder)


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
