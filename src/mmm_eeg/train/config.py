"""Run configurations: dataclasses, read from YAML (safe loader) and command-line overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mmm_eeg.atomic import atomic_path
from mmm_eeg.errors import UserInputError
from mmm_eeg.normalization import Normalizer

T = TypeVar("T")


@dataclass
class TrainerConfig:
    """Hardware and run-control options shared by pretraining and fine-tuning."""

    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32"
    seed: int = 0
    select: str | None = None
    normalize: str = "recording"
    loader_workers: int = 0  # DataLoader processes decoding the corpus (0: in the trainer)

    def __post_init__(self) -> None:
        if self.loader_workers < 0:
            raise UserInputError(f"loader_workers must be >= 0; got {self.loader_workers}.")
        Normalizer.parse(self.normalize)  # a clear error for an unknown name


@dataclass
class PretrainConfig(TrainerConfig):
    """MMM pretraining (defaults: the paper's recipe at our width)."""

    epochs: int = 20
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    dim: int = 64
    depth: int = 6
    decoder_depth: int = 6
    heads: int = 8
    absent: str = "exclude"
    init: str | None = None
    val_fraction: float = 0.1
    mask_mode: str = "cycle"
    mask_cycle: int = 100
    random_ratio: float = 0.5
    regional_ratio: float = 0.35
    loss_on: str = "masked"
    head: str = "linear"
    checkpoint_every_n_steps: int | None = None
    # Save the encoder every N epochs to RUN/snapshots/epoch-NNNN (curves of downstream
    # accuracy against pretraining length); None: only the final encoder.
    snapshot_every_n_epochs: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.snapshot_every_n_epochs is not None and self.snapshot_every_n_epochs < 1:
            raise UserInputError(
                f"snapshot_every_n_epochs must be >= 1; got {self.snapshot_every_n_epochs}."
            )


@dataclass
class FinetuneConfig(TrainerConfig):
    """Fine-tuning and evaluation protocol."""

    init: str = "scratch"
    protocol: str = "loso"
    test_subjects: list[str] | None = None
    k: int = 5
    val_subjects: int = 2
    freeze_encoder: bool = False
    epochs: int = 30
    patience: int = 8
    batch_size: int = 256
    lr: float = 1e-3
    encoder_lr_scale: float = 0.1  # applies to a pretrained encoder only
    # Recipe for a pretrained encoder: block i of d learns at layer_decay ** (d - i) times the
    # encoder's rate (embeddings at layer_decay ** (d + 1)); the encoder stays frozen for the
    # first freeze_epochs epochs (the head warms up on fixed features), then trains.
    layer_decay: float = 1.0
    freeze_epochs: int = 0
    weight_decay: float = 0.01
    class_weights: str | None = None
    hidden: int = 64
    dropout: float = 0.1
    dim: int = 64
    depth: int = 6
    heads: int = 8
    absent: str = "exclude"
    # Augmentation: a training window loses a random subset of its nodes with this probability,
    # keeping at least channel_dropout_min, so the model learns to work with fewer electrodes.
    channel_dropout: float = 0.0
    channel_dropout_min: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.channel_dropout <= 1.0:
            raise UserInputError(
                f"channel_dropout must be a probability in [0, 1]; got {self.channel_dropout}."
            )
        if not 0.0 < self.layer_decay <= 1.0:
            raise UserInputError(f"layer_decay must be in (0, 1]; got {self.layer_decay}.")
        if self.freeze_epochs < 0:
            raise UserInputError(f"freeze_epochs must be >= 0; got {self.freeze_epochs}.")
        if self.channel_dropout_min < 1:
            raise UserInputError(
                f"channel_dropout_min must be >= 1; got {self.channel_dropout_min}."
            )


def resolve_config(cls: type[T], file: str | Path | None, overrides: dict[str, Any]) -> T:
    """Defaults, then the YAML file, then non-None command-line overrides."""
    values: dict[str, Any] = {}
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise UserInputError(f"{path}: no such config file.")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise UserInputError(f"{path}: not valid YAML ({err}).") from err
        if not isinstance(loaded, dict):
            raise UserInputError(f"{path}: expected a mapping of option: value.")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserInputError(
            f"Unknown option(s) {unknown} for {cls.__name__}; known: {', '.join(sorted(known))}."
        )
    return cls(**values)


def write_config(config: Any, path: Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(asdict(config), sort_keys=False))
