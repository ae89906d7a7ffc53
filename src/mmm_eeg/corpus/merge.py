"""``mmm-eeg corpus merge``: one corpus from the parts that sharded preprocessing wrote.

An array job runs ``mmm-eeg preprocess ... --shard I/N --out parts/I`` on N machines; the merge
then makes one corpus whose index is one table and whose feature stores are the parts' own
zarr stores, **hard-linked** (no feature byte copied) when the parts lie on the same
filesystem, copied otherwise (or with ``copy=True``). Hard links keep the merged corpus whole
even if the parts are deleted afterwards, and stay unchanged if a part is later extended: zarr
replaces chunk files by rename, never in place.

The merged corpus is written under a temporary name and renamed when complete, so a killed
merge leaves nothing that looks like a corpus. It is read-only (extend a part and merge again).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mmm_eeg.corpus.format import FORMAT, VERSION, corpus_settings, stores
from mmm_eeg.corpus.reader import Corpus
from mmm_eeg.errors import UserInputError

logger = logging.getLogger(__name__)


def merge_corpora(
    parts: Sequence[str | Path], out: str | Path, copy: bool = False
) -> dict[str, Any]:
    """Merge corpora with identical settings into a new corpus at ``out``.

    Parameters
    ----------
    parts : sequence of str | path-like
        Corpus folders (plain or themselves merged), in the order their windows should take.
    out : str | path-like
        The new corpus folder; must not exist yet.
    copy : bool
        Copy the feature stores instead of hard-linking them.

    Returns
    -------
    dict
        ``windows``, ``recordings``, ``parts``, ``linked_bytes`` and ``copied_bytes``.
    """
    out = Path(out)
    if out.exists():
        raise UserInputError(f"{out} already exists; merge into a new folder.")
    if len(parts) < 1:
        raise UserInputError("Give at least one corpus to merge.")
    corpora = [Corpus(p) for p in parts]
    first, settings = corpora[0], corpus_settings(corpora[0].meta)
    for c in corpora[1:]:
        different = [k for k, v in corpus_settings(c.meta).items() if v != settings[k]]
        if different:
            raise UserInputError(
                f"{c.path} was built with other {', '.join(different)} than {first.path}; only "
                "corpora preprocessed with the same settings can be merged."
            )
    owner: dict[str, Path] = {}
    for c in corpora:
        for recording in c.recordings["recording"] if len(c.recordings) else []:
            if recording in owner:
                raise UserInputError(
                    f"Recording {recording!r} is in both {owner[recording]} and {c.path}; the "
                    "parts overlap (were they built with the same --shard I/N?)."
                )
            owner[recording] = c.path

    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.merging")
    tmp.mkdir(parents=True)
    try:
        totals = {"linked_bytes": 0, "copied_bytes": 0}
        store_list, index, recordings, offset = [], [], [], 0
        for c in corpora:
            for store in stores(c.meta):
                name = f"stores/part-{len(store_list):05d}.zarr"
                for key, size in _link_tree(c.path / store["path"], tmp / name, copy).items():
                    totals[key] += size
                store_list.append({"path": name, "n_windows": store["n_windows"]})
            index.append(c.index)
            rec = c.recordings.copy()
            if len(rec):
                rec["offset"] = rec["offset"] + offset
            recordings.append(rec)
            offset += len(c)
        for folder, frames in (("index", index), ("recordings", recordings)):
            (tmp / folder).mkdir()
            pd.concat(frames, ignore_index=True).to_parquet(
                tmp / folder / "part-00000.parquet", index=False
            )
        meta = {
            "format": FORMAT,
            "version": VERSION,
            **settings,
            "n_windows": offset,
            "index_parts": ["index/part-00000.parquet"],
            "recording_parts": ["recordings/part-00000.parquet"],
            "stores": store_list,
            "merged_from": [str(c.path) for c in corpora],
        }
        (tmp / "corpus.json").write_text(json.dumps(meta, indent=2, default=str))
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "windows": offset,
        "recordings": len(owner),
        "parts": len(corpora),
        **totals,
    }


def _link_tree(source: Path, target: Path, copy: bool) -> dict[str, int]:
    """Hard-link (or copy) every file of a zarr store; returns bytes linked and copied."""
    out = {"linked_bytes": 0, "copied_bytes": 0}
    for dirpath, _, filenames in os.walk(source):
        here = target / Path(dirpath).relative_to(source)
        here.mkdir(parents=True, exist_ok=True)
        for name in filenames:
            if name.endswith(".partial"):  # a killed writer's leftover, never committed
                continue
            src, dst = Path(dirpath) / name, here / name
            size = src.stat().st_size
            if not copy:
                try:
                    os.link(src, dst)
                    out["linked_bytes"] += size
                    continue
                except OSError as err:
                    if err.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                        raise
                    logger.info("Cannot hard-link %s (%s); copying instead.", src, err.strerror)
                    copy = True
            shutil.copy2(src, dst)
            out["copied_bytes"] += size
    return out
