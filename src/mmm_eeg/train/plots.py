"""Figures of runs: loss curves, reconstruction quality, topographies, fold results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmm_eeg.model import random_mask, regional_mask
from mmm_eeg.model.masking import Strategy
from mmm_eeg.viz import project_top_view, pyplot, save_figure


@torch.no_grad()
def reconstruction_by_ratio(
    autoencoder,
    x: torch.Tensor,
    present: torch.Tensor,
    ratios: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9),
    seed: int = 0,
    strategy: Strategy = "random",
) -> dict[str, list[float]]:
    """MSE on masked and on visible present nodes for masks of several ratios.

    ``strategy="random"`` hides ``ratio`` of the present nodes, ``"regional"`` every node of
    ``ratio`` of the regions (the autoencoder's topology gives them).
    """
    autoencoder.eval()
    region_of = torch.tensor(autoencoder.encoder.topology.region_of)
    out: dict[str, list[float]] = {"ratio": list(ratios), "masked": [], "visible": []}
    for ratio in ratios:
        generator = torch.Generator().manual_seed(seed)
        if strategy == "random":
            masked = random_mask(present, ratio, generator)
        else:
            masked = regional_mask(present, region_of, ratio, generator)
        target = autoencoder.reconstruction_target(x)
        error = autoencoder.node_error(autoencoder(x, present, masked), target)
        for key, where in (("masked", masked & present), ("visible", ~masked & present)):
            out[key].append(float(error[where].mean()) if where.any() else float("nan"))
    return out


def pretraining_plots(out: Path, autoencoder, corpus, val_rows: np.ndarray, config: Any) -> None:
    """Loss curves per masking strategy, error against mask ratio, reconstructed topographies."""
    import pandas as pd

    plt = pyplot()
    plots = out / "plots"
    metrics = pd.read_csv(out / "logs" / "metrics.csv")
    fig, ax = plt.subplots(figsize=(7, 4))
    for column, style in (
        ("train_loss_random", "."),
        ("train_loss_regional", "."),
        ("val_loss", "-o"),
        ("val_baseline", "--"),
    ):
        if column in metrics:
            series = metrics.dropna(subset=[column])
            ax.plot(series["step"], series[column], style, label=column, markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("weighted MSE of the reconstruction targets")
    ax.set_title("Pretraining loss by masking strategy")
    ax.legend()
    save_figure(fig, plots / "loss_curves.png")
    if len(val_rows) == 0:
        return
    sample = val_rows[:: max(1, len(val_rows) // 512)][:512]
    x, present = corpus.read(sample, config.normalize, autoencoder.encoder.tokens)
    x, present = torch.from_numpy(x), torch.from_numpy(present)
    curve = reconstruction_by_ratio(autoencoder.cpu(), x, present)
    target = autoencoder.reconstruction_target(x)
    baseline = autoencoder.mean_baseline(x, present.to(x.dtype))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(curve["ratio"], curve["masked"], "-o", label="masked nodes")
    ax.plot(curve["ratio"], curve["visible"], "-o", label="visible nodes")
    ax.axhline(float(baseline), ls="--", color="grey", label="predict each target's mean")
    ax.set_xlabel("mask ratio")
    ax.set_ylabel("MSE on held-out windows")
    ax.legend()
    save_figure(fig, plots / "reconstruction_vs_mask_ratio.png")
    with torch.no_grad():
        masked = random_mask(present[:3], 0.5, torch.Generator().manual_seed(0))
        recon = autoencoder(x[:3], present[:3], masked)
    xy = project_top_view(corpus.topology.positions)
    column, shown_name = _shown_column(autoencoder, corpus.config.window)
    fig, axes = plt.subplots(3, 2, figsize=(6, 9))
    for row in range(3):
        shown = present[row].numpy()
        for col, (values, title) in enumerate(
            (
                (target[row, :, column], f"target ({shown_name})"),
                (recon[row, :, column], "reconstruction"),
            )
        ):
            ax = axes[row, col]
            ax.scatter(
                xy[shown, 0],
                xy[shown, 1],
                c=values.numpy()[shown],
                cmap="RdBu_r",
                vmin=-2,
                vmax=2,
                s=60,
            )
            hidden = shown & masked[row].numpy()
            ax.scatter(xy[hidden, 0], xy[hidden, 1], facecolors="none", edgecolors="k", s=110)
            ax.set_title(title, fontsize=9)
            ax.set_aspect("equal")
            ax.axis("off")
    fig.suptitle("Held-out windows; circled nodes were masked")
    save_figure(fig, plots / "reconstructed_topographies.png")


def finetune_plots(out: Path, folds: list[dict[str, Any]], label_names: list[str]) -> None:
    """Per-fold balanced accuracy, pooled confusion matrix, training curves."""
    import pandas as pd

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(folds)), 4))
    names = [f["fold"]["name"] for f in folds]
    values = [f["test"]["balanced_accuracy"] for f in folds]
    ax.bar(range(len(folds)), values)
    ax.axhline(1 / max(1, len(label_names)), ls="--", color="grey", label="chance")
    ax.set_xticks(range(len(folds)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("balanced accuracy (test)")
    ax.set_ylim(0, 1)
    ax.legend()
    save_figure(fig, out / "plots" / "per_fold.png")
    matrix = np.sum([np.asarray(f["test"]["confusion_matrix"]) for f in folds], axis=0)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xticks(range(len(label_names)), label_names, rotation=45)
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    save_figure(fig, out / "plots" / "confusion_matrix.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for f in folds:
        path = Path(f["metrics_csv"])
        if path.is_file():
            m = pd.read_csv(path).dropna(subset=["val_balanced_accuracy"])
            ax.plot(m["epoch"], m["val_balanced_accuracy"], alpha=0.6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation balanced accuracy")
    save_figure(fig, out / "plots" / "training_curves.png")


def _shown_column(autoencoder, window: float) -> tuple[int, str]:
    """The target column the topographies show: alpha DE, else the spectrum near 10 Hz, else
    the waveform's middle sample."""
    if "de" in autoencoder.targets:
        return 2, "alpha DE"
    if "spectrum" not in autoencoder.targets:
        return autoencoder.encoder.signal_samples // 2, "waveform, mid-window"
    offset = autoencoder.encoder.signal_samples if "waveform" in autoencoder.targets else 0
    bin_ = round(10 * window)
    return offset + bin_, f"log amplitude at {bin_ / window:g} Hz"
