"""Models: the MMM encoder, the pretraining autoencoder, masking, the classifier.

Names are imported on first use (PEP 562): configs reach the torch-free
:mod:`mmm_eeg.model.choices` and :mod:`mmm_eeg.model.pos_embed` through this package without
importing torch, so the command line starts fast.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time, __getattr__ imports on first use
    from mmm_eeg.model.autoencoder import MMMAutoencoder
    from mmm_eeg.model.classifier import MMMClassifier
    from mmm_eeg.model.encoder import MMMEncoder, noise_seed
    from mmm_eeg.model.fixed_montage import FixedMontageEncoder, compile_for_inference
    from mmm_eeg.model.masking import MaskSchedule, channel_dropout, random_mask, regional_mask
    from mmm_eeg.model.physiopro import (
        checkpoint_filter_fn,
        load_physiopro_encoder,
        to_physiopro_state_dict,
    )
    from mmm_eeg.model.registry import ModelCard, create_model, list_models, model_card

#: Public name -> the module that defines it.
_LAZY = {
    "FixedMontageEncoder": "fixed_montage",
    "MMMAutoencoder": "autoencoder",
    "MMMClassifier": "classifier",
    "MMMEncoder": "encoder",
    "MaskSchedule": "masking",
    "ModelCard": "registry",
    "channel_dropout": "masking",
    "checkpoint_filter_fn": "physiopro",
    "compile_for_inference": "fixed_montage",
    "create_model": "registry",
    "list_models": "registry",
    "load_physiopro_encoder": "physiopro",
    "model_card": "registry",
    "noise_seed": "encoder",
    "random_mask": "masking",
    "regional_mask": "masking",
    "to_physiopro_state_dict": "physiopro",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(f"mmm_eeg.model.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmm_eeg.model' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "FixedMontageEncoder",
    "MMMAutoencoder",
    "MMMClassifier",
    "MMMEncoder",
    "MaskSchedule",
    "ModelCard",
    "channel_dropout",
    "checkpoint_filter_fn",
    "compile_for_inference",
    "create_model",
    "list_models",
    "load_physiopro_encoder",
    "model_card",
    "noise_seed",
    "random_mask",
    "regional_mask",
    "to_physiopro_state_dict",
]
