"""A model's input contract: how raw EEG became the features it was trained on.

Every saved model records its :class:`FeatureSpec` in ``config.json``; ``evaluate``, ``embed``,
``predict`` and :func:`mmm_eeg.load_model` read it, so a model is always fed the windows, DE
definition, topology and standardisation it learned from, and a corpus built otherwise is
refused with both values named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mmm_eeg.errors import UserInputError
from mmm_eeg.normalization import NORMALIZATIONS, Normalization, Normalizer
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.validation import check_option
from mmm_eeg.windows import PreprocessConfig


@dataclass(frozen=True)
class FeatureSpec:
    """Windows, DE, topology and standardisation a model reads.

    Parameters
    ----------
    preprocessing : PreprocessConfig
        Window length and hop, bands, DE method, resampling, reference, amplitude limit, ...
    topology : str
        The topology's name.
    nodes : tuple of str
        The node order of the feature tensor.
    normalize : str
        The standardisation (one of ``NORMALIZATIONS``); for new data, the statistics come from
        the data given (a new recording or subject's own windows).
    """

    preprocessing: PreprocessConfig = field(default_factory=PreprocessConfig)
    topology: str = "seed62"
    nodes: tuple[str, ...] = field(default_factory=lambda: UnifiedTopology.default().nodes)
    normalize: Normalization = "recording"

    def __post_init__(self) -> None:
        check_option("normalize", self.normalize, NORMALIZATIONS)

    @classmethod
    def of(
        cls, topology: UnifiedTopology, preprocessing: PreprocessConfig, normalize: str
    ) -> FeatureSpec:
        """The spec of features made with ``preprocessing`` on ``topology``."""
        return cls(preprocessing, topology.name, topology.nodes, normalize)  # type: ignore[arg-type]

    @property
    def normalizer(self) -> Normalizer:
        """The :class:`~mmm_eeg.normalization.Normalizer` of ``normalize``."""
        return Normalizer.parse(self.normalize)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (as stored in a model's ``config.json``)."""
        return {
            "preprocessing": self.preprocessing.to_dict(),
            "topology": self.topology,
            "nodes": list(self.nodes),
            "normalize": self.normalize,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FeatureSpec:
        """Rebuild a spec written by :meth:`to_dict`."""
        return cls(
            PreprocessConfig.from_dict(values["preprocessing"]),
            values["topology"],
            tuple(values["nodes"]),
            values["normalize"],
        )

    def check_features(self, other: FeatureSpec, what: str = "the data") -> None:
        """Refuse features made otherwise than this spec says (standardisation aside).

        Raises
        ------
        UserInputError
            Naming each setting that differs, with the model's value and ``what``'s.
        """
        ours, theirs = self.preprocessing.to_dict(), other.preprocessing.to_dict()
        differences = [
            f"{key}: model {ours[key]!r}, {what} {theirs.get(key)!r}"
            for key in ours
            if ours[key] != theirs.get(key)
        ]
        if (self.topology, self.nodes) != (other.topology, other.nodes):
            differences.append(f"topology: model {self.topology!r}, {what} {other.topology!r}")
        if differences:
            raise UserInputError(
                f"The model reads features made otherwise than {what}: "
                + "; ".join(differences)
                + ". Preprocess the recordings with the model's settings "
                "(they are in its config.json under feature_spec)."
            )
