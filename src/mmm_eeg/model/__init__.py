"""Models: the MMM encoder, the pretraining autoencoder, masking, the classifier."""

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
