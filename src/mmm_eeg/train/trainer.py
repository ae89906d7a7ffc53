"""What pretraining and fine-tuning share: the Trainer, optimiser groups, schedules, seeding.

Both training modules build their Trainer with :func:`build_trainer`, which also attaches
:class:`DataEpochs`, and seed their random draws with :func:`batch_generator`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities import rank_zero_only
from torch import nn

from mmm_eeg.errors import UserInputError


def warmup_cosine(total_steps: int, warmup_fraction: float):
    """LR multiplier per step: linear warm-up, then cosine decay to zero."""
    warmup = max(1, int(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


class Snapshots(L.Callback):
    """Save a network every ``every`` epochs to ``folder/epoch-NNNN`` (rank zero only).

    ``network`` picks it from the Lightning module (a pretraining run's encoder, a fine-tuning
    fold's classifier); each snapshot is a ``save_pretrained`` folder that
    :func:`mmm_eeg.load_model` reads.
    """

    def __init__(self, folder: Path, every: int, network: Callable[[Any], Any]) -> None:
        self.folder, self.every, self.network = folder, every, network

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every == 0 and trainer.is_global_zero:
            self.network(pl_module).save_pretrained(
                self.folder / f"epoch-{epoch:04d}", metadata={"epoch": epoch}
            )


def param_groups(model: nn.Module, weight_decay: float, lr_scales: dict[str, float] | None = None):
    """AdamW groups: no decay for biases, norms and tokens; optional LR scale per prefix."""
    groups: dict[tuple[float, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decay = 0.0 if p.ndim < 2 or "token" in name or "pos_embed" in name else weight_decay
        scale = next((s for prefix, s in (lr_scales or {}).items() if name.startswith(prefix)), 1.0)
        groups.setdefault((decay, scale), []).append(p)
    return [{"params": ps, "weight_decay": d, "lr_scale": s} for (d, s), ps in groups.items()]


def batch_generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from ``keys`` (seed, stage, epoch, batch, rank): the same batch
    draws the same random numbers after a resume, whatever ran before it."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence(keys).generate_state(1)[0]))


class DataEpochs(L.Callback):
    """Tell the training batches their epoch, and after a mid-epoch resume what to skip.

    Data order is a function of (seed, epoch), so the datamodule's training set must know the
    epoch before each epoch's iterator is made. After a checkpoint restore Lightning does not
    call ``on_train_epoch_start`` for the resumed epoch; ``on_train_start`` runs before the first
    iterator, and the batches that epoch already trained on are skipped. The checkpoint is
    written in ``on_train_batch_end``, before "completed" counts that batch; "processed" does.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        self._sync(trainer, skip=done if trainer.fit_loop.restarting else 0)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._sync(trainer, skip=0)

    @staticmethod
    def _sync(trainer: L.Trainer, skip: int) -> None:
        dataset = trainer.datamodule.train_set
        dataset.set_epoch(trainer.current_epoch)
        dataset.skip = skip


def build_trainer(config: Any, folder: Path, callbacks: list, epochs: int, **extra: Any):
    """A Lightning Trainer with the run's hardware options, CSV metrics in ``folder/logs``.

    Raises
    ------
    UserInputError
        When Lightning refuses the hardware options (an accelerator this machine lacks, too
        many devices, an unknown strategy or precision): which options, what this machine
        has, what to pass instead.
    """
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        return L.Trainer(
            max_epochs=epochs,
            accelerator=config.accelerator,
            devices=config.devices,
            num_nodes=config.num_nodes,
            strategy=config.strategy,
            precision=config.precision,
            logger=CSVLogger(folder, name="", version="logs"),
            callbacks=[DataEpochs(), *callbacks],
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=1,
            use_distributed_sampler=False,  # CorpusBatches shards by rank itself
            num_sanity_val_steps=0,
            **extra,
        )
    except (MisconfigurationException, ValueError) as err:
        message = str(err).splitlines()[0]
        # The option Lightning names in its message, else the accelerator (the usual culprit).
        options = ("precision", "strategy", "devices", "num_nodes")
        named = [o for o in options if o in message.lower()]
        given = ", ".join(
            f"{name}={getattr(config, name)!r}"
            for name in ("accelerator", "devices", "num_nodes", "strategy", "precision")
        )
        raise UserInputError(
            f"Lightning cannot train with {given}: {message} This machine has "
            f"{machine_hardware()}. Pass accelerator='cpu' (or 'auto') and devices up to the "
            "count above; strategy 'auto' or 'ddp'; precision '32' (or 'bf16-mixed' where the "
            "hardware has it).",
            parameter=named[0] if named else "accelerator",
        ) from err


def machine_hardware() -> str:
    """What this machine offers Lightning, in words (CPU cores, CUDA GPUs, Apple MPS)."""
    parts = [f"{os.cpu_count()} CPU cores"]
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    parts.append(f"{gpus} CUDA GPU{'s' if gpus != 1 else ''}")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        parts.append("Apple MPS")
    return ", ".join(parts)


def is_global_zero() -> bool:
    """Whether this process is rank 0 (read from the launcher's environment before a Trainer
    exists): the one process that writes a run's shared files under DDP."""
    return rank_zero_only.rank == 0
