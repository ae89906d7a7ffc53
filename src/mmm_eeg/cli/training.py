"""Commands that train or score: ``pretrain``, ``finetune``, ``evaluate``, ``embed``, ``demo``,
``benchmark transfer|ablations``, ``reproduce``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from mmm_eeg.cli.common import app, benchmark_app, console, quiet_lightning, user_errors
from mmm_eeg.cli.options import config_options
from mmm_eeg.train.config import FinetuneConfig, PretrainConfig, resolve_config


@app.command()
@user_errors
@config_options(PretrainConfig)
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

    quiet_lightning()

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
        f"loss {fmt(summary['best_val_loss'])} (predicting each target's mean: "
        f"{fmt(summary['val_baseline'])}). Encoder: {run_dir / 'encoder'}; plots: "
        f"{run_dir / 'plots'}. Next: mmm-eeg finetune {corpus} --init {run_dir} --out results",
        highlight=False,
    )


@app.command()
@user_errors
@config_options(FinetuneConfig, flags={"freeze_encoder": "--freeze-encoder/--train-encoder"})
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

    quiet_lightning()

    summary = run(corpus, out, resolve_config(FinetuneConfig, config, options or {}), resume=resume)
    b = summary["balanced_accuracy"]
    console.print(
        f"{len(summary['folds'])} fold(s); balanced accuracy {b['mean']:.3f} ± {b['std']:.3f}. "
        f"Table: {out / 'summary.md'}; plots: {out / 'plots'}",
        highlight=False,
    )


@app.command()
@user_errors
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
@user_errors
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
@user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("demo_out"),
    data: Annotated[Path | None, typer.Option(help="A folder laid out like ../shared/eeg.")] = None,
) -> None:
    """The whole pipeline in a few minutes: preprocess, pretrain, fine-tune, compare.

    Runs the quick transfer benchmark on the real recordings ($MMM_EEG_DATA or ../shared/eeg)
    when they exist, otherwise on a built-in SYNTHETIC multi-montage collection.
    """
    from mmm_eeg.datasets import default_data_dir
    from mmm_eeg.experiments.compare import probe_verdict
    from mmm_eeg.experiments.transfer import run_transfer_benchmark
    from mmm_eeg.experiments.transfer_report import demo_markdown

    quiet_lightning()

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
    console.print(demo_markdown(result, fine_tuned=False), soft_wrap=True)
    console.print(f"Verdict: {probe_verdict(result)}", soft_wrap=True)
    console.print(
        f"All columns: {out / 'results.md'}; figure: {out / 'plots' / 'methods.png'}. "
        "MMM's fine-tuned cells (—) are left out here: the demo's budget (a few epochs on 2 "
        "folds) is too short to train them; the probes read the same encoders. The full "
        "benchmark: bench/transfer.py, docs/benchmarks.md. "
        "On any labelled corpus of yours: mmm-eeg benchmark compare corpus --out verdict. "
        "On your own files: mmm-eeg preprocess YOUR_FOLDER --out corpus; mmm-eeg pretrain "
        "corpus --out run; mmm-eeg finetune corpus --init run --out results.",
        highlight=False,
    )


@benchmark_app.command("transfer")
@user_errors
def benchmark_transfer(
    data: Annotated[Path, typer.Option("--data", help="A folder laid out like ../shared/eeg.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    quick: Annotated[bool, typer.Option(help="2 folds, a few epochs (same code path).")] = False,
    seed: Annotated[int, typer.Option()] = 0,
    checkpoint: Annotated[Path | None, typer.Option(help="The released TUH encoder .pt.")] = None,
) -> None:
    """Cross-montage transfer: pretraining on pooled montages against strong baselines."""
    from mmm_eeg.experiments.transfer import run_transfer_benchmark
    from mmm_eeg.experiments.transfer_report import results_markdown

    quiet_lightning()

    result = run_transfer_benchmark(data, out, quick=quick, seed=seed, checkpoint=checkpoint)
    console.print(results_markdown(result), highlight=False)
    console.print(f"Written: {out / 'results.json'}, {out / 'results.md'}, {out / 'plots'}")


@benchmark_app.command("compare")
@user_errors
def benchmark_compare(
    corpus: Annotated[Path, typer.Argument(help="A corpus with labels (mmm-eeg preprocess).")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (reruns reuse it).")],
    pretrained: Annotated[
        list[str] | None,
        typer.Option(help="A pretraining run (or any model) to probe too; repeatable."),
    ] = None,
    select: Annotated[str | None, typer.Option(help="Which windows take part.")] = None,
    quick: Annotated[
        bool, typer.Option(help="At most 6 subjects, no Riemannian model (CI).")
    ] = False,
    seed: Annotated[int, typer.Option()] = 0,
    protocol: Annotated[
        Literal["auto", "loso", "subject-kfold", "within-subject", "holdout"],
        typer.Option(help="auto: loso up to 20 subjects, k-fold above, within subject below 3."),
    ] = "auto",
    gap_s: Annotated[
        float, typer.Option(help="Within subject: seconds between training and test windows.")
    ] = 4.0,
    test_subject: Annotated[
        list[str] | None, typer.Option(help="holdout: a test subject; repeatable.")
    ] = None,
    finetune: Annotated[
        list[str] | None,
        typer.Option(help="An MMM row to fine-tune too (mmm_untrained, ...), or all; repeatable."),
    ] = None,
    finetune_epochs: Annotated[
        int | None, typer.Option(help="Epochs of each fine-tuning (default 15).")
    ] = None,
    seeds: Annotated[
        int, typer.Option(help="Runs of each stochastic method (untrained, fine-tuned).")
    ] = 1,
    curve: Annotated[
        Literal["subjects", "epochs"] | None,
        typer.Option(help="A few-label curve: fewer training subjects, or labelled windows."),
    ] = None,
    pretrain_pool: Annotated[
        Path | None, typer.Option(help="An unlabelled corpus to pretrain MMM on first.")
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option(help="Only these electrodes, for every method: Fp1,Fp2,T7,T8 (probes)."),
    ] = None,
) -> None:
    """Your data, your verdict: MMM against the classical decoders on a labelled corpus."""
    from mmm_eeg.experiments.compare import FINETUNE_EPOCHS, report_markdown, run_compare

    quiet_lightning()
    result = run_compare(
        corpus, out, pretrained or (), select=select, quick=quick, seed=seed,
        protocol=protocol, gap_s=gap_s, finetune=finetune or (),
        finetune_epochs=finetune_epochs or FINETUNE_EPOCHS, seeds=seeds,
        test_subjects=test_subject, curve=curve, pretrain_pool=pretrain_pool,
        channels=None if channels is None else [c.strip() for c in channels.split(",")],
    )  # fmt: skip
    console.print(report_markdown(result))
    figures = [out / name for name in ("paired.png", "curve.png") if (out / name).is_file()]
    console.print(
        f"Written: {out / 'results.json'}, {out / 'report.md'}, "
        f"{', '.join(map(str, figures))}, {out / 'methods'} (one file per method)"
    )


@benchmark_app.command("ablations")
@user_errors
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

    quiet_lightning()
    result = run_ablations(data, out, quick=quick, seed=seed)
    console.print(ablations_markdown(result), highlight=False)
    console.print(f"Written: {out / 'results.json'}, {out / 'results.md'}, {out / 'plots'}")


@app.command()
@user_errors
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

    quiet_lightning()

    result = run(dataset, data, out, FinetuneConfig(epochs=epochs), pretrained)
    console.print(result["markdown"], highlight=False)
