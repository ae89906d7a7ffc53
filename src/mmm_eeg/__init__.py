"""mmm-eeg: topology-agnostic EEG representation learning (MMM, NeurIPS 2023)."""

from importlib.metadata import PackageNotFoundError, version

from mmm_eeg.errors import ChannelMappingError, UserInputError
from mmm_eeg.mapping import ChannelMapping
from mmm_eeg.topology import UnifiedTopology

try:
    __version__ = version("mmm-eeg")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "ChannelMapping",
    "ChannelMappingError",
    "UnifiedTopology",
    "UserInputError",
    "__version__",
]
