"""The ``mmm-eeg`` command: a thin layer over the Python API.

User mistakes (:class:`mmm_eeg.errors.UserInputError`) end with one message on stderr and exit
code 2; ``--verbose`` shows the traceback as well.
"""

from __future__ import annotations

import errno
import inspect
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import MISSING, fields
from functools import wraps
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mmm_eeg import __version__
from mmm_eeg.errors import UserInputError
from mmm_eeg.mapping import DEFAULT_TOLERANCE_MM
from mmm_eeg.train.config import FinetuneConfig, PretrainConfig, resolve_config
from mmm_eeg.windows import PreprocessConfig

app = typer.Typer(
    name="mmm-eeg",
    help="Topology-agnostic EEG representation learning (MMM).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# No markup in what we print: messages hold paths, channel names and pip extras in brackets
# ("mmm-eeg[onnx]") that rich markup would eat. Styles are applied with Text, explicitly.
console = Console(markup=False, highlight=False)
err_console = Console(stderr=True, markup=False, highlight=False)
#: errno values of a full disk, a file-size limit and an exhausted quota.
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def _verbose() -> bool:
    """Whether ``--verbose`` was given: it sets the package logger to INFO (as MNE's does)."""
    return logging.getLogger("mmm_eeg").isEnabledFor(logging.INFO)


def _quiet_lightning() -> None:
    """Lightning's INFO lines and tips only with ``--verbose``, and each line once.

    Importing Lightning gives its logger a handler of its own at INFO, which also propagates to
    ours (every line twice); so this runs after a training module has imported Lightning.
    """
    import lightning  # noqa: F401  (already imported by the training modules)

    level = logging.INFO if _verbose() else logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):  # each sets INFO itself
        logging.getLogger(name).setLevel(level)
    logging.getLogger("lightning").propagate = False


def _flag_hint(err: UserInputError) -> str:
    """The command-line flag of the Python parameter an error names, when there is one."""
    if err.parameter is None:
        return ""
    return f" (command-line option --{err.parameter.replace('_', '-')})"


def _parameter_help(cls: type) -> dict[str, str]:
    """Each parameter's description from the numpydoc ``Parameters`` sections of ``cls``'s MRO."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        lines = inspect.cleandoc(klass.__doc__ or "").splitlines()
        if "Parameters" not in lines:
            continue
        name = None
        for line in lines[lines.index("Parameters") + 2 :]:
            if line and not line.startswith(" "):
                if " : " not in line:
                    break  # the next section
                name = line.split(" : ")[0]
                found[name] = ""
            elif name and line.strip():
                found[name] = f"{found[name]} {line.strip()}".strip()
    return found


def _config_options(
    cls: type, *, skip: tuple[str, ...] = (), flags: dict[str, str] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command one option per field of the config dataclass ``cls``.

    The command declares its own arguments and a last parameter ``options``; it receives the
    fields given on the command line (None: not given) in ``options``. Choices come from
    ``Literal`` field types, help from the dataclass's docstring, flag names from the field names
    (or ``flags``), so the command line never restates a config field by hand. A ``list[str]``
    field is given comma-separated.
    """
    hints = get_type_hints(cls)
    helps = _parameter_help(cls)
    flags = flags or {}

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p
            for p in inspect.signature(func, eval_str=True).parameters.values()
            if p.name != "options"
        ]
        taken = {p.name for p in own}
        added, lists = [], set()
        for f in fields(cls):
            if f.name in skip or f.name in taken:
                continue
            kind = _option_type(hints[f.name])
            if kind is list:
                kind = str
                lists.add(f.name)
            default = f.default if f.default is not MISSING else None
            info = typer.Option(
                *([flags[f.name]] if f.name in flags else []),
                help=escape(helps.get(f.name, "")),  # rich would read "[...]" as markup
                show_default=str(default) if default is not None else False,
            )
            added.append(
                inspect.Parameter(
                    f.name,
                    inspect.Parameter.KEYWORD_ONLY,
                    default=None,
                    annotation=Annotated[kind | None, info],
                )
            )

        @wraps(func)
        def command(**kwargs: Any) -> Any:
            options = {p.name: kwargs.pop(p.name) for p in added}
            for name in lists:
                if options[name] is not None:
                    options[name] = [v.strip() for v in options[name].split(",") if v.strip()]
            return func(**kwargs, options=options)

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + added
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        return command

    return decorate


def _option_type(hint: Any) -> Any:
    """The command-line type of a config field (typer turns a ``Literal`` into choices)."""
    args = [a for a in get_args(hint) if a is not type(None)]
    if get_origin(hint) in (Union, UnionType) and len(args) == 1:
        hint = args[0]
    return list if get_origin(hint) is list else hint


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a UserInputError into one message and exit code 2; scope the command's warnings."""

    resumable = "resume" in inspect.signature(func).parameters
    rerun = (
        "rerun the same command (with --resume once a checkpoint or fold was written)"
        if resumable
        else "rerun the same command"
    )

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():  # for this command only
                if not _verbose():
                    # Other libraries' notices (deprecations, Lightning's tips) mean nothing to a
                    # user of this command; mmm-eeg's own warnings still show.
                    warnings.filterwarnings("ignore", module=r"(?!mmm_eeg)")
                return func(*args, **kwargs)
        except UserInputError as err:
            if _verbose():
                err_console.print_exception()
            _error(f"{err}{_flag_hint(err)}")
            raise typer.Exit(2) from None
        except OSError as err:
            if err.errno not in _DISK_FULL:
                raise
            if _verbose():
                err_console.print_exception()
            _error(
                f"no space left while writing {err.filename or 'output'} "
                f"({err.strerror}). Free some space and {rerun}: finished work is kept and "
                "the rest resumes.",
            )
            raise typer.Exit(1) from None

    return wrapper


def _error(message: str) -> None:
    """``Error: message`` on stderr, the message printed as it is (no markup)."""
    err_console.print(Text.assemble(("Error:", "bold red"), " ", message), soft_wrap=True)


def _note(label: str, message: str) -> None:
    """``label message`` on stderr (a skipped file), the message printed as it is."""
    err_console.print(Text.assemble((label, "yellow"), " ", message), soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"mmm-eeg {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log details and tracebacks.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    logging.basicConfig(format="%(message)s")
    logging.getLogger("mmm_eeg").setLevel(logging.INFO if verbose else logging.WARNING)


@app.command()
@_user_errors
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
@_user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("demo_out"),
    data: Annotated[Path | None, typer.Option(help="A folder laid out like ../shared/eeg.")] = None,
) -> None:
    """The whole pipeline in a few minutes: preprocess, pretrain, fine-tune, compare.

    Runs the quick transfer benchmark on the real recordings ($MMM_EEG_DATA or ../shared/eeg)
    when they exist, otherwise on a built-in SYNTHETIC multi-montage collection.
    """
    from mmm_eeg.datasets import default_data_dir
    from mmm_eeg.experiments.transfer import demo_markdown, run_transfer_benchmark

    _quiet_lightning()

    data = data or default_data_dir()
    if (data / "eegmat").is_dir():
        console.print(f"Real recordings: {data}", highlight=False)
    else:
        from mmm_eeg.synthetic import write_synthetic_collection

        data = out / "synthetic_eeg" / "eeg"
        console.print(
            "No recordings found (set MMM_EEG_DATA); writing a SYNTHETIC collection to "
            f"{data} (1/f background, alpha and theta rhythms, a two-class band-power effect).",
            highlight=False,
        )
        if not (data / "eegmat" / "manifest.csv").is_file():
            write_synthetic_collection(data)
    console.print("Preprocessing, pretraining on the pool, fine-tuning (quick settings)...")
    result = run_transfer_benchmark(data, out, quick=True)
    console.print(
        "Rest vs mental arithmetic on 12 held-out eegmat subjects: balanced accuracy per "
        "subject, mean ± std (chance 0.5). MMM probes: logistic regression on the frozen "
        "encoder; mmm_tuh: the authors' released encoder.",
        highlight=False,
    )
    console.print(demo_markdown(result), highlight=False, soft_wrap=True)
    console.print(
        f"All columns: {out / 'results.md'}; figure: {out / 'plots' / 'methods.png'}. "
        "Quick settings: MMM is fine-tuned on 2 folds for a few epochs, too short to leave "
        "chance; its probes read the same encoders. The full benchmark: bench/transfer.py, "
        "docs/benchmarks.md. "
        "On your own files: mmm-eeg preprocess YOUR_FOLDER --out corpus; mmm-eeg pretrain "
        "corpus --out run; mmm-eeg finetune corpus --init run --out results.",
        highlight=False,
    )


benchmark_app = typer.Typer(help="Benchmarks on real data.", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")


@benchmark_app.command("transfer")
@_user_errors
def benchmark_transfer(
    data: Annotated[Path, typer.Option("--data", help="A folder laid out like ../shared/eeg.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    quick: Annotated[bool, typer.Option(help="2 folds, a few epochs (same code path).")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    checkpoint: Annotated[Path | None, typer.Option(help="The released TUH encoder .pt.")] = None,
) -> None:
    """Cross-montage transfer: pretraining on pooled montages against strong baselines."""
    from mmm_eeg.experiments.transfer import results_markdown, run_transfer_benchmark

    _quiet_lightning()

    result = run_transfer_benchmark(data, out, quick=quick, seed=seed, checkpoint=checkpoint)
    console.print(results_markdown(result), highlight=False)
    console.print(f"Written: {out / 'results.json'}, {out / 'results.md'}, {out / 'plots'}")


@benchmark_app.command("ablations")
@_user_errors
def benchmark_ablations(
    data: Annotated[Path, typer.Option("--data", help="A folder laid out like ../shared/eeg.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (reruns reuse it).")],
    quick: Annotated[
        bool, typer.Option(help="1 seed, 2 epochs, a tiny model (checks the pipeline).")
    ] = False,
    seed: Annotated[int, typer.Option(help="First pretraining seed.")] = 0,
) -> None:
    """The paper's ablations: each MMM ingredient on and off, MMM against a plain MAE."""
    from mmm_eeg.experiments.ablations import ablations_markdown, run_ablations

    _quiet_lightning()
    result = run_ablations(data, out, quick=quick, seed=seed)
    console.print(ablations_markdown(result), highlight=False)
    console.print(f"Written: {out / 'results.json'}, {out / 'results.md'}, {out / 'plots'}")


@app.command()
@_user_errors
def convert(
    src: Annotated[
        Path, typer.Argument(help="A PhysioPro .pt state dict or an mmm-eeg model dir.")
    ],
    dst: Annotated[Path, typer.Argument(help="Output: a directory (--to mmm) or a .pt file.")],
    to: Annotated[Literal["mmm", "physiopro"], typer.Option(help="Target format.")] = "mmm",
    heads: Annotated[int, typer.Option(help="Attention heads (not stored in .pt files).")] = 8,
) -> None:
    """Convert encoder checkpoints between the reference (PhysioPro) format and ours.

    A PhysioPro file becomes a model directory with the released model's input contract (the
    paper's: 1 s windows, 5-band DE, per-subject z-scoring, noise-filled absent nodes).
    """
    import torch

    from mmm_eeg.atomic import atomic_path
    from mmm_eeg.model import to_physiopro_state_dict
    from mmm_eeg.model.loading import resolve_model

    # A reference checkpoint is taken to be fed as the paper states (mmm_base_tuh's card).
    resolved = resolve_model(src, heads=heads)
    encoder = resolved.encoder
    report = encoder.load_report
    if report is not None:
        console.print(
            f"Loaded {len(report['loaded'])} tensors; from initialisation: "
            f"{', '.join(report['initialised']) or 'none'}; ignored: "
            f"{', '.join(report['ignored']) or 'none'}",
            highlight=False,
        )
    if to == "mmm":
        encoder.save_pretrained(dst, metadata={"converted_from": str(src)})
    else:
        with atomic_path(dst) as tmp:
            torch.save(to_physiopro_state_dict(encoder), tmp)
    console.print(f"Wrote {dst} ({to} format)", highlight=False)


@app.command()
@_user_errors
@_config_options(PreprocessConfig, skip=("bands",), flags={"max_amplitude_uv": "--max-amplitude"})
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
    options: dict[str, Any] | None = None,
) -> None:
    """Turn EEG recordings into DE windows on the unified topology, stored as a corpus."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from mmm_eeg.corpus.build import build_corpus
    from mmm_eeg.io.bids import discover_bids, is_bids_root
    from mmm_eeg.io.sources import discover_sources, shard_sources

    config = PreprocessConfig(**{k: v for k, v in (options or {}).items() if v is not None})
    allowed = None if labels is None else [x.strip() for x in labels.split(",") if x.strip()]
    given = [*inputs, *([manifest] if manifest else [])]
    bids_roots = [p for p in given if is_bids_root(p)]
    sources, skipped = discover_sources(
        [p for p in given if p not in bids_roots], events, labels=allowed
    )
    wanted = None if subjects is None else [s.strip() for s in subjects.split(",") if s.strip()]
    for root in bids_roots:  # a BIDS dataset: read with mne-bids, sidecars applied
        found, bad = discover_bids(root, task, wanted, label_from)
        sources, skipped = sources + found, skipped + bad
    if shard is not None:
        sources = shard_sources(sources, shard)
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
        _note("Skipped", item["reason"])
    if report["corpus_windows"] == 0:
        raise UserInputError(
            "No window could be extracted from any input; see the reasons above"
            + (f" ({out} was not created)." if report.get("removed_empty_corpus") else ".")
        )
    console.print(f"Report: {out / 'report.json'}")


corpus_app = typer.Typer(help="Inspect or merge feature corpora.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")


@corpus_app.command("info")
@_user_errors
def corpus_info(
    path: Annotated[Path, typer.Argument(help="Corpus folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise a corpus: windows, hours, recordings, subjects, labels per dataset."""
    from mmm_eeg.corpus import Corpus

    summary = Corpus(path).summary()
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
@_user_errors
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


@app.command()
@_user_errors
@_config_options(PretrainConfig)
def pretrain(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder from `mmm-eeg preprocess`.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory.")],
    config: Annotated[
        Path | None, typer.Option(help="YAML file with any of these options.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from RUN/checkpoints/last.ckpt.")] = False,
    options: dict[str, Any] | None = None,
) -> None:
    """Pretrain the MMM autoencoder on a corpus (Lightning: CPU, GPU, DDP)."""
    from mmm_eeg.train.pretrain import pretrain as run
    from mmm_eeg.train.pretrain import training_summary

    _quiet_lightning()

    resolved = resolve_config(PretrainConfig, config, options or {})
    run_dir = run(corpus, out, resolved, resume=resume)
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank != 0:  # DDP: one report, from rank 0
        return
    summary = training_summary(run_dir)

    def fmt(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.4f}"

    console.print(
        f"Run {run_dir}: final train loss {fmt(summary['final_train_loss'])}, best held-out "
        f"loss {fmt(summary['best_val_loss'])} (predicting the band mean: "
        f"{fmt(summary['val_baseline'])}). Encoder: {run_dir / 'encoder'}; plots: "
        f"{run_dir / 'plots'}. Next: mmm-eeg finetune {corpus} --init {run_dir} --out results",
        highlight=False,
    )


@app.command()
@_user_errors
@_config_options(FinetuneConfig, flags={"freeze_encoder": "--freeze-encoder/--train-encoder"})
def finetune(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder with labelled windows.")],
    out: Annotated[Path, typer.Option("--out", help="Results directory.")],
    config: Annotated[
        Path | None, typer.Option(help="YAML file with any of these options.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Reuse the finished folds in --out.")] = False,
    options: dict[str, Any] | None = None,
) -> None:
    """Fine-tune (or linear-probe) a classifier under an evaluation protocol."""
    from mmm_eeg.train.finetune import finetune as run

    _quiet_lightning()

    summary = run(corpus, out, resolve_config(FinetuneConfig, config, options or {}), resume=resume)
    b = summary["balanced_accuracy"]
    console.print(
        f"{len(summary['folds'])} fold(s); balanced accuracy {b['mean']:.3f} ± {b['std']:.3f}. "
        f"Table: {out / 'summary.md'}; plots: {out / 'plots'}",
        highlight=False,
    )


@app.command()
@_user_errors
def evaluate(
    model: Annotated[Path, typer.Argument(help="A classifier directory (RES/folds/NAME/model).")],
    corpus: Annotated[Path, typer.Argument(help="Corpus folder.")],
    select: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Score a saved classifier on a corpus."""
    from mmm_eeg.train.finetune import evaluate as run

    result = run(model, corpus, select)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        return
    console.print(
        f"{result['n_windows']} windows: accuracy {result['accuracy']:.3f}, balanced accuracy "
        f"{result['balanced_accuracy']:.3f}, macro-F1 {result['macro_f1']:.3f}",
        highlight=False,
    )


@app.command()
@_user_errors
def embed(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder.")],
    out: Annotated[Path, typer.Option("--out", help="Output .parquet file.")],
    init: Annotated[
        str,
        typer.Option(help="The model: a name, run dir, model dir, .ckpt or PhysioPro .pt."),
    ],
    pool: Annotated[
        Literal["none", "mean"], typer.Option(help="none (18 x dim per window) or mean.")
    ] = "none",
    select: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Export the unified representation of every window, with the index columns.

    Windows are standardised as the encoder was trained (its config.json's feature_spec).
    """
    from mmm_eeg.train.finetune import embed as run

    result = run(corpus, init, out, select, pool)
    console.print(
        f"Wrote {result['windows']} embeddings to {out}; {result['spec']}", highlight=False
    )


@app.command()
@_user_errors
def predict(
    model: Annotated[
        str, typer.Argument(help="A fine-tuned classifier directory (RES/folds/NAME/model).")
    ],
    files: Annotated[list[Path], typer.Argument(help="EEG files to predict.")],
    out: Annotated[
        Path, typer.Option("--out", help="Per-window predictions: a .csv or .parquet file.")
    ],
) -> None:
    """Predict every window of new recordings with a trained classifier."""
    from mmm_eeg.inference import load_model, predict_files

    table, skipped = predict_files(load_model(model), files, out)
    for path, reason in skipped:
        _note("Skipped", f"{path}: {reason}")
    counts = ", ".join(f"{k} {v}" for k, v in table["label"].value_counts().sort_index().items())
    console.print(
        f"Wrote {len(table)} window predictions of {table['file'].nunique()} file(s) to {out} "
        f"({counts}).",
        highlight=False,
    )


@app.command()
@_user_errors
def export(
    model: Annotated[
        str, typer.Argument(help="A model: classifier or encoder directory, run, or a name.")
    ],
    onnx: Annotated[Path, typer.Option("--onnx", help="The .onnx file to write.")],
    channels: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated channel names: export for this montage only (a smaller, "
            "faster graph whose input is those channels)."
        ),
    ] = None,
) -> None:
    """Export a model to ONNX, its input contract in the file's metadata."""
    from mmm_eeg.export import export_onnx
    from mmm_eeg.inference import load_model

    names = None if channels is None else [c.strip() for c in channels.split(",") if c.strip()]
    export_onnx(load_model(model), onnx, names)
    inputs = "x, present" if names is None else "x (the mapped channels, in input_channels order)"
    console.print(f"Wrote {onnx} (inputs: {inputs}; metadata: feature_spec)", highlight=False)


@app.command()
@_user_errors
def stream(
    model: Annotated[str, typer.Argument(help="A fine-tuned classifier directory.")],
    name: Annotated[str, typer.Option("--stream", help="The LSL stream's name.")],
    duration: Annotated[float, typer.Option(help="Seconds to decode.")] = 60.0,
    step: Annotated[float, typer.Option(help="Seconds between decoded windows.")] = 0.25,
    out: Annotated[
        Path | None, typer.Option("--out", help="CSV of per-window probabilities.")
    ] = None,
    outlet: Annotated[
        str | None, typer.Option(help="Also publish the probabilities as an LSL stream.")
    ] = None,
    reconnect: Annotated[
        float,
        typer.Option(help="Seconds to wait for a stream that stopped to return (0: stop)."),
    ] = 30.0,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile/--no-compile",
            help="torch.compile the network for the stream's montage (needs a C++ compiler).",
        ),
    ] = False,
) -> None:
    """Decode a live Lab Streaming Layer stream (a headset, any montage) with a classifier."""
    from rich.live import Live

    from mmm_eeg.inference import load_model
    from mmm_eeg.online import decode_stream

    started = time.monotonic()
    with Live(console=console, transient=False) as live:

        def show(row: dict[str, Any]) -> None:
            shown = len(rows) + 1
            rate = shown / max(time.monotonic() - started, 1e-9)
            last = (
                f"{row['label']} ({row[row['label']]:.2f})"
                if row["quality"] == "ok"
                else f"no prediction ({row['quality']})"
            )
            live.update(
                f"window {shown} | {rate:.1f} windows/s | latency {row['latency_ms']:.1f} ms | "
                f"last: {last}"
            )
            rows.append(row)

        rows: list[dict[str, Any]] = []
        decode_stream(
            load_model(model), name, duration, step, out, on_prediction=show, outlet=outlet,
            reconnect=reconnect, compile=compile,
        )  # fmt: skip
    console.print(f"Decoded {len(rows)} windows" + (f"; predictions in {out}" if out else "."))


@app.command()
@_user_errors
def reproduce(
    dataset: Annotated[str, typer.Argument(help="seed or seed-iv")],
    data: Annotated[Path, typer.Option("--data", help="The official dataset folder.")],
    out: Annotated[Path, typer.Option("--out", help="Results directory.")] = Path("reproduce"),
    pretrained: Annotated[
        str | None, typer.Option(help="Encoder for the 'pretrained' row.")
    ] = None,
    epochs: Annotated[int, typer.Option()] = 30,
) -> None:
    """Run the paper's SEED / SEED-IV protocol and print our numbers beside the paper's."""
    from mmm_eeg.experiments.reproduce import reproduce as run

    _quiet_lightning()

    result = run(dataset, data, out, FinetuneConfig(epochs=epochs), pretrained)
    console.print(result["markdown"], highlight=False)


def _channels_of(source: str) -> tuple[list[str], list[str] | None, dict]:
    """Channel names, types and positions from a file path or a comma-separated list."""
    from mmm_eeg.io import read_channel_info
    from mmm_eeg.io.sources import EEG_EXTENSIONS

    path = Path(source)
    if path.exists() or (path.suffix.lower() in EEG_EXTENSIONS and "," not in source):
        info = read_channel_info(path)
        return list(info.names), list(info.types) if info.types else None, info.positions
    names = [n for n in source.split(",") if n.strip()]
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


def main() -> None:
    """Entry point of the ``mmm-eeg`` console script."""
    app()
