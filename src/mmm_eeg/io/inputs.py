"""What a preprocessing job reads: files, folders, manifests and BIDS datasets, as sources.

:func:`discover_inputs` is the library form of ``mmm-eeg preprocess INPUTS``' discovery, so that a
script builds a corpus from the same inputs the command would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mmm_eeg.io.bids import discover_bids, is_bids_root
from mmm_eeg.io.sources import Skipped, SourceFile, discover_sources, shard_sources


def discover_inputs(
    inputs: Sequence[str | Path],
    events: str | None = None,
    labels: Sequence[str] | None = None,
    task: str | None = None,
    subjects: Sequence[str] | None = None,
    label_from: str | None = None,
    shard: str | None = None,
) -> tuple[list[SourceFile], list[Skipped]]:
    """Every EEG source in ``inputs``, and the inputs skipped with their reasons.

    Parameters
    ----------
    inputs : sequence of str | path-like
        EEG files, folders (searched recursively), manifest CSVs and BIDS dataset roots (read
        with mne-bids, sidecars applied).
    events : str | None
        ``T1=left_fist,T2=right_fist`` (annotation -> label), or ``T0,T1,T2`` to read labels
        from manifest columns.
    labels : sequence of str | None
        Allowed labels: manifest rows naming another are skipped and reported.
    task, subjects, label_from : str | sequence | None
        BIDS inputs only: one task, some subjects, and where labels come from
        (``events:trial_type`` or ``participants:COLUMN``).
    shard : str | None
        ``I/N``: only the I-th of N deterministic slices of the sources.

    Returns
    -------
    sources : list of SourceFile
    skipped : list of Skipped
    """
    paths = [Path(p) for p in inputs]
    bids_roots = [p for p in paths if is_bids_root(p)]
    sources, skipped = discover_sources(
        [p for p in paths if p not in bids_roots], events, labels=labels
    )
    for root in bids_roots:
        found, bad = discover_bids(root, task, subjects, label_from)
        sources, skipped = sources + found, skipped + bad
    if shard is not None:
        sources = shard_sources(sources, shard)
    return sources, skipped
