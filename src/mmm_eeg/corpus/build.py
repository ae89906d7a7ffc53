"""``mmm-eeg preprocess``: source files -> windows -> corpus, in parallel, resumable.

Workers (processes) read and featurise recordings; the parent alone writes the corpus, so the
store has one writer. Recordings already committed are skipped, so rerunning a killed job
resumes it. A file that fails is skipped and reported with its reason; the rest goes on.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from mmm_eeg.atomic import check_output_folder, write_json
from mmm_eeg.corpus.writer import CorpusWriter
from mmm_eeg.errors import UserInputError
from mmm_eeg.io.bids import read_bids_recording
from mmm_eeg.io.readers import read_recording
from mmm_eeg.io.recording import Recording
from mmm_eeg.io.seed import read_seed_features, read_seed_raw
from mmm_eeg.io.sources import Skipped, SourceFile
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.windows import PreprocessConfig, WindowSet, extract_windows, feature_windows

logger = logging.getLogger(__name__)

Result = tuple[SourceFile, list[tuple[str, dict[str, Any], WindowSet]], str | None]


def process_source(
    source: SourceFile, topology: UnifiedTopology, config: PreprocessConfig
) -> Result:
    """Windows of one source (several for a SEED .mat), or the reason it failed."""
    try:
        if source.recording is not None:
            recording = source.recording
        elif source.path.suffix.lower() == ".mat":
            return source, _seed_windows(source, topology, config), None
        elif source.reader == "bids":
            recording = read_bids_recording(source.path)
        else:
            recording = read_recording(source.path)
        windows = extract_windows(
            recording, topology, config, label=source.label, events=source.events or None
        )
        return source, [(source.recording_id, source.meta(), windows)], None
    except UserInputError as err:  # the readers turn a bad file into one; a bug propagates
        return source, [], str(err)


def _seed_windows(
    source: SourceFile, topology: UnifiedTopology, config: PreprocessConfig
) -> list[tuple[str, dict[str, Any], WindowSet]]:
    from scipy.io import whosmat

    keys = [name for name, _, _ in whosmat(source.path)]
    out = []
    if any(k.startswith("de_LDS") for k in keys):
        for trial in read_seed_features(source.path):
            meta = {
                **source.meta(),
                "subject": str(trial.meta["subject"]),
                "trial": trial.meta["trial"],
            }
            out.append(
                (
                    f"{source.recording_id}#{trial.meta['trial']}",
                    meta,
                    feature_windows(trial, topology),
                )
            )
        return out
    for rec in read_seed_raw(source.path):
        meta = {**source.meta(), "subject": str(rec.meta["subject"]), "trial": rec.meta["trial"]}
        windows = extract_windows(rec, topology, config, label=str(rec.meta["label"]))
        out.append((f"{source.recording_id}#{rec.meta['trial']}", meta, windows))
    return out


def build_corpus(
    sources: Sequence[SourceFile],
    out: str | Path,
    topology: UnifiedTopology | None = None,
    config: PreprocessConfig | None = None,
    dtype: str = "float32",
    workers: int = 1,
    skipped: Sequence[Skipped] = (),
    on_progress: Callable[[int, int, str], None] | None = None,
    commit_windows: int = 65536,
    wait: bool = False,
) -> dict[str, Any]:
    """Preprocess sources into the corpus at ``out``; return (and save) the run's report.

    Parameters
    ----------
    sources : sequence of SourceFile
        From :func:`mmm_eeg.io.sources.discover_sources`.
    out : str | path-like
        Corpus folder; an existing corpus is extended (finished recordings are skipped).
    topology : UnifiedTopology | None
        Default: the 62-node topology.
    config : PreprocessConfig | None
        Preprocessing settings (default: 1 s windows, fft DE, 5 bands).
    dtype : {"float32", "float16"}
        Feature storage type.
    workers : int
        Processes reading and featurising files.
    skipped : sequence of Skipped
        Inputs already rejected during discovery, to include in the report.
    on_progress : callable | None
        Called as ``on_progress(done, total, name)`` after each file.
    commit_windows : int
        Commit (make durable and visible) once this many windows are pending.
    wait : bool
        When another process is writing the corpus, wait for it instead of refusing.

    Returns
    -------
    dict
        The report (also in ``out/report.json``): recordings, windows, hours, skipped (path
        and reason), dropped windows by reason. When ``out`` was created by this run and no
        window was stored, the folder is removed again and the report only returned.
    """
    topology = topology or UnifiedTopology.default()
    config = config or PreprocessConfig()
    check_output_folder(out)
    new_folder = not Path(out).exists()
    started = time.perf_counter()
    writer = CorpusWriter(
        out,
        topology,
        config,
        dtype=dtype,
        commit_windows=commit_windows,  # type: ignore[arg-type]
        wait=wait,
    )
    todo = [s for s in sources if not _finished(s, writer.done)]
    report: dict[str, Any] = {
        "sources": len(sources),
        "already_done": len(sources) - len(todo),
        "recordings_added": 0,
        "windows_added": 0,
        "skipped": [{"path": s.path, "reason": s.reason} for s in skipped],
        "dropped_windows": Counter(),
        "absent_channels": Counter(),
    }
    try:
        for done, (source, windowsets, error) in enumerate(
            _run(todo, topology, config, workers), 1
        ):
            if error is not None:
                report["skipped"].append({"path": str(source.path), "reason": error})
            for recording_id, meta, windows in windowsets:
                writer.add(recording_id, meta, windows)
                report["recordings_added"] += 1
                report["windows_added"] += len(windows)
                report["dropped_windows"].update(windows.dropped)
                report["absent_channels"].update(windows.absent_channels.values())
            if on_progress is not None:
                on_progress(done, len(todo), source.path.name)
    except BaseException:
        # Interrupted (Ctrl-C, disk full): commit the complete recordings if the disk allows
        # (a commit is atomic either way), then report the interruption.
        with contextlib.suppress(OSError):
            writer.close()
        raise
    writer.close()
    hop = config.step or config.window
    report.update(
        corpus_windows=writer.meta["n_windows"],
        corpus_hours=round(writer.meta["n_windows"] * hop / 3600, 3),
        corpus_recordings=len(writer.done),
        hours_added=round(report["windows_added"] * hop / 3600, 3),
        runtime_s=round(time.perf_counter() - started, 2),
        dropped_windows=dict(report["dropped_windows"]),
        absent_channels=dict(report["absent_channels"]),
    )
    if new_folder and writer.meta["n_windows"] == 0:
        shutil.rmtree(out)  # every input refused: leave no empty corpus behind
        report["removed_empty_corpus"] = True
        return report
    write_json(Path(out) / "report.json", report)
    return report


def build_corpus_from_recordings(
    items: Iterable[tuple[Any, str, str | Mapping[str, str] | None]],
    out: str | Path,
    dataset: str = "memory",
    **kwargs: Any,
) -> dict[str, Any]:
    """Build a corpus from recordings held in memory, with no files in between.

    Parameters
    ----------
    items : iterable of (Recording or mne.Epochs, subject, label or events)
        Each recording (e.g. ``Recording.from_array(data, sfreq, ch_names, unit=1e-6)``), its
        subject, and either one label for all its windows, an annotation -> label map (windows
        labelled from ``recording.annotations``), or None. ``recording.meta["name"]`` names it
        in the corpus (default: ``SUBJECT/NNNNN``, by position), which is what a rerun resumes
        by. An ``mne.Epochs`` gives one window per epoch, its first ``window`` seconds (an
        event-locked corpus: ``config.epoch_tmin`` is the epochs' ``tmin``; without a
        ``config``, one is made from the first epochs: ``window = tmax - tmin``), labelled by
        its event's name (None), one label, or an event name -> label map (epochs of other
        events are left out); the windows' ``start_s`` count the epochs end to end.
    out : str | path-like
        Corpus folder (created or extended).
    dataset : str
        The ``dataset`` column of these recordings.
    **kwargs
        :func:`build_corpus` options (``config``, ``workers``, ``on_progress``, ...).

    Returns
    -------
    dict
        The run's report; an item that is not a ``(Recording, subject, labels)`` triple, or whose
        recording fails, is skipped and listed there with the reason.
    """
    sources, skipped, kinds = [], [], set()
    for i, item in enumerate(items):
        if not (isinstance(item, tuple) and len(item) == 3 and _readable(item[0])):
            skipped.append(
                Skipped(f"item {i}", "not a (Recording or Epochs, subject, labels) triple")
            )
            continue
        recording, subject, labels = item
        kinds.add(isinstance(recording, Recording))
        if len(kinds) > 1:  # epochs set the corpus's configuration to one window per epoch
            raise UserInputError(
                "Give mne.Epochs and continuous recordings in separate calls (separate corpora, "
                "or merge them): epochs make the corpus's windows one per epoch.",
                parameter="items",
            )
        if not isinstance(recording, Recording):
            resample = getattr(kwargs.get("config"), "resample", None)
            if resample is not None:
                raise UserInputError(
                    "Epochs laid end to end would be resampled across their seams; resample "
                    f"them first (epochs.resample({resample:g})) and leave config.resample unset.",
                    parameter="config",
                )
            try:  # the corpus's configuration comes from the first epochs that are used
                config = _epochs_config(recording, kwargs.get("config"))
                labels = _epochs_events(recording, labels)
                kwargs["config"] = config
            except UserInputError as err:
                skipped.append(Skipped(f"item {i}", str(err)))
                continue
            recording = Recording.from_epochs_end_to_end(recording)
        name = str(recording.meta.get("name") or f"{subject}/{i:05d}")
        events = dict(labels) if isinstance(labels, Mapping) else {}
        sources.append(
            SourceFile(
                path=Path(f"<memory>/{dataset}/{name}"),
                recording_id=f"{dataset}/{name}",
                dataset=dataset,
                subject=str(subject),
                label=None if isinstance(labels, Mapping) else labels,
                events=events,
                recording=recording,
            )
        )
    return build_corpus(sources, out, skipped=[*kwargs.pop("skipped", ()), *skipped], **kwargs)


def _readable(item: Any) -> bool:
    if isinstance(item, Recording):
        return True
    import mne

    return isinstance(item, mne.BaseEpochs)


def _epochs_config(epochs: Any, config: PreprocessConfig | None) -> PreprocessConfig:
    """The corpus's configuration for event-locked windows that are these epochs."""
    tmin, sfreq = float(epochs.tmin), float(epochs.info["sfreq"])
    if config is None:
        return PreprocessConfig(window=round(float(epochs.tmax) - tmin, 6), epoch_tmin=tmin)
    if config.epoch_tmin is None or abs(config.epoch_tmin - tmin) > 0.5 / sfreq:
        raise UserInputError(
            f"Its epochs start at tmin={tmin:g} s, the corpus's windows at "
            f"epoch_tmin={config.epoch_tmin}; give config=PreprocessConfig(epoch_tmin={tmin:g}, "
            "window=...) or no config (one is made from the epochs).",
            parameter="config",
        )
    if round(config.window * sfreq) > len(epochs.times):
        raise UserInputError(
            f"Its epochs are {len(epochs.times) / sfreq:g} s long, shorter than the "
            f"corpus's {config.window:g} s windows; epoch from tmin to at least tmin + window.",
            parameter="config",
        )
    return config


def _epochs_events(epochs: Any, labels: str | Mapping[str, str] | None) -> dict[str, str]:
    """Event name -> label of an ``mne.Epochs`` item: its event names (None), one label for
    every event, or the map given (its names checked against the epochs')."""
    names = list(epochs.event_id)
    if labels is None:
        return {name: name for name in names}
    if isinstance(labels, str):
        return dict.fromkeys(names, labels)
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise UserInputError(
            f"Events {unknown} are not among the epochs' events {names}.", parameter="items"
        )
    return dict(labels)


def _finished(source: SourceFile, done: set[str]) -> bool:
    return source.recording_id in done or any(d.startswith(source.recording_id + "#") for d in done)


def _run(
    todo: Sequence[SourceFile], topology: UnifiedTopology, config: PreprocessConfig, workers: int
) -> Iterable[Result]:
    if workers <= 1 or len(todo) <= 1:
        for source in todo:
            yield process_source(source, topology, config)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(process_source, s, topology, config) for s in todo]
        for future in futures:
            yield future.result()
