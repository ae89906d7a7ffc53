"""mmm-eeg: topology-agnostic EEG representation learning (MMM, NeurIPS 2023).

The curated API. Names that need torch or Lightning are imported on first use (PEP 562), so
``import mmm_eeg`` and the command line's start stay fast::

    import mmm_eeg

    model = mmm_eeg.load_model("mmm_base_tuh")  # the authors' encoder, with its input contract
    tokens = model.embed(raw, pool="mean")       # an mne.io.Raw -> one vector per 1 s window
"""

from importlib.metadata import PackageNotFoundError, version

from mmm_eeg.errors import ChannelMappingError, UserInputError
from mmm_eeg.lazy import lazy_exports
from mmm_eeg.mapping import ChannelMapping
from mmm_eeg.topology import UnifiedTopology

try:
    __version__ = version("mmm-eeg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

#: Public name -> the module that defines it (imported when first used).
_LAZY = {
    "Corpus": "mmm_eeg.corpus",
    "FeatureSpec": "mmm_eeg.spec",
    "MMMClassifier": "mmm_eeg.model",
    "MMMClassifierEstimator": "mmm_eeg.estimators",
    "MMMEmbedder": "mmm_eeg.estimators",
    "MMMEncoder": "mmm_eeg.model",
    "MMMModel": "mmm_eeg.inference",
    "DifferentialEntropy": "mmm_eeg.estimators",
    "GroupStandardScaler": "mmm_eeg.estimators",
    "Normalizer": "mmm_eeg.normalization",
    "PreprocessConfig": "mmm_eeg.windows",
    "Recording": "mmm_eeg.io.recording",
    "create_model": "mmm_eeg.model",
    "differential_entropy": "mmm_eeg.features",
    "list_models": "mmm_eeg.model",
    "load_model": "mmm_eeg.inference",
    "read_recording": "mmm_eeg.io.readers",
}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)

__all__ = [
    "ChannelMapping",
    "ChannelMappingError",
    "UnifiedTopology",
    "UserInputError",
    "__version__",
    *_LAZY,
]
