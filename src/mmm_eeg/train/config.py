"""Run configurations: dataclasses, read from YAML (safe loader) and command-line overrides."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from mmm_eeg.atomic import atomic_path
from mmm_eeg.errors import UserInputError
from mmm_eeg.model.choices import MaskMode, default_targets
from mmm_eeg.model.pos_embed import POSITION_KINDS, PositionKind
from mmm_eeg.normalization import NORMALIZATIONS, Normalization
from mmm_eeg.spec import TOKENS, Tokens
from mmm_eeg.train.protocols import PROTOCOLS, Protocol
from mmm_eeg.validation import check_option, check_range

T = TypeVar("T")


@dataclass
class TrainerConfig:
    """Hardware and run-control options shared by pretraining and fine-tuning.

    Parameters
    ----------
    accelerator : str
        Lightning accelerator: cpu, gpu or auto.
    devices : int
        Devices per node.
    num_nodes : int
        Machines.
    strategy : str
        Lightning strategy: auto, ddp, ...
    precision : str
        32, or bf16-mixed on hardware that has it.
    seed : int
        Seed of every random draw (weights, masks, batches, folds).
    select : str | None
        Windows to use, e.g. "dataset in [eegmat, muse_n170] and subject != eegmat-03".
    normalize : str
        Feature standardisation: subject, recording, none (per band); subject-node,
        recording-node (per node and band); fitted (per node and band, fitted on the training
        windows and saved with the model: for traits, one label per subject). A per-subject
        (per-recording) mode is refused when every subject (recording) has one label.
    loader_workers : int
        DataLoader processes decoding the corpus (0: in the trainer's process).
    snapshot_every_n_epochs : int | None
        Save the network every N epochs to snapshots/epoch-NNNN: a pretraining run's encoder
        (RUN/snapshots), a fine-tuning fold's classifier (RES/folds/NAME/snapshots). None: no
        snapshots.
    """

    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32"
    seed: int = 0
    select: str | None = None
    normalize: Normalization = "subject"
    loader_workers: int = 0
    snapshot_every_n_epochs: int | None = None

    def __post_init__(self) -> None:
        check_range("loader_workers", self.loader_workers, low=0)
        if self.snapshot_every_n_epochs is not None:
            check_range("snapshot_every_n_epochs", self.snapshot_every_n_epochs, low=1)
        check_range("devices", self.devices, low=1)
        check_range("num_nodes", self.num_nodes, low=1)
        check_option("normalize", self.normalize, NORMALIZATIONS)
        if hasattr(super(), "__post_init__"):  # the configs that mix in EncoderConfig
            super().__post_init__()


@dataclass
class EncoderConfig:
    """The encoder a run builds (or the size of a scratch one), for both trainings.

    Parameters
    ----------
    dim : int
        Model width (16 in the paper, 64 in the released checkpoint).
    depth : int
        Encoder blocks.
    heads : int
        Attention heads.
    absent : str
        Nodes a recording lacks: exclude, zero or noise (checked by MMMEncoder).
    pos_encoding : str
        Initial position encoding of a new encoder: 2d (the paper's), 1d, 3d, spherical or
        none.
    hierarchy : bool
        Region tokens and the hierarchy attention mask in a new encoder (off: a plain
        transformer over the node tokens).
    tokens : str
        What a new encoder's node tokens read: de (band DE), raw (the window's signal; the
        corpus must keep it, preprocess --signal-rate) or de+raw; a saved encoder keeps its own.
    """

    dim: int = 64
    depth: int = 6
    heads: int = 8
    absent: str = "exclude"
    pos_encoding: PositionKind = "2d"
    hierarchy: bool = True
    tokens: Tokens = "de"

    def __post_init__(self) -> None:
        check_option("pos_encoding", self.pos_encoding, POSITION_KINDS)
        check_option("tokens", self.tokens, TOKENS)

    @property
    def architecture(self) -> dict[str, Any]:
        """The keyword arguments of a new encoder (:func:`mmm_eeg.model.loading.load_encoder`)."""
        keys = ("dim", "depth", "heads", "absent", "pos_encoding", "hierarchy")
        return {k: getattr(self, k) for k in keys}


@dataclass
class PretrainConfig(TrainerConfig, EncoderConfig):
    """MMM pretraining (defaults: the paper's recipe at our width).

    Parameters
    ----------
    epochs : int
        Passes over the training windows.
    batch_size : int
        Windows per step and device.
    lr : float
        Peak AdamW learning rate (linear warm-up, cosine decay).
    weight_decay : float
        AdamW weight decay.
    warmup_fraction : float
        Share of the steps spent warming up.
    decoder_depth : int
        Decoder blocks.
    init : str | None
        Start from weights: a registered name, a PhysioPro .pt, a model dir, a run dir or a
        .ckpt.
    complete_init : bool
        Complete init: train only the encoder tensors its file lacks (the released .pt: the
        region tokens and the position embedding) and the decoder; every loaded weight stays
        frozen.
    val_fraction : float
        Share of recordings held out to report reconstruction.
    mask_mode : str
        Global and regional masking: cycle (alternate by epochs), mix (per batch), or one
        stage only: random (global) or regional.
    mask_cycle : int
        Steps per masking stage in cycle mode.
    random_ratio : float
        Share of present nodes masked by the global (random) stage.
    regional_ratio : float
        Share of regions masked by the regional stage.
    loss_on : str
        Reconstruction loss on masked nodes only, or on all present nodes.
    head : str
        Reconstruction head: linear or mlp.
    checkpoint_every_n_steps : int | None
        Also checkpoint every N steps (None: every epoch).
    waveform_loss : float
        Loss weight of the masked nodes' signal (standardised per window); raw tokens only.
    spectrum_loss : float
        Loss weight of the masked nodes' log-amplitude spectrum; raw tokens only.
    compact : bool
        Leave absent nodes out of the sequence (absent=exclude): each batch's windows are
        grouped by their present nodes, each group runs on its own tokens (a 19-channel cap:
        37 of 80). The same loss to float rounding, 2.5x faster for a 19-channel cap.
    """

    epochs: int = 20
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    decoder_depth: int = 6
    init: str | None = None
    complete_init: bool = False
    val_fraction: float = 0.1
    mask_mode: MaskMode = "cycle"
    mask_cycle: int = 100
    random_ratio: float = 0.5
    regional_ratio: float = 0.35
    loss_on: Literal["masked", "all"] = "masked"
    head: Literal["linear", "mlp"] = "linear"
    checkpoint_every_n_steps: int | None = None
    waveform_loss: float = 1.0
    spectrum_loss: float = 1.0
    compact: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("waveform_loss", self.waveform_loss, low=0)
        check_range("spectrum_loss", self.spectrum_loss, low=0)
        check_range("epochs", self.epochs, low=1)
        check_range("batch_size", self.batch_size, low=1)
        check_range("val_fraction", self.val_fraction, low=0, high=1, low_open=True)
        if self.compact and self.absent != "exclude":
            raise UserInputError(
                f"compact leaves absent nodes out of the sequence, which only absent='exclude' "
                f"allows (under {self.absent!r} their tokens take part); drop compact or use "
                "absent='exclude'.",
                parameter="compact",
            )

    def loss_weights(self, tokens: str) -> dict[str, float]:
        """The autoencoder's ``targets`` for an encoder of ``tokens`` (DE's weight is 1)."""
        given = {"waveform": self.waveform_loss, "spectrum": self.spectrum_loss}
        return {k: given.get(k, w) for k, w in default_targets(tokens).items()}


@dataclass
class FinetuneConfig(TrainerConfig, EncoderConfig):
    """Fine-tuning and its evaluation protocol.

    Parameters
    ----------
    init : str
        Encoder: scratch, a pretraining run dir, a model dir or a PhysioPro .pt.
    protocol : str
        How subjects and windows are split into folds (see make_folds).
    test_subjects : list of str | None
        Test subjects for holdout (or a subset of the loso folds).
    k : int
        Folds for subject-kfold and time-blocked.
    val_subjects : int
        Training subjects held out per fold for model selection and early stopping.
    freeze_encoder : bool
        Train only the head (linear probe).
    epochs : int
        Most epochs per fold.
    patience : int
        Epochs without a better validation score before stopping.
    batch_size : int
        Windows per step and device.
    lr : float
        Learning rate of the head.
    encoder_lr_scale : float
        The encoder's rate as a multiple of lr (a pretrained encoder only).
    layer_decay : float
        Block i of d learns at layer_decay**(d-i) of the encoder's rate (1: no decay).
    freeze_epochs : int
        Epochs with the encoder frozen while the head warms up, before it trains.
    weight_decay : float
        AdamW weight decay.
    class_weights : str | None
        balanced: weight the loss by inverse class frequency.
    hidden : int
        Hidden width of the head.
    dropout : float
        Dropout before the head's last layer.
    channel_dropout : float
        Probability that a training window loses a random set of its channels.
    channel_dropout_min : int
        Channels a window keeps at least under channel dropout.
    """

    init: str = "scratch"
    protocol: Protocol = "loso"
    test_subjects: list[str] | None = None
    k: int = 5
    val_subjects: int = 2
    freeze_encoder: bool = False
    epochs: int = 30
    patience: int = 8
    batch_size: int = 256
    lr: float = 1e-3
    encoder_lr_scale: float = 0.1
    layer_decay: float = 1.0
    freeze_epochs: int = 0
    weight_decay: float = 0.01
    class_weights: Literal["balanced"] | None = None
    hidden: int = 64
    dropout: float = 0.1
    channel_dropout: float = 0.0
    channel_dropout_min: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_option("protocol", self.protocol, PROTOCOLS)
        check_range("epochs", self.epochs, low=1)
        check_range("channel_dropout", self.channel_dropout, low=0, high=1)
        check_range("layer_decay", self.layer_decay, low=0, high=1, low_open=True)
        check_range("freeze_epochs", self.freeze_epochs, low=0)
        check_range("channel_dropout_min", self.channel_dropout_min, low=1)
        if self.class_weights is not None:
            check_option("class_weights", self.class_weights, ("balanced",))


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
