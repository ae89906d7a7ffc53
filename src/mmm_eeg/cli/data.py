"""Commands on recordings and corpora: ``montage``, ``preprocess``, ``corpus info|merge``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from mmm_eeg.cli.common import app, console, corpus_app, err_console, print_note, user_errors
from mmm_eeg.cli.options import config_options
from mmm_eeg.errors import UserInputError
from mmm_eeg.mapping import DEFAULT_TOLERANCE_MM
from mmm_eeg.validation import split_list
from mmm_eeg.windows import PreprocessConfig


@app.command()
@user_errors
def montage(
    source: Annotated[
        str, typer.Argument(help="An EEG file, or channel names separated by commas.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    plot: Annotated[
        Path | None, typer.Option(help="Write a top-view picture of the mapping (PNG, SVG, PDF).")
    ] = None,
    positions: Annotated[
        str | None,
        typer.Option("--montage", help="Electrode positions: an MNE montage name or file."),
    ] = None,
    tolerance_mm: Annotated[
        float, typer.Option(help="Furthest an electrode may be from the node it feeds (mm).")
    ] = DEFAULT_TOLERANCE_MM,
    on_unknown: Annotated[
        Literal["raise", "drop"], typer.Option(help="Unknown names without a position.")
    ] = "raise",
    bipolar: Annotated[
        Literal["exclude", "midpoint", "raise"], typer.Option(help="Bipolar derivations.")
    ] = "exclude",
) -> None:
    """Show how a recording's channels map onto the unified 62-node topology."""
    from mmm_eeg.topology import UnifiedTopology

    names, types, file_positions = _channels_of(source)
    topology = UnifiedTopology.default()
    mapping = topology.map_channels(
        names,
        positions if positions is not None else (file_positions or None),
        types=types,
        tolerance_mm=tolerance_mm,
        on_unknown=on_unknown,
        bipolar=bipolar,
    )
    if plot is not None:
        from mmm_eeg.viz import plot_topology

        plot_topology(topology, mapping, file_positions, fname=plot)
    if as_json:
        sys.stdout.write(json.dumps(mapping.to_dict(), indent=2) + "\n")
        return
    _print_mapping(mapping, source)
    if plot is not None:
        console.print(f"Picture written to {plot}")


@app.command()
@user_errors
@config_options(
    PreprocessConfig, skip=("bands", "epoch_tmin"), flags={"max_amplitude_uv": "--max-amplitude"}
)
def preprocess(
    inputs: Annotated[
        list[Path], typer.Argument(help="EEG files, folders (recursive) or manifest CSVs.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Corpus folder (created or extended).")],
    manifest: Annotated[
        Path | None, typer.Option(help="A manifest CSV (path, subject, ...).")
    ] = None,
    events: Annotated[
        str | None,
        typer.Option(
            help="T1=left_fist,T2=right_fist, or T0,T1,T2 to read labels from manifest columns."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Processes reading files.")] = 1,
    dtype: Annotated[
        Literal["float32", "float16"], typer.Option(help="Feature storage.")
    ] = "float32",
    commit_every: Annotated[
        int, typer.Option(help="Windows per commit (what a killed run keeps).")
    ] = 65536,
    shard: Annotated[
        str | None,
        typer.Option(help="I/N: only the I-th of N deterministic slices of the inputs."),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(help="Allowed labels, e.g. rest,arithmetic: rows with others are skipped."),
    ] = None,
    wait: Annotated[
        bool, typer.Option(help="If another job is writing the corpus, wait for it.")
    ] = False,
    task: Annotated[str | None, typer.Option(help="BIDS inputs: only this task.")] = None,
    subjects: Annotated[
        str | None, typer.Option(help="BIDS inputs: only these subjects, e.g. 01,02.")
    ] = None,
    label_from: Annotated[
        str | None,
        typer.Option(help="BIDS inputs: events:trial_type, or participants:COLUMN."),
    ] = None,
    epochs_from: Annotated[
        str | None,
        typer.Option(
            help="Event-locked windows: one per event of this map (1=house,2=face, or T1,T2 "
            "from manifest columns), from --tmin to --tmax around its onset."
        ),
    ] = None,
    tmin: Annotated[
        float | None,
        typer.Option(help="Event-locked windows start this many seconds after onset (0)."),
    ] = None,
    tmax: Annotated[
        float | None,
        typer.Option(help="Event-locked windows end this many seconds after onset."),
    ] = None,
    options: dict[str, Any] | None = None,
) -> None:
    """Turn EEG recordings into DE windows on the unified topology, stored as a corpus."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from mmm_eeg.corpus.build import build_corpus
    from mmm_eeg.io.inputs import discover_inputs

    options = {k: v for k, v in (options or {}).items() if v is not None}
    if epochs_from is not None or tmax is not None or tmin is not None:
        events, options = _event_locked(events, epochs_from, tmin or 0.0, tmax, options)
    config = PreprocessConfig(**options)
    sources, skipped = discover_inputs(
        [*inputs, *([manifest] if manifest else [])], events, labels=split_list(labels),
        task=task, subjects=split_list(subjects), label_from=label_from, shard=shard,
    )  # fmt: skip
    if not sources:
        reasons = "".join(f"\n  {item.path}: {item.reason}" for item in skipped)
        raise UserInputError(
            "No EEG files found in the inputs. Give files, folders or a manifest."
            + (f" Skipped:{reasons}" if reasons else "")
        )
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=err_console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("preprocessing", total=len(sources))
        report = build_corpus(
            sources, out, config=config, dtype=dtype, workers=workers, skipped=skipped,
            commit_windows=commit_every, wait=wait,
            on_progress=lambda done, total, name: progress.update(
                task, completed=done, total=total, description=name[:40]
            ),
        )  # fmt: skip
    console.print(
        f"Corpus {out}: {report['corpus_recordings']} recordings, {report['corpus_windows']} "
        f"windows, {report['corpus_hours']} h (this run: +{report['recordings_added']} "
        f"recordings, +{report['windows_added']} windows; {report['already_done']} already "
        f"done) in {report['runtime_s']} s",
        highlight=False,
    )
    if report["dropped_windows"]:
        console.print(f"Dropped windows: {report['dropped_windows']}", highlight=False)
    if report["absent_channels"]:
        console.print(f"Channels absent for a whole recording: {report['absent_channels']}")
    for item in report["skipped"]:
        print_note("Skipped", item["reason"])
    if report["corpus_windows"] == 0:
        raise UserInputError(
            "No window could be extracted from any input; see the reasons above"
            + (f" ({out} was not created)." if report.get("removed_empty_corpus") else ".")
        )
    console.print(f"Report: {out / 'report.json'}")


@corpus_app.command("info")
@user_errors
def corpus_info(
    path: Annotated[Path, typer.Argument(help="Corpus folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise a corpus: windows, hours, recordings, subjects, labels per dataset."""
    from mmm_eeg.corpus import Corpus
    from mmm_eeg.corpus.summary import corpus_summary

    summary = corpus_summary(Corpus(path))
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    console.print(
        f"{summary['path']}: {summary['windows']} windows ({summary['window_s']:g} s, "
        f"{summary['method']} DE, {summary['dtype']}), {summary['hours']} h, "
        f"{summary['recordings']} recordings",
        highlight=False,
    )
    table = Table()
    for column in ("dataset", "windows", "recordings", "subjects", "nodes", "labels"):
        table.add_column(column)
    for name, d in summary["datasets"].items():
        labels = ", ".join(f"{k} {v}" for k, v in d["labels"].items()) or "—"
        table.add_row(name, str(d["windows"]), str(d["recordings"]), str(d["subjects"]),
                      str(d["mean_present_nodes"]), labels)  # fmt: skip
    console.print(table)


@corpus_app.command("merge")
@user_errors
def corpus_merge(
    parts: Annotated[list[Path], typer.Argument(help="Corpus folders (e.g. one per --shard).")],
    out: Annotated[Path, typer.Option("--out", help="The merged corpus (a new folder).")],
    copy: Annotated[
        bool, typer.Option(help="Copy the feature stores instead of hard-linking them.")
    ] = False,
) -> None:
    """Merge corpora built with the same settings into one (features linked, not copied)."""
    from mmm_eeg.corpus.merge import merge_corpora

    result = merge_corpora(parts, out, copy=copy)
    mb = 1024**2
    console.print(
        f"Merged {result['parts']} corpora into {out}: {result['recordings']} recordings, "
        f"{result['windows']} windows; features hard-linked {result['linked_bytes'] / mb:.1f} MB,"
        f" copied {result['copied_bytes'] / mb:.1f} MB.",
        highlight=False,
    )


def _channels_of(source: str) -> tuple[list[str], list[str] | None, dict]:
    """Channel names, types and positions from a file path or a comma-separated list."""
    from mmm_eeg.io import read_channel_info
    from mmm_eeg.io.sources import EEG_EXTENSIONS

    path = Path(source)
    if path.exists() or (path.suffix.lower() in EEG_EXTENSIONS and "," not in source):
        info = read_channel_info(path)
        return list(info.names), list(info.types) if info.types else None, info.positions
    names = split_list(source) or []
    if not names:
        raise UserInputError(f"SOURCE {source!r} is neither a file nor a list of channel names.")
    return names, None, {}


def _print_mapping(mapping: Any, source: str) -> None:
    table = Table(
        title=f"{Path(source).name if len(source) < 200 else 'channels'} → {mapping.topology.name}"
    )
    for column in ("channel", "node", "region", "method", "distance (mm)", "note"):
        table.add_column(column)
    for ch in mapping.channels:
        table.add_row(
            ch.name,
            ch.node_name or "—",
            "—" if ch.region is None else str(ch.region),
            ch.method or "unmapped",
            "" if ch.distance_mm is None else f"{ch.distance_mm:.1f}",
            ch.reason or "",
        )
    for ex in mapping.excluded:
        table.add_row(ex.name, "—", "—", "excluded", "", ex.reason, style="dim")
    console.print(table)
    counts = mapping.counts()
    console.print(
        f"{mapping.n_present} of {mapping.topology.n_nodes} nodes present · by name "
        f"{counts['name']} · by alias {counts['alias']} · by position {counts['position']} · "
        f"unmapped {counts['unmapped']} · excluded {counts['excluded']}",
        highlight=False,
    )


def _event_locked(
    events: str | None,
    epochs_from: str | None,
    tmin: float,
    tmax: float | None,
    options: dict[str, Any],
) -> tuple[str | None, dict[str, Any]]:
    """The events map and the preprocessing options of --epochs-from/--tmin/--tmax."""
    if epochs_from is not None and events is not None:
        raise UserInputError(
            "Give the events once: --epochs-from for event-locked windows, --events for "
            "windows labelled by annotation spans.",
            parameter="epochs_from",
        )
    if tmax is None or tmax <= tmin:
        raise UserInputError(
            f"Event-locked windows need --tmax after --tmin ({tmin:g} s), e.g. --tmin -0.1 "
            "--tmax 0.9 for 1 s windows.",
            parameter="tmax",
        )
    window = round(tmax - tmin, 9)
    if "window" in options and options["window"] != window:
        raise UserInputError(
            f"--window {options['window']:g} contradicts --tmin/--tmax ({window:g} s); drop "
            "--window.",
            parameter="window",
        )
    return epochs_from or events, {**options, "window": window, "epoch_tmin": tmin}
