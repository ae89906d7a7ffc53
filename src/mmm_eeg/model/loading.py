"""One resolver: any model source becomes the network and its input contract.

:func:`resolve_model` is the one place a model is read, as timm's ``build_model_with_cfg`` is
for timm: a registered name, a ``save_pretrained`` directory, a pretraining run, a PhysioPro
``.pt`` or a Lightning ``.ckpt`` of ours. :func:`mmm_eeg.load_model`, :func:`load_encoder`
(every ``--init`` of the command line), ``mmm-eeg embed`` / ``convert`` and the scikit-learn
estimators all go through it, so the same file always gives the same network and the same
:class:`~mmm_eeg.spec.FeatureSpec`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mmm_eeg.errors import UserInputError
from mmm_eeg.model.autoencoder import MMMAutoencoder
from mmm_eeg.model.classifier import MMMClassifier
from mmm_eeg.model.encoder import MMMEncoder, noise_seed
from mmm_eeg.model.physiopro import load_physiopro_encoder, load_plain
from mmm_eeg.model.pos_embed import PositionKind
from mmm_eeg.model.pretrained import load_weights
from mmm_eeg.model.registry import create_model, list_models, model_card
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.topology import UnifiedTopology

logger = logging.getLogger(__name__)

Network = MMMEncoder | MMMAutoencoder | MMMClassifier
#: The key under which our Lightning modules describe their network in a ``.ckpt``.
CHECKPOINT_KEY = "mmm_eeg"
#: A PhysioPro ``.pt`` is read with this registered model's input contract (the paper's).
REFERENCE_CARD = "mmm_base_tuh"
#: Seed of the tensors a source does not hold (the released file's region tokens, a registered
#: name without weights), so that one source always resolves to one network.
INIT_SEED = 0
_KINDS: dict[str, type[Network]] = {
    "MMMEncoder": MMMEncoder, "MMMAutoencoder": MMMAutoencoder, "MMMClassifier": MMMClassifier,
}  # fmt: skip


@dataclass(frozen=True)
class ResolvedModel:
    """A model read from a source: the network, its input contract and where both came from.

    Attributes
    ----------
    network : MMMEncoder | MMMAutoencoder | MMMClassifier
        In eval mode.
    spec : FeatureSpec | None
        The features the weights were trained on (None: the source records none).
    source : str
        What was read (the name or path, and its kind).
    spec_origin : str
        Where ``spec`` came from: the model's config, a model card, or nowhere.
    """

    network: Network
    spec: FeatureSpec | None
    source: str
    spec_origin: str

    @property
    def encoder(self) -> MMMEncoder:
        """The encoder (of an autoencoder or classifier)."""
        network = self.network
        return network if isinstance(network, MMMEncoder) else network.encoder


def resolve_model(
    source: str | Path, checkpoint_dir: str | Path | None = None, heads: int | None = None
) -> ResolvedModel:
    """Read any model source.

    Parameters
    ----------
    source : str | path-like
        A registered name (:func:`~mmm_eeg.model.registry.list_models`: its released weights,
        or random ones for a name without); a ``save_pretrained`` directory (encoder,
        autoencoder or classifier); a pretraining run directory (its ``encoder/``); a PhysioPro
        ``.pt``/``.pth`` (read with the ``mmm_base_tuh`` card's input contract and absent-node
        policy, the paper's); a Lightning ``.ckpt`` written by ``mmm-eeg pretrain`` or
        ``finetune``.
    checkpoint_dir : str | path-like | None
        Where to look first for a registered model's weights file.
    heads : int | None
        Attention heads of a PhysioPro ``.pt`` (the file does not store them); None: the
        card's (8).

    Returns
    -------
    ResolvedModel
    """
    name = str(source)
    if name in list_models():
        card = model_card(name)
        with noise_seed(INIT_SEED):  # weights the card has no file for: the same every time
            network = create_model(name, pretrained=card.checkpoint is not None,
                                   checkpoint_dir=checkpoint_dir)  # fmt: skip
        return ResolvedModel(network.eval(), card.feature_spec, f"registered model {name!r}",
                             f"model card {name!r}")  # fmt: skip
    path = Path(source)
    if not path.exists():
        raise UserInputError(
            f"{source}: no such checkpoint file or model directory, and not a registered model "
            f"({', '.join(list_models())})."
        )
    if path.is_file() and path.suffix in (".pt", ".pth"):
        card = model_card(REFERENCE_CARD)
        options = {"absent": card.encoder["absent"], "heads": heads or card.encoder["heads"]}
        with noise_seed(INIT_SEED):  # the tensors the file lacks: the same every time
            encoder = load_physiopro_encoder(path, feature_spec=card.feature_spec, **options)
        return ResolvedModel(encoder, card.feature_spec, f"{path} (PhysioPro state dict)",
                             f"model card {REFERENCE_CARD!r} (the reference's input)")  # fmt: skip
    if path.is_file() and path.suffix == ".ckpt":
        network = _from_lightning_checkpoint(path)
        return ResolvedModel(network, network.feature_spec, f"{path} (Lightning checkpoint)",
                             _origin(network.feature_spec, "the checkpoint"))  # fmt: skip
    if (path / "encoder" / "config.json").is_file():
        path = path / "encoder"
    if not (path / "config.json").is_file():
        raise UserInputError(
            f"{source}: neither a registered model ({', '.join(list_models())}), a model "
            "directory (config.json + model.safetensors), a pretraining run, a PhysioPro .pt "
            "nor a Lightning .ckpt of mmm-eeg."
        )
    network = load_pretrained(path)
    return ResolvedModel(network, network.feature_spec, f"{path} (model directory)",
                         _origin(network.feature_spec, f"{path / 'config.json'}"))  # fmt: skip


def _origin(spec: FeatureSpec | None, where: str) -> str:
    return where if spec is not None else f"none recorded in {where}"


def load_pretrained(directory: str | Path) -> Network:
    """Whatever model a ``save_pretrained`` directory holds (its ``config.json`` says)."""
    directory = Path(directory)
    try:
        kind = json.loads((directory / "config.json").read_text()).get("model")
    except json.JSONDecodeError as err:
        raise UserInputError(f"{directory / 'config.json'}: not valid JSON ({err}).") from err
    return _kind(kind, directory / "config.json").from_pretrained(directory)


def _kind(kind: Any, where: Path) -> type[Network]:
    if kind not in _KINDS:
        raise UserInputError(
            f"{where}: unknown model kind {kind!r}; expected one of {', '.join(_KINDS)}."
        )
    return _KINDS[kind]


def checkpoint_entry(network: Network, prefix: str) -> dict[str, Any]:
    """What a Lightning module stores under :data:`CHECKPOINT_KEY` so that its ``.ckpt`` can be
    resolved: the network's description and the prefix of its weights in ``state_dict``."""
    return {"description": network.to_dict(), "prefix": prefix}


def _from_lightning_checkpoint(path: Path) -> Network:
    checkpoint = load_plain(path)
    entry = checkpoint.get(CHECKPOINT_KEY) if isinstance(checkpoint, dict) else None
    if not isinstance(entry, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise UserInputError(
            f"{path}: a checkpoint without mmm-eeg's description of its network (its "
            f"{CHECKPOINT_KEY!r} entry): written by another program or an earlier mmm-eeg. Use "
            "the run's encoder/ or fold's model/ directory instead."
        )
    description, prefix = entry["description"], entry["prefix"]
    network = _kind(description.get("model"), path).from_config(description, str(path))
    state = {
        key[len(prefix) :]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(prefix)
    }
    load_weights(network, state, str(path))
    return network.eval()


def load_encoder(
    init: str | Path | None,
    topology: UnifiedTopology,
    dim: int = 64,
    depth: int = 6,
    heads: int = 8,
    absent: str | None = "exclude",
    pos_encoding: PositionKind = "2d",
    hierarchy: bool = True,
    feature_spec: FeatureSpec | None = None,
) -> MMMEncoder:
    """An encoder to train or read, in train mode.

    ``None``/``"scratch"``: a fresh encoder of the given size; a registered name without
    weights (``"mmm_small"``): a fresh encoder of that card's size; anything else: the encoder
    of :func:`resolve_model` of ``init``. The absent-node policy is ``absent`` (it holds no
    weights); None keeps the source's own (``"exclude"`` for a new encoder). ``dim``,
    ``depth``, ``heads``, ``pos_encoding`` and ``hierarchy`` shape a new encoder; a saved one
    keeps its own. ``feature_spec``: the features it will be trained on (None: the source's);
    a new encoder reads its ``tokens``, a saved one keeps its own tokens (the spec follows).
    """
    if init in (None, "", "scratch"):
        return MMMEncoder(
            topology, dim=dim, depth=depth, heads=heads, absent=absent or "exclude",  # type: ignore[arg-type]
            pos_encoding=pos_encoding, hierarchy=hierarchy, feature_spec=feature_spec,
            **_inputs(feature_spec),
        )  # fmt: skip
    if str(init) in list_models() and model_card(str(init)).checkpoint is None:
        # A registered architecture without weights: new weights from this run's generator.
        card = model_card(str(init))
        options = {**card.encoder, "absent": absent or card.encoder.get("absent", "exclude")}
        if feature_spec is not None:  # the card's tokens, sized by the run's features
            feature_spec = replace(feature_spec, tokens=card.encoder.get("tokens", "de"))
            options |= _inputs(feature_spec)
        return MMMEncoder(topology, feature_spec=feature_spec, **options).train()
    resolved = resolve_model(init, heads=heads)
    encoder = resolved.encoder
    if feature_spec is not None and feature_spec.tokens != encoder.tokens:
        logger.info("%s reads %r tokens; its feature spec follows.", init, encoder.tokens)
        feature_spec = replace(feature_spec, tokens=encoder.tokens)
    if feature_spec is not None and encoder.tokens != "de" and encoder.feature_spec is not None:
        # The signal is not standardised: its rate, band and unit must be the encoder's.
        encoder.feature_spec.check_features(feature_spec, "the corpus")
    if encoder.topology != topology:
        raise UserInputError(
            f"{init}: its topology {encoder.topology.name!r} differs from the corpus's "
            f"{topology.name!r}; preprocess the data onto the encoder's topology."
        )
    changes: dict[str, Any] = {}
    if absent is not None and absent != encoder.absent:
        changes["absent"] = absent
    if feature_spec is not None and feature_spec != encoder.feature_spec:
        changes["feature_spec"] = feature_spec
    report = encoder.load_report
    if report and report["initialised"]:
        # To be trained: the tensors the file lacks start from this run's (seeded) generator,
        # like every new weight of the run, not from the resolver's fixed seed.
        fresh = MMMEncoder(**{**encoder.init_args(), **changes})
        fresh.load_state_dict(
            {k: v for k, v in encoder.state_dict().items() if k in report["loaded"]}, strict=False
        )
        fresh.load_report = report
        encoder = fresh
    elif changes:  # a new encoder with the same weights, not a mutated one
        encoder = encoder.replace(**changes)
    logger.info("Encoder from %s; feature spec from %s.", resolved.source, resolved.spec_origin)
    return encoder.train()


def _inputs(spec: FeatureSpec | None) -> dict[str, Any]:
    """The input arguments of a new encoder for features of ``spec`` (none without a spec)."""
    if spec is None:
        return {}
    return {"tokens": spec.tokens, "signal_samples": spec.signal_samples,
            "in_features": len(spec.preprocessing.bands)}  # fmt: skip
