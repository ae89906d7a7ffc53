"""Named model configurations, timm style: ``list_models()``, ``create_model(name, ...)``.

A :class:`ModelCard` is the one place a named model's architecture, weights file and input
contract are written. ``mmm_base_tuh`` is the authors' released encoder; its weights are never
downloaded: :func:`~mmm_eeg.datasets.find_checkpoint` finds the file locally.

To publish your own weights, save a model with ``save_pretrained`` (``config.json`` with its
``feature_spec`` + ``model.safetensors``) and upload that folder (for instance with
``huggingface_hub.upload_folder``); users download it (``snapshot_download``) and pass the
folder to :func:`mmm_eeg.load_model`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmm_eeg.datasets import find_checkpoint
from mmm_eeg.errors import UserInputError
from mmm_eeg.model.classifier import MMMClassifier
from mmm_eeg.model.encoder import MMMEncoder
from mmm_eeg.model.physiopro import load_physiopro_encoder
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.validation import check_option
from mmm_eeg.windows import PreprocessConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelCard:
    """A named configuration: architecture, weights file (if released) and input contract.

    Parameters
    ----------
    name : str
        The registry name.
    description : str
        One line for ``list_models``' users.
    encoder : dict
        :class:`MMMEncoder` arguments.
    feature_spec : FeatureSpec
        The features the weights were trained on.
    checkpoint : str | None
        The weights' name, looked up by :func:`~mmm_eeg.datasets.find_checkpoint`: a PhysioPro
        ``.pt`` (the released file) or a ``save_pretrained`` folder; None (random
        initialisation).
    recipe : str | None
        How to make the weights where they are not released (said when they are not found).
    """

    name: str
    description: str
    encoder: dict[str, Any]
    feature_spec: FeatureSpec = field(default_factory=FeatureSpec)
    checkpoint: str | None = None
    recipe: str | None = None


_CARDS = {
    card.name: card
    for card in (
        ModelCard(
            "mmm_base_tuh",
            "The authors' encoder pretrained on TUH (width 64, 6 blocks, 8 heads). Input as the "
            "paper states it: 1 s windows, 5-band DE, z-scored per subject and band; absent "
            "nodes filled with noise.",
            {"dim": 64, "depth": 6, "heads": 8, "absent": "noise"},
            FeatureSpec(normalize="subject"),
            checkpoint="tuh_pretrained_encoder_base.pt",
        ),
        ModelCard(
            "mmm_base_tuh_completed",
            "The authors' encoder with what its file lacks learned: region tokens and position "
            "embedding trained by masked reconstruction on the pool, every released weight "
            "frozen. Same input as mmm_base_tuh.",
            {"dim": 64, "depth": 6, "heads": 8, "absent": "noise"},
            FeatureSpec(normalize="subject"),
            checkpoint="mmm_base_tuh_completed",
            recipe="python bench/complete_tuh.py --checkpoints DIR writes DIR/"
            "mmm_base_tuh_completed (about 20 min on 2 CPU cores); then set MMM_EEG_CHECKPOINTS="
            "DIR.",
        ),
        ModelCard(
            "mmm_base",
            "The released architecture, randomly initialised (for pretraining your own).",
            {"dim": 64, "depth": 6, "heads": 8},
        ),
        ModelCard(
            "mmm_base_raw",
            "The released architecture reading DE and signal tokens (de+raw: 1 s windows, 5-band "
            "DE z-scored per subject, the signal at 100 Hz, 1-45 Hz), randomly initialised (for "
            "pretraining your own raw-token model).",
            {"dim": 64, "depth": 6, "heads": 8, "tokens": "de+raw", "signal_samples": 100},
            FeatureSpec(PreprocessConfig(signal_rate=100.0), normalize="subject", tokens="de+raw"),
        ),
        ModelCard(
            "mmm_small",
            "The paper's width (16), 6 blocks, 4 heads, randomly initialised.",
            {"dim": 16, "depth": 6, "heads": 4},
        ),
    )
}


def list_models() -> list[str]:
    """Names accepted by :func:`create_model` and :func:`mmm_eeg.load_model`."""
    return sorted(_CARDS)


def model_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of a registered name."""
    check_option("name", name, list_models())
    return _CARDS[name]


def create_model(
    name: str,
    pretrained: bool | str | Path = False,
    n_outputs: int | None = None,
    checkpoint_dir: str | Path | None = None,
    **kwargs: Any,
) -> MMMEncoder | MMMClassifier:
    """Build a registered model, with its released weights when ``pretrained``.

    Parameters
    ----------
    name : str
        One of :func:`list_models`.
    pretrained : bool | str | path-like
        False: random initialisation. True: the card's weights file, found by
        :func:`~mmm_eeg.datasets.find_checkpoint` (``checkpoint_dir``, ``$MMM_EEG_CHECKPOINTS``,
        ``../shared/checkpoints``). A path: that file.
    n_outputs : int | None
        Classes: return an :class:`MMMClassifier` on the encoder (None: the encoder alone).
    checkpoint_dir : str | path-like | None
        Where to look first for the weights file.
    **kwargs
        Further :class:`MMMClassifier` arguments (``hidden``, ``dropout``, ``freeze_encoder``,
        ``label_names``, ``ch_names``).

    Returns
    -------
    MMMEncoder | MMMClassifier
        With ``feature_spec`` set to the card's.
    """
    card = model_card(name)
    if pretrained is not False:
        if card.checkpoint is None:
            raise UserInputError(
                f"{name!r} has no released weights; pretrained=False, or "
                f"one of {[n for n in list_models() if _CARDS[n].checkpoint]}.",
                parameter="pretrained",
            )
        path = Path(pretrained) if pretrained is not True else _find(card, checkpoint_dir)
        if path.is_dir():  # a save_pretrained folder: the card's input contract is checked
            encoder = MMMEncoder.from_pretrained(path)
            if encoder.feature_spec != card.feature_spec or encoder.absent != card.encoder.get(
                "absent", "exclude"
            ):
                raise UserInputError(
                    f"{path} holds an encoder of another input contract than {name!r}'s card; "
                    "load it with mmm_eeg.load_model instead.",
                    parameter="pretrained",
                )
        else:
            encoder = load_physiopro_encoder(
                path, feature_spec=card.feature_spec, **_without(card.encoder, "dim", "depth")
            )
        found = {"dim": encoder.dim, "depth": encoder.depth}
        expected = {k: card.encoder[k] for k in found}
        if found != expected:
            raise UserInputError(
                f"{path} holds an encoder of {found}, not {name!r}'s {expected}; load it with "
                "mmm_eeg.model.load_physiopro_encoder instead.",
                parameter="pretrained",
            )
    else:
        encoder = MMMEncoder(**card.encoder, feature_spec=card.feature_spec)
    if n_outputs is None:
        return encoder
    return MMMClassifier(encoder, n_outputs, **kwargs)  # the encoder's spec


def _find(card: ModelCard, checkpoint_dir: str | Path | None) -> Path:
    assert card.checkpoint is not None
    try:
        return find_checkpoint(card.checkpoint, checkpoint_dir)
    except UserInputError as err:
        if card.recipe is None:
            raise
        raise UserInputError(f"{err} {card.name!r} is not released: {card.recipe}") from err


def _without(values: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in keys}
