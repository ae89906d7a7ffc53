"""Commands on trained models: ``convert``, ``predict``, ``export``, ``stream``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from mmm_eeg.cli.common import app, console, print_note, user_errors
from mmm_eeg.validation import split_list


@app.command()
@user_errors
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
@user_errors
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
        print_note("Skipped", f"{path}: {reason}")
    counts = ", ".join(f"{k} {v}" for k, v in table["label"].value_counts().sort_index().items())
    console.print(
        f"Wrote {len(table)} window predictions of {table['file'].nunique()} file(s) to {out} "
        f"({counts}).",
        highlight=False,
    )


@app.command()
@user_errors
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

    names = split_list(channels)
    export_onnx(load_model(model), onnx, names)
    inputs = "x, present" if names is None else "x (the mapped channels, in input_channels order)"
    console.print(f"Wrote {onnx} (inputs: {inputs}; metadata: feature_spec)", highlight=False)


@app.command()
@user_errors
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
    bads: Annotated[
        str | None,
        typer.Option(help="Channels to leave out (a dead electrode), e.g. AF7,TP10."),
    ] = None,
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
            reconnect=reconnect, compile=compile, bads=split_list(bads) or (),
        )  # fmt: skip
    decoded = sum(row["quality"] == "ok" for row in rows)
    failed = len(rows) - decoded
    console.print(
        f"Decoded {decoded} windows"
        + (f" ({failed} more failed their checks, no prediction)" if failed else "")
        + (f"; predictions in {out}" if out else ".")
    )
