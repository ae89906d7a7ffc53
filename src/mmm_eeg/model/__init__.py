"""Models: the MMM encoder, the pretraining autoencoder, masking, the classifier.

Names are imported on first use (PEP 562): configs reach the torch-free
:mod:`mmm_eeg.model.choices` and :mod:`mmm_eeg.model.pos_embed` through this package without
importing torch, so the command line starts fast.
"""

from typing import TYPE_CHECKING

from mmm_eeg.lazy import lazy_exports

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
    "FixedMontageEncoder": "mmm_eeg.model.fixed_montage",
    "MMMAutoencoder": "mmm_eeg.model.autoencoder",
    "MMMClassifier": "mmm_eeg.model.classifier",
    "MMMEncoder": "mmm_eeg.model.encoder",
    "MaskSchedule": "mmm_eeg.model.masking",
    "ModelCard": "mmm_eeg.model.registry",
    "channel_dropout": "mmm_eeg.model.masking",
    "checkpoint_filter_fn": "mmm_eeg.model.physiopro",
    "compile_for_inference": "mmm_eeg.model.fixed_montage",
    "create_model": "mmm_eeg.model.registry",
    "list_models": "mmm_eeg.model.registry",
    "load_physiopro_encoder": "mmm_eeg.model.physiopro",
    "model_card": "mmm_eeg.model.registry",
    "noise_seed": "mmm_eeg.model.encoder",
    "random_mask": "mmm_eeg.model.masking",
    "regional_mask": "mmm_eeg.model.masking",
    "to_physiopro_state_dict": "mmm_eeg.model.physiopro",
}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)

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
