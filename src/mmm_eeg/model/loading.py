"""Where an encoder starts from: ``scratch``, a PhysioPro ``.pt``, a model dir or a run dir."""

from __future__ import annotations

import json
from pathlib import Path

from mmm_eeg.errors import UserInputError
from mmm_eeg.model.autoencoder import MMMAutoencoder
from mmm_eeg.model.classifier import MMMClassifier
from mmm_eeg.model.encoder import MMMEncoder
from mmm_eeg.model.physiopro import load_physiopro_encoder
from mmm_eeg.model.pos_embed import PositionKind
from mmm_eeg.topology import UnifiedTopology


def load_encoder(
    init: str | None,
    topology: UnifiedTopology,
    dim: int = 64,
    depth: int = 6,
    heads: int = 8,
    absent: str | None = "exclude",
    pos_encoding: PositionKind = "2d",
    hierarchy: bool = True,
) -> MMMEncoder:
    """An encoder for ``init``, in train mode.

    ``None``/``"scratch"``: a fresh encoder of the given size; a ``.pt``/``.pth`` file: the
    reference (PhysioPro) weights; a directory with ``config.json``: an encoder, autoencoder or
    classifier saved with ``save_pretrained`` (its encoder); a pretraining run directory: its
    ``encoder/``. The absent-node policy is ``absent`` (it holds no weights); None keeps a
    saved encoder's own (``"exclude"`` for new ones). ``dim``, ``depth``, ``heads``,
    ``pos_encoding`` and ``hierarchy`` shape a new encoder; a saved one keeps its own.
    """
    if init in (None, "", "scratch"):
        return MMMEncoder(
            topology, dim=dim, depth=depth, heads=heads, absent=absent or "exclude",  # type: ignore[arg-type]
            pos_encoding=pos_encoding, hierarchy=hierarchy,
        )  # fmt: skip
    path = Path(init)
    if path.is_file() and path.suffix in (".pt", ".pth", ".ckpt"):
        encoder = load_physiopro_encoder(
            path, topology=topology, heads=heads, absent=absent or "exclude"
        )
    elif (path / "encoder" / "config.json").is_file():
        encoder = MMMEncoder.from_pretrained(path / "encoder")
    elif (path / "config.json").is_file():
        model = load_pretrained(path)
        encoder = model if isinstance(model, MMMEncoder) else model.encoder
    else:
        raise UserInputError(
            f"init={init!r} is neither 'scratch', a PhysioPro .pt file, a model directory "
            "(config.json + model.safetensors) nor a pretraining run directory.",
            parameter="init",
        )
    if encoder.topology != topology:
        raise UserInputError(
            f"{init}: its topology {encoder.topology.name!r} differs from the corpus's "
            f"{topology.name!r}; preprocess the data onto the encoder's topology."
        )
    if absent is not None and encoder.absent != absent:
        # A new encoder with the requested policy and the same weights, not a mutated one.
        config = {**encoder.config(), "absent": absent}
        rebuilt = MMMEncoder._from_config(config)
        rebuilt.load_state_dict(encoder.state_dict())
        rebuilt.feature_spec = encoder.feature_spec
        encoder = rebuilt
    return encoder.train()


def load_pretrained(directory: str | Path) -> MMMEncoder | MMMAutoencoder | MMMClassifier:
    """Whatever model a ``save_pretrained`` directory holds (its ``config.json`` says)."""
    directory = Path(directory)
    kind = json.loads((directory / "config.json").read_text()).get("model")
    loaders = {"MMMEncoder": MMMEncoder, "MMMAutoencoder": MMMAutoencoder,
               "MMMClassifier": MMMClassifier}  # fmt: skip
    if kind not in loaders:
        raise UserInputError(
            f"{directory}: unknown model kind {kind!r} in config.json; expected one of "
            f"{', '.join(loaders)}."
        )
    return loaders[kind].from_pretrained(directory)
