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
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mmm_eeg import __version__
from mmm_eeg.errors import UserInputError

app = typer.Typer(
    name="mmm-eeg",
    help="Topology-agnostic EEG representation learning (MMM).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)
_state = {"verbose": False}
#: errno values of a full disk, a file-size limit and an exhausted quota.
_DISK_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}


def _user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a UserInputError into one message and exit code 2."""

    resumable = "resume" in inspect.signature(func).parameters
    rerun = (
        "rerun the same command (with --resume once a checkpoint or fold was written)"
        if resumable
        else "rerun the same command"
    )

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserInputError as err:
            if _state["verbose"]:
                err_console.print_exception()
            err_console.print(f"[bold red]Error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as err:
            if err.errno not in _DISK_FULL:
                raise
            if _state["verbose"]:
                err_console.print_exception()
            err_console.print(
                f"[bold red]Error:[/] no space left while writing {err.filename or 'output'} "
                f"({err.strerror}). Free some space and {rerun}: finished work is kept and "
                "the rest resumes.",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(1) from None

    return wrapper


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
    _state["verbose"] = verbose
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")


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
    ] = 40.0,
    on_unknown: Annotated[
        str, typer.Option(help="Unknown names without a position: raise or drop.")
    ] = "raise",
    bipolar: Annotated[
        str, typer.Option(help="Bipolar derivations: exclude, midpoint or raise.")
    ] = "exclude",
) -> None:
    """Show how a recording's channels map onto the unified 62-node topology."""
    from mmm_eeg.topology import UnifiedTopology

    names, types, file_positions = _channels_of(source)
    topology = UnifiedTopology.default()
    for option, value, allowed in (
        ("--on-unknown", on_unknown, ("raise", "drop")),
        ("--bipolar", bipolar, ("exclude", "midpoint", "raise")),
    ):
        if value not in allowed:
            raise UserInputError(f"{option} must be one of {', '.join(allowed)}; got {value!r}.")
    mapping = topology.map_channels(
        names,
        positions if positions is not None else (file_positions or None),
        types=types,
        tolerance_mm=tolerance_mm,
        on_unknown=on_unknown,  # type: ignore[arg-type]
        bipolar=bipolar,  # type: ignore[arg-type]
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
    from mmm_eeg.benchmark import demo_markdown, run_transfer_benchmark
    from mmm_eeg.datasets import default_data_dir

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
    from mmm_eeg.benchmark import results_markdown, run_transfer_benchmark

    result = run_transfer_benchmark(data, out, quick=quick, seed=seed, checkpoint=checkpoint)
    console.print(results_markdown(result), highlight=False)
    console.print(f"Written: {out / 'results.json'}, {out / 'results.md'}, {out / 'plots'}")


@app.command()
@_user_errors
def convert(
    src: Annotated[
        Path, typer.Argument(help="A PhysioPro .pt state dict or an mmm-eeg model dir.")
    ],
    dst: Annotated[Path, typer.Argument(help="Output: a directory (--to mmm) or a .pt file.")],
    to: Annotated[str, typer.Option(help="Target format: mmm or physiopro.")] = "mmm",
    heads: Annotated[int, typer.Option(help="Attention heads (not stored in .pt files).")] = 8,
) -> None:
    """Convert encoder checkpoints between the reference (PhysioPro) format and ours."""
    import torch

    from mmm_eeg.atomic import atomic_path
    from mmm_eeg.model import MMMEncoder, to_physiopro_state_dict

    if to not in ("mmm", "physiopro"):
        raise UserInputError(f"--to must be mmm or physiopro; got {to!r}.")
    if src.is_dir():
        encoder = MMMEncoder.from_pretrained(src)
    else:
        encoder = MMMEncoder.from_physiopro(src, heads=heads)
        report = encoder.load_report
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
    window: Annotated[float, typer.Option(help="Window length (s).")] = 1.0,
    step: Annotated[
        float | None, typer.Option(help="Hop between windows (s); default: window.")
    ] = None,
    method: Annotated[str, typer.Option(help="DE definition: fft or filter.")] = "fft",
    resample: Annotated[
        float | None, typer.Option(help="Resample to this rate (Hz) first.")
    ] = None,
    reference: Annotated[str, typer.Option(help="Re-reference: none or average.")] = "none",
    max_amplitude: Annotated[
        float | None, typer.Option(help="Drop windows beyond this amplitude (µV).")
    ] = None,
    dtype: Annotated[str, typer.Option(help="Feature storage: float32 or float16.")] = "float32",
    lds: Annotated[
        bool, typer.Option(help="LDS-smooth DE within label runs (leakage risk).")
    ] = False,
    commit_every: Annotated[
        int, typer.Option(help="Windows per commit (what a killed run keeps).")
    ] = 65536,
    shard: Annotated[
        str | None,
        typer.Option(help="I/N: only the I-th of N deterministic slices of the inputs."),
    ] = None,
    bipolar: Annotated[
        str, typer.Option(help="Bipolar derivations (FP1-F7): exclude, or midpoint.")
    ] = "exclude",
    labels: Annotated[
        str | None,
        typer.Option(help="Allowed labels, e.g. rest,arithmetic: rows with others are skipped."),
    ] = None,
) -> None:
    """Turn EEG recordings into DE windows on the unified topology, stored as a corpus."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from mmm_eeg.build import build_corpus
    from mmm_eeg.io.sources import discover_sources, shard_sources
    from mmm_eeg.preprocess import PreprocessConfig

    for option, value, allowed in (
        ("--method", method, ("fft", "filter")),
        ("--reference", reference, ("none", "average")),
        ("--dtype", dtype, ("float32", "float16")),
        ("--bipolar", bipolar, ("exclude", "midpoint")),
    ):
        if value not in allowed:
            raise UserInputError(f"{option} must be one of {', '.join(allowed)}; got {value!r}.")
    config = PreprocessConfig(
        window=window, step=step, method=method, resample=resample,  # type: ignore[arg-type]
        reference=reference, max_amplitude_uv=max_amplitude, lds=lds,  # type: ignore[arg-type]
        bipolar=bipolar,  # type: ignore[arg-type]
    )  # fmt: skip
    allowed = None if labels is None else [x.strip() for x in labels.split(",") if x.strip()]
    sources, skipped = discover_sources(
        [*inputs, *([manifest] if manifest else [])], events, labels=allowed
    )
    if shard is not None:
        sources = shard_sources(sources, shard)
    if not sources:
        raise UserInputError("No EEG files found in the inputs. Give files, folders or a manifest.")
    with Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=err_console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("preprocessing", total=len(sources))
        report = build_corpus(
            sources, out, config=config, dtype=dtype, workers=workers, skipped=skipped,
            commit_windows=commit_every,
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
        err_console.print(f"[yellow]Skipped[/] {item['reason']}", highlight=False, soft_wrap=True)
    console.print(f"Report: {out / 'report.json'}")
    if report["corpus_windows"] == 0:
        raise UserInputError("No window could be extracted from any input; see the reasons above.")


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
    from mmm_eeg.merge import merge_corpora

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
def pretrain(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder from `mmm-eeg preprocess`.")],
    out: Annotated[Path, typer.Option("--out", help="Run directory.")],
    config: Annotated[
        Path | None, typer.Option(help="YAML file with any of these options.")
    ] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    dim: Annotated[
        int | None, typer.Option(help="Model width (16 in the paper, 64 released).")
    ] = None,
    depth: Annotated[int | None, typer.Option()] = None,
    decoder_depth: Annotated[int | None, typer.Option()] = None,
    init: Annotated[
        str | None, typer.Option(help="physiopro.pt, a model dir or a run dir.")
    ] = None,
    select: Annotated[
        str | None, typer.Option(help='e.g. "dataset in [eegmat, muse_n170]".')
    ] = None,
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu or auto.")] = None,
    devices: Annotated[int | None, typer.Option(help="Devices per node.")] = None,
    num_nodes: Annotated[int | None, typer.Option()] = None,
    strategy: Annotated[str | None, typer.Option(help="auto, ddp, ...")] = None,
    precision: Annotated[str | None, typer.Option(help="32 or bf16-mixed.")] = None,
    loader_workers: Annotated[
        int | None, typer.Option(help="DataLoader processes reading the corpus.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from RUN/checkpoints/last.ckpt.")] = False,
    seed: Annotated[int | None, typer.Option()] = None,
    normalize: Annotated[
        str | None,
        typer.Option(help="recording, subject, none (per band); recording-node, subject-node."),
    ] = None,
) -> None:
    """Pretrain the MMM autoencoder on a corpus (Lightning: CPU, GPU, DDP)."""
    overrides = dict(locals())  # first statement: the options as given
    for key in ("corpus", "out", "config", "resume"):
        overrides.pop(key)
    from mmm_eeg.train.config import PretrainConfig, resolve_config
    from mmm_eeg.train.pretrain import pretrain as run
    from mmm_eeg.train.pretrain import training_summary

    resolved = resolve_config(PretrainConfig, config, overrides)
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
def finetune(
    corpus: Annotated[Path, typer.Argument(help="Corpus folder with labelled windows.")],
    out: Annotated[Path, typer.Option("--out", help="Results directory.")],
    init: Annotated[
        str, typer.Option(help="scratch, a run dir, a model dir or physiopro.pt.")
    ] = "scratch",
    config: Annotated[
        Path | None, typer.Option(help="YAML file with any of these options.")
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="loso, subject-kfold, holdout, seed, seed-iv, time-split, within-subject, "
            "time-blocked."
        ),
    ] = None,
    test_subjects: Annotated[
        str | None, typer.Option(help="Comma-separated, for holdout (or a subset for loso).")
    ] = None,
    k: Annotated[int | None, typer.Option(help="Folds for subject-kfold, time-blocked.")] = None,
    freeze_encoder: Annotated[
        bool | None, typer.Option("--freeze-encoder/--train-encoder", help="Linear probe.")
    ] = None,
    epochs: Annotated[int | None, typer.Option()] = None,
    lr: Annotated[float | None, typer.Option()] = None,
    batch_size: Annotated[int | None, typer.Option()] = None,
    class_weights: Annotated[str | None, typer.Option(help="balanced")] = None,
    select: Annotated[str | None, typer.Option(help='e.g. "dataset == eegmat".')] = None,
    dim: Annotated[int | None, typer.Option(help="Width of a scratch encoder.")] = None,
    depth: Annotated[int | None, typer.Option(help="Depth of a scratch encoder.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    normalize: Annotated[
        str | None,
        typer.Option(help="recording, subject, none (per band); recording-node, subject-node."),
    ] = None,
    channel_dropout: Annotated[
        float | None,
        typer.Option(help="Probability that a training window loses a random set of channels."),
    ] = None,
    layer_decay: Annotated[
        float | None, typer.Option(help="Block i of d learns at decay**(d-i) of the rate.")
    ] = None,
    freeze_epochs: Annotated[
        int | None, typer.Option(help="Epochs with the encoder frozen before it trains.")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Reuse the finished folds in --out.")] = False,
) -> None:
    """Fine-tune (or linear-probe) a classifier under an evaluation protocol."""
    overrides = dict(locals())  # first statement: the options as given
    for key in ("corpus", "out", "config", "resume"):
        overrides.pop(key)
    from mmm_eeg.train.config import FinetuneConfig, resolve_config
    from mmm_eeg.train.finetune import finetune as run

    if test_subjects is not None:
        overrides["test_subjects"] = [s.strip() for s in test_subjects.split(",") if s.strip()]
    summary = run(corpus, out, resolve_config(FinetuneConfig, config, overrides), resume=resume)
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
    init: Annotated[str, typer.Option(help="A run dir, model dir or physiopro.pt.")] = "scratch",
    pool: Annotated[str, typer.Option(help="none (18 x dim per window) or mean.")] = "none",
    select: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Export the unified representation of every window, with the index columns."""
    from mmm_eeg.train.finetune import embed as run

    n = run(corpus, init, out, select, pool)
    console.print(f"Wrote {n} embeddings to {out}", highlight=False)


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
    from mmm_eeg.train.config import FinetuneConfig
    from mmm_eeg.train.reproduce import reproduce as run

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
