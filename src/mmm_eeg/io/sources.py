"""What to preprocess: input paths and manifests turned into a list of source files.

Rules, applied to each input:

- a manifest (a ``.csv`` with a ``path`` column): one row per file; paths are relative to the
  manifest's folder and must stay inside it; ``subject``, ``session``, ``label`` and
  ``dataset`` columns are used when present (dataset defaults to the manifest's folder name);
  every other column is kept as metadata;
- a folder with a ``manifest.csv``: that manifest;
- a folder whose subfolders hold manifests (a collection, like ``../shared/eeg``): each
  subfolder by these same rules;
- any other folder: every EEG file below it; dataset = the folder's name, subject = the first
  subfolder level, session = the second (``muse_n170/subject1/session1/x.csv``), except for
  files named as in the TUH EEG corpus (``aaaaaaav_s001_t000.edf``: subject ``aaaaaaav``,
  session ``s001``), wherever they lie;
- a file: itself; dataset = its folder's name, subject = its stem.

Events: ``"T1=left_fist,T2=right_fist"`` maps annotation descriptions to labels for every file;
a bare name (``"T0,T1,T2"``) takes each file's label for that annotation from the manifest
column of the same name (empty = not labelled). A file with an events map is labelled from its
annotations, otherwise from its ``label`` column.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmm_eeg.errors import READ_ERRORS, UserInputError
from mmm_eeg.io.recording import natural_key
from mmm_eeg.validation import split_list

#: Extensions read as EEG recordings when a folder is scanned.
EEG_EXTENSIONS = (
    ".edf", ".bdf", ".gdf", ".fif", ".vhdr", ".set", ".cnt", ".csv", ".mat", ".mff", ".eeg",
)  # fmt: skip
_RESERVED = ("path", "subject", "session", "label", "dataset")
#: TUH EEG file names: ``aaaaaaav_s001_t000.edf`` (v2) or ``00000077_s003_t000.edf`` (v1).
_TUH_NAME = re.compile(r"^([A-Za-z0-9]+)_(s\d{3})_t\d{3}$")


@dataclass(frozen=True)
class SourceFile:
    """One file to preprocess and what is known about it."""

    path: Path
    recording_id: str
    dataset: str
    subject: str = ""
    session: str = ""
    label: str | None = None
    events: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    reader: str = "auto"  # "bids": read with mne-bids, sidecars applied
    recording: Any = field(default=None, compare=False, repr=False)  # held in memory already

    def meta(self) -> dict[str, str]:
        """Index metadata of this file."""
        return {
            "dataset": self.dataset, "subject": self.subject, "session": self.session,
            "path": str(self.path), **self.extra,
        }  # fmt: skip


@dataclass(frozen=True)
class Skipped:
    """An input that cannot be used, and why."""

    path: str
    reason: str


def parse_events(spec: str | None) -> tuple[dict[str, str], tuple[str, ...]]:
    """Split an events spec into a global map and the names to read from manifest columns."""
    mapping, columns = {}, []
    for item in split_list(spec) or []:
        if "=" in item:
            key, _, value = item.partition("=")
            if not key.strip() or not value.strip():
                raise UserInputError(f"--events item {item!r} must look like NAME=LABEL.")
            mapping[key.strip()] = value.strip()
        else:
            columns.append(item)
    return mapping, tuple(columns)


def discover_sources(
    inputs: Sequence[str | Path],
    events: str | None = None,
    labels: Sequence[str] | None = None,
) -> tuple[list[SourceFile], list[Skipped]]:
    """Expand input paths into source files (deduplicated) and inputs that were skipped.

    ``labels``, when given, is the set of allowed labels: a manifest row naming another label is
    skipped and reported (a typo must not become a class of its own).
    """
    mapping, columns = parse_events(events)
    allowed = None if labels is None else frozenset(labels)
    if allowed is not None:
        wrong = sorted(set(mapping.values()) - allowed)
        if wrong:
            raise UserInputError(
                f"events maps to {wrong}, not among the allowed labels {sorted(allowed)}; "
                "fix one or the other.",
                parameter="events",
            )
    sources: list[SourceFile] = []
    skipped: list[Skipped] = []
    for raw in inputs:
        path = Path(raw)
        if not path.exists():
            raise UserInputError(f"{path}: no such file or folder. Check the path.")
        if path.is_file() and _is_manifest(path):
            found, bad = read_manifest(path, mapping, columns, allowed)
        elif path.is_dir():
            found, bad = _expand_folder(path, mapping, columns, allowed)
        else:
            found, bad = [_plain_source(path, path.parent, path.parent.name, mapping)], []
        sources += found
        skipped += bad
    unique = {s.recording_id: s for s in sources}
    return list(unique.values()), skipped


def shard_sources(sources: Sequence[SourceFile], spec: str) -> list[SourceFile]:
    """The deterministic slice ``I/N`` (0 <= I < N) of ``sources``, for array jobs.

    Sources are ordered by recording id (natural order) and dealt round-robin, so the N slices
    are disjoint, cover every source, and do not depend on the machine or the input order.
    """
    try:
        i, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise UserInputError(
            f"shard must look like I/N (e.g. 0/8); got {spec!r}.", parameter="shard"
        ) from None
    if n < 1 or not 0 <= i < n:
        raise UserInputError(
            f"shard {spec}: need 0 <= I < N (the first of 8 slices is 0/8; with SLURM use "
            "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT and --array=0-7).",
            parameter="shard",
        )
    ordered = sorted(sources, key=lambda s: natural_key(s.recording_id))
    return ordered[i::n]


def _is_manifest(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    with path.open(newline="", errors="replace") as f:
        header = f.readline()
    return "path" in [h.strip().lower() for h in header.split(",")]


def _expand_folder(
    folder: Path,
    mapping: dict[str, str],
    columns: tuple[str, ...],
    allowed: frozenset[str] | None = None,
) -> tuple[list[SourceFile], list[Skipped]]:
    if (folder / "manifest.csv").is_file():
        return read_manifest(folder / "manifest.csv", mapping, columns, allowed)
    subfolders = sorted((p for p in folder.iterdir() if p.is_dir()), key=natural_key)
    if any((s / "manifest.csv").is_file() for s in subfolders):
        sources: list[SourceFile] = []
        skipped: list[Skipped] = []
        for sub in subfolders:
            found, bad = _expand_folder(sub, mapping, columns, allowed)
            sources += found
            skipped += bad
        return sources, skipped
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in EEG_EXTENSIONS),
        key=lambda p: [natural_key(part) for part in p.relative_to(folder).parts],
    )
    if not files:
        others = sorted({p.suffix.lower() or p.name for p in folder.rglob("*") if p.is_file()})
        reason = f"no file with an EEG extension ({', '.join(EEG_EXTENSIONS)}) in the folder" + (
            f"; found only {', '.join(others[:6])}" if others else "; the folder is empty"
        )
        return [], [Skipped(str(folder), reason)]
    return [_plain_source(p, folder, folder.name, mapping) for p in files], []


def _plain_source(path: Path, root: Path, dataset: str, mapping: dict[str, str]) -> SourceFile:
    parts = path.relative_to(root).parts[:-1]
    subject, session = (parts[0] if parts else path.stem), (parts[1] if len(parts) > 1 else "")
    tuh = _TUH_NAME.match(path.stem)
    if tuh is not None:  # TUH names its files SUBJECT_sNNN_tNNN whatever the folder layout
        subject, session = tuh.group(1), tuh.group(2)
    return SourceFile(
        path=path,
        recording_id=f"{dataset}/{path.relative_to(root).as_posix()}",
        dataset=dataset,
        subject=subject,
        session=session,
        events=dict(mapping),
    )


def read_manifest(
    manifest: str | Path,
    mapping: dict[str, str] | None = None,
    columns: tuple[str, ...] = (),
    allowed: frozenset[str] | None = None,
) -> tuple[list[SourceFile], list[Skipped]]:
    """Read a manifest CSV; rows with a missing file or (given ``allowed``) an unknown label
    are skipped.

    Parameters
    ----------
    manifest : str | path-like
        CSV with at least a ``path`` column: absolute paths, or paths relative to the
        manifest's folder.
    mapping : dict | None
        Global annotation -> label map.
    columns : tuple of str
        Annotation names whose labels come from the manifest column of that name (a manifest
        without such a column labels nothing from it).
    allowed : frozenset of str | None
        The labels a row may give (None: any).

    Returns
    -------
    sources : list of SourceFile
        Usable rows.
    skipped : list of Skipped
        Rows that cannot be used, with the row number and the reason.
    """
    import pandas as pd

    manifest = Path(manifest)
    try:
        table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except READ_ERRORS as err:  # pandas' ParserError, EmptyDataError, UnicodeDecodeError
        raise UserInputError(f"{manifest}: not a readable CSV manifest ({err}).") from err
    if "path" not in table.columns:
        raise UserInputError(
            f"{manifest}: no 'path' column; a manifest needs one (relative to its folder), "
            f"optionally with subject, session, label. Columns found: {list(table.columns)}."
        )
    root = manifest.parent.resolve()
    dataset_default = manifest.parent.name
    sources, skipped = [], []
    for row_number, row in enumerate(table.to_dict("records"), start=2):
        where = f"{manifest}, row {row_number}"
        # The manifest is the user's own file: absolute paths, and paths relative to its folder.
        target = (root / str(row["path"]).strip()).resolve()
        if not target.is_file():
            skipped.append(Skipped(where, f"file {row['path']!r} not found (looked at {target})"))
            continue
        events = dict(mapping or {})
        events.update({c: row[c] for c in columns if row.get(c, "")})
        given = set(events.values()) if events else {row.get("label") or None} - {None}
        if allowed is not None and given - allowed:
            skipped.append(
                Skipped(
                    where,
                    f"label {sorted(given - allowed)[0]!r} is not one of the allowed labels "
                    f"{sorted(allowed)}; correct the row or add the label to the allowed labels",
                )
            )
            continue
        dataset = row.get("dataset") or dataset_default
        sources.append(
            SourceFile(
                path=target,
                recording_id=f"{dataset}/{Path(row['path']).as_posix()}",
                dataset=dataset,
                subject=row.get("subject", "") or target.stem,
                session=row.get("session", ""),
                label=None if events else (row.get("label") or None),
                events=events,
                extra={k: v for k, v in row.items() if k not in _RESERVED and k not in columns},
            )
        )
    return sources, skipped
