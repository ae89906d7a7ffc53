"""Where an encoder starts from: ``scratch``, a PhysioPro ``.pt``, a model dir or a run dir."""

from __future__ import annotations

import json
from pathlib import Path

from mmm_eeg.errors import UserInputError
from mmm_eeg.model.autoencoder import MMMAutoencoder
from mmm_eeg.model.classifier import MMMClassifier
from mmm_eeg.model.encoder import MMMEncoder
from mmm_eeg.model.physiopro import load_physiopro_encoder
from mmm_eeg.topology import UnifiedTopology


def load_encoder(
    init: str | None,
    topology: UnifiedTopology,
    dim: int = 64,
    depth: int = 6,
    heads: int = 8,
    absent: str = "exclude",
) -> MMMEncoder:
    """An encoder for ``init``, in train mode.

    ``None``/``"scratch"``: a fresh encoder of the given size; a ``.pt``/``.pth`` file: the
    reference (PhysioPro) weights; a directory with ``config.json``: an encoder, autoencoder or
    classifier saved with ``save_pretrained`` (its encoder); a pretraining run directory: its
    ``encoder/``. The absent-node policy is always ``absent`` (it holds no weights).
    """
    if init in (None, "", "scratch"):
        return MMMEncoder(topology, dim=dim, depth=depth, heads=heads, absent=absent)  # type: ignore[arg-type]
    path = Path(init)
    if path.is_file() and path.suffix in (".pt", ".pth", ".ckpt"):
        encoder = load_physiopro_encoder(path, topology=topology, heads=heads, absent=absent)
    elif (path / "encoder" / "config.json").is_file():
        encoder = MMMEncoder.from_pretrained(path / "encoder")
    elif (path / "config.json").is_file():
        kind = json.loads((path / "config.json").read_text()).get("model")
        loader = {
            "MMMEncoder": MMMEncoder,
            "MMMAutoencoder": MMMAutoencoder,
            "MMMClassifier": MMMClassifier,
        }.get(kind)
        if loader is None:
            raise UserInputError(f"{path}: unknown model kind {kind!r} in config.json.")
        model = loader.from_pretrained(path)
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
    if encoder.absent != absent:
        # A new encoder with the requested policy and the same weights, not a mutated one.
        config = {**encoder.config(), "absent": absent}
        rebuilt = MMMEncoder._from_config(config)
        rebuilt.load_state_dict(encoder.state_dict())
        encoder = rebuilt
    return encoder.train()
