"""MMM pretraining on a corpus with Lightning: one CPU, one GPU, or many machines (DDP).

``RUN/`` receives ``config.yaml`` (resolved), ``metrics.csv``, ``checkpoints/last.ckpt`` and
``checkpoints/best.ckpt`` (by validation loss), ``encoder/`` and ``autoencoder/`` in our
safetensors format, and ``plots/``. ``resume=True`` continues from ``last.ckpt``: model,
optimiser, scheduler, epoch and step are restored by Lightning; data order and masks are
functions of (seed, epoch, step), so a resumed run sees exactly the batches and masks the
uninterrupted run would have, including mid-epoch.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

from mmm_eeg.atomic import check_output_folder
from mmm_eeg.corpus import Corpus
from mmm_eeg.errors import UserInputError
from mmm_eeg.model import MaskSchedule, MMMAutoencoder, random_mask
from mmm_eeg.model.loading import CHECKPOINT_KEY, checkpoint_entry, load_encoder
from mmm_eeg.train.config import PretrainConfig, write_config
from mmm_eeg.train.data import CorpusBatches, CorpusDataModule, training_normalization
from mmm_eeg.train.plots import pretraining_plots
from mmm_eeg.train.selection import select_windows
from mmm_eeg.train.trainer import (
    Snapshots,
    batch_generator,
    build_trainer,
    is_global_zero,
    param_groups,
    warmup_cosine,
)

logger = logging.getLogger(__name__)


class PretrainModule(L.LightningModule):
    """Lightning wrapper of :class:`MMMAutoencoder` with the multi-stage mask schedule."""

    def __init__(self, autoencoder: MMMAutoencoder, config: PretrainConfig) -> None:
        super().__init__()
        self.save_hyperparameters({"config": asdict(config)})  # into every checkpoint
        self.autoencoder, self.config = autoencoder, config
        self.schedule = MaskSchedule(
            config.epochs,
            config.mask_cycle,
            config.mask_mode,  # type: ignore[arg-type]
            config.random_ratio,
            config.regional_ratio,
        )
        self.register_buffer(
            "region_of", torch.tensor(autoencoder.encoder.topology.region_of), persistent=False
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = checkpoint_entry(self.autoencoder, "autoencoder.")

    def _generator(self, stage: int, batch_idx: int) -> torch.Generator:
        epoch = self.current_epoch if stage == 0 else 0
        return batch_generator(self.config.seed, stage, epoch, batch_idx, self.global_rank)

    def training_step(self, batch, batch_idx):
        x, present, _ = batch
        generator = self._generator(0, batch_idx)
        masked, strategy = self.schedule.mask(
            present.cpu(), self.region_of.cpu(), self.current_epoch, generator
        )
        loss, _ = self.autoencoder.loss(x, present, masked.to(x.device), self.config.compact)
        self.log("train_loss", loss, prog_bar=True)
        self.log(f"train_loss_{strategy}", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, present, _ = batch
        masked = random_mask(present.cpu(), self.config.random_ratio, self._generator(1, batch_idx))
        masked = masked.to(x.device)
        loss, _ = self.autoencoder.loss(x, present, masked, self.config.compact)
        weight = (present & masked).to(x.dtype)
        baseline = self.autoencoder.mean_baseline(x, weight)
        self.log("val_loss", loss, prog_bar=True, sync_dist=True)
        self.log("val_baseline", baseline, sync_dist=True)

    def configure_optimizers(self):
        groups = param_groups(self.autoencoder, self.config.weight_decay)
        optimizer = torch.optim.AdamW(groups, lr=self.config.lr)
        total = int(self.trainer.estimated_stepping_batches)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(total, self.config.warmup_fraction)
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def freeze_loaded(encoder) -> list[str]:
    """Freeze every encoder weight its file held; return the names left to train (those the
    file lacked, e.g. the released encoder's region tokens and position embedding)."""
    report = encoder.load_report
    if not report or not report["initialised"]:
        raise UserInputError(
            "complete_init=True needs an init whose file lacks some encoder tensors (a PhysioPro "
            ".pt such as the released tuh_pretrained_encoder_base.pt); this init is none, or "
            "holds them all. Give such an init, or drop complete_init to train every weight.",
            parameter="complete_init",
        )
    for name, p in encoder.named_parameters():
        p.requires_grad_(name in report["initialised"])
    logger.info("Completing the init: training %s and the decoder.", report["initialised"])
    return list(report["initialised"])


def split_recordings(corpus: Corpus, rows: np.ndarray, fraction: float, seed: int):
    """Train and validation windows, split by recording (no recording on both sides)."""
    recordings = corpus.index["recording"].to_numpy()[rows]
    unique = np.unique(recordings)
    if fraction <= 0 or len(unique) < 2:
        return rows, rows[:0]
    n_val = max(1, round(fraction * len(unique)))
    val = np.random.default_rng(seed).choice(unique, n_val, replace=False)
    is_val = np.isin(recordings, val)
    return rows[~is_val], rows[is_val]


def pretrain(
    corpus_path: str | Path, out: str | Path, config: PretrainConfig, resume: bool = False
) -> Path:
    """Pretrain MMM on a corpus; returns the run directory.

    Parameters
    ----------
    corpus_path : str | path-like
        A corpus from ``mmm-eeg preprocess``.
    out : str | path-like
        Run directory.
    config : PretrainConfig
        Resolved options.
    resume : bool
        Continue from ``out/checkpoints/last.ckpt``.

    Returns
    -------
    Path
        The run directory.
    """
    from lightning.pytorch.callbacks import ModelCheckpoint

    out = check_output_folder(Path(out))
    last = out / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise UserInputError(
            f"resume=True but {last} does not exist; start the run with resume=False.",
            parameter="resume",
        )
    if not resume and last.is_file():
        raise UserInputError(
            f"{out} already holds a run; pass resume=True to continue it or choose another out.",
            parameter="resume",
        )
    L.seed_everything(config.seed, workers=True, verbose=False)
    corpus = Corpus(corpus_path)
    rows = select_windows(corpus.index, config.select)
    if len(rows) < config.batch_size * config.devices * config.num_nodes:
        raise UserInputError(
            f"The selection holds {len(rows)} windows, fewer than one global batch "
            f"({config.batch_size} x {config.devices * config.num_nodes} devices); "
            "lower batch_size.",
            parameter="batch_size",
        )
    train_rows, val_rows = split_recordings(corpus, rows, config.val_fraction, config.seed)
    # The saved encoder and autoencoder carry the features they learn from (fitted statistics
    # included: those of the training windows).
    normalize = training_normalization(corpus, train_rows, config.normalize)
    spec = corpus.feature_spec(normalize, config.tokens)
    encoder = load_encoder(config.init, corpus.topology, feature_spec=spec, **config.architecture)
    if config.complete_init:
        freeze_loaded(encoder)
    autoencoder = MMMAutoencoder(
        encoder, config.decoder_depth, config.head, config.loss_on,  # type: ignore[arg-type]
        targets=config.loss_weights(encoder.tokens),
    )  # fmt: skip
    module = PretrainModule(autoencoder, config)
    train_set = CorpusBatches(
        corpus, train_rows, config.batch_size, normalize=normalize,
        seed=config.seed, workers=config.loader_workers, tokens=encoder.tokens,
    )  # fmt: skip
    val_set = CorpusBatches(
        corpus, val_rows, config.batch_size, normalize=normalize,
        shuffle=False, drop_last=False, workers=config.loader_workers, tokens=encoder.tokens,
    )  # fmt: skip
    if is_global_zero():
        out.mkdir(parents=True, exist_ok=True)
        write_config(config, out / "config.yaml")
    # Two callbacks: "last" on a step interval (for resuming mid-epoch), "best" on validation.
    last_checkpoint = ModelCheckpoint(
        dirpath=out / "checkpoints",
        save_last=True,
        save_top_k=0,
        every_n_train_steps=config.checkpoint_every_n_steps,
    )
    callbacks = [last_checkpoint]
    if config.snapshot_every_n_epochs:
        callbacks.append(
            Snapshots(
                out / "snapshots",
                config.snapshot_every_n_epochs,
                lambda module: module.autoencoder.encoder,
            )
        )
    if len(val_rows):
        callbacks.append(
            ModelCheckpoint(
                dirpath=out / "checkpoints",
                filename="best",
                monitor="val_loss",
                save_top_k=1,
                enable_version_counter=False,
            )
        )
    trainer = build_trainer(
        config, out, callbacks, config.epochs, limit_val_batches=1.0 if len(val_rows) else 0
    )
    data = CorpusDataModule(train_set, val_set)
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if resume else None)
    if trainer.is_global_zero:
        metadata = {
            "corpus": str(corpus_path),
            "epochs": config.epochs,
            "train_windows": len(train_rows),
            "val_windows": len(val_rows),
            "masking": {
                "mode": config.mask_mode,
                "cycle": config.mask_cycle,
                "random_ratio": config.random_ratio,
                "regional_ratio": config.regional_ratio,
            },
        }
        autoencoder.save_pretrained(out / "autoencoder", metadata=metadata)
        autoencoder.encoder.save_pretrained(out / "encoder", metadata=metadata)
        pretraining_plots(out, autoencoder, corpus, val_rows, config)
    return out


def training_summary(out: Path) -> dict[str, Any]:
    """Final train loss, best validation loss and its baseline from ``metrics.csv``."""
    import pandas as pd

    metrics = pd.read_csv(out / "logs" / "metrics.csv")
    val = metrics.dropna(subset=["val_loss"]) if "val_loss" in metrics else metrics.iloc[:0]
    train = metrics.dropna(subset=["train_loss"])
    return {
        "final_train_loss": float(train["train_loss"].iloc[-1]) if len(train) else None,
        "best_val_loss": float(val["val_loss"].min()) if len(val) else None,
        "last_val_loss": float(val["val_loss"].iloc[-1]) if len(val) else None,
        "val_baseline": float(val["val_baseline"].iloc[-1]) if len(val) else None,
    }
