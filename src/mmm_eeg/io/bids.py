"""BIDS datasets in: discovery with mne-bids, reading with its sidecars applied.

A folder with a ``dataset_description.json`` is a BIDS root. Its EEG recordings are found with
``mne_bids.find_matching_paths`` and read with ``mne_bids.read_raw_bids``, which applies the
sidecars: ``channels.tsv`` types and ``status=bad`` (bad channels become absent and are
reported), ``electrodes.tsv`` positions (used to map electrodes outside the topology) and
``events.tsv`` (annotations, for per-window labels). Subject, session, task and run become
corpus columns.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from mmm_eeg.errors import READ_ERRORS, UserInputError
from mmm_eeg.io.recording import Recording
from mmm_eeg.io.sources import Skipped, SourceFile

logger = logging.getLogger(__name__)

#: Raw formats BIDS allows for EEG.
BIDS_EEG_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set", ".fif")


def is_bids_root(path: str | Path) -> bool:
    """Whether ``path`` is a BIDS dataset's root folder."""
    return (Path(path) / "dataset_description.json").is_file()


def discover_bids(
    root: str | Path,
    task: str | None = None,
    subjects: list[str] | None = None,
    label_from: str | None = None,
) -> tuple[list[SourceFile], list[Skipped]]:
    """The EEG recordings of a BIDS dataset, as sources for ``preprocess``.

    Parameters
    ----------
    root : str | path-like
        The dataset's root (with ``dataset_description.json``).
    task : str | None
        Only this task.
    subjects : list of str | None
        Only these subjects (without the ``sub-`` prefix).
    label_from : str | None
        ``"events:trial_type"``: each window is labelled by the ``events.tsv`` event it lies
        in (its ``trial_type``); ``"participants:COLUMN"``: one label per subject from
        ``participants.tsv``; None: no labels.

    Returns
    -------
    sources : list of SourceFile
    skipped : list of Skipped
    """
    import mne_bids

    root = Path(root)
    if not is_bids_root(root):
        raise UserInputError(
            f"{root} is not a BIDS dataset: dataset_description.json is missing at its root."
        )
    kind, _, column = (label_from or "").partition(":")
    if label_from is not None and (kind not in ("events", "participants") or not column):
        raise UserInputError(
            f"label_from={label_from!r}: use 'events:trial_type' or 'participants:COLUMN'.",
            parameter="label_from",
        )
    description = json.loads((root / "dataset_description.json").read_text())
    dataset = str(description.get("Name") or root.name)
    participants = _participants(root) if kind == "participants" else {}
    paths = mne_bids.find_matching_paths(
        root, subjects=subjects, tasks=task, datatypes="eeg", suffixes="eeg",
        extensions=list(BIDS_EEG_EXTENSIONS),
    )  # fmt: skip
    if not paths:
        raise UserInputError(
            f"{root}: no EEG recording (sub-*/[ses-*/]eeg/*_eeg.<edf|bdf|vhdr|set|fif>)"
            + (f" for task {task!r}" if task else "")
            + (f" of subjects {subjects}" if subjects else "")
            + "."
        )
    sources, skipped = [], []
    for bids_path in sorted(paths, key=lambda p: str(p.fpath)):
        label, events = None, {}
        if kind == "participants":
            label = participants.get(bids_path.subject, {}).get(column)
            if label in (None, "", "n/a"):
                reason = f"no {column!r} for sub-{bids_path.subject} in participants.tsv"
                skipped.append(Skipped(str(bids_path.fpath), reason))
                continue
        elif kind == "events":
            events = _event_labels(bids_path, column)
        extra = {"task": bids_path.task or "", "run": str(bids_path.run or "")}
        sources.append(
            SourceFile(
                path=Path(bids_path.fpath),
                recording_id=f"{dataset}/{bids_path.basename}",
                dataset=dataset,
                subject=f"sub-{bids_path.subject}",
                session=bids_path.session or "",
                label=label,
                events=events,
                extra=extra,
                reader="bids",
            )
        )
    return sources, skipped


def read_bids_recording(path: str | Path) -> Recording:
    """Read one BIDS EEG file with its sidecars applied (bads, types, positions, events)."""
    import mne_bids

    path = Path(path)
    try:
        bids_path = mne_bids.get_bids_path_from_fname(path, verbose="error")
        raw = mne_bids.read_raw_bids(bids_path, verbose="error")
    except READ_ERRORS as err:  # what mne-bids raises for malformed datasets
        raise UserInputError(
            f"{path}: not readable as BIDS ({type(err).__name__}: {err})."
        ) from err
    return Recording.from_raw(raw, {"path": str(path), "format": "bids"})


def _participants(root: Path) -> dict[str, dict[str, Any]]:
    import pandas as pd

    table_path = root / "participants.tsv"
    if not table_path.is_file():
        raise UserInputError(f"{root}: participants.tsv is missing; it is needed for labels.")
    table = pd.read_csv(table_path, sep="\t", dtype=str)
    return {str(r["participant_id"]).removeprefix("sub-"): r for r in table.to_dict("records")}


def _event_labels(bids_path: Any, column: str) -> dict[str, str]:
    """Annotation description -> label: every value of ``column`` in the run's events.tsv."""
    import pandas as pd

    events = bids_path.copy().update(suffix="events", extension=".tsv")
    if not Path(events.fpath).is_file():
        return {}
    table = pd.read_csv(events.fpath, sep="\t", dtype=str)
    if column not in table.columns:
        raise UserInputError(f"{events.fpath}: no {column!r} column to label windows from.")
    return {v: v for v in table[column].dropna().unique() if v != "n/a"}
