"""A model's input contract: how raw EEG became the features it was trained on.

Every saved model records its :class:`FeatureSpec` in ``config.json``; ``evaluate``, ``embed``,
``predict`` and :func:`mmm_eeg.load_model` read it, so a model is always fed the windows, DE
definition, topology and standardisation it learned from, and a corpus built otherwise is
refused with both values named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from mmm_eeg.errors import UserInputError
from mmm_eeg.normalization import NORMALIZATIONS, Normalization, Normalizer
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.validation import check_option
from mmm_eeg.windows import PreprocessConfig

#: What a node's token is made from: its DE, its signal (:mod:`mmm_eeg.waveforms`), or both.
Tokens = Literal["de", "raw", "de+raw"]
TOKENS: tuple[str, ...] = get_args(Tokens)
_SIGNAL_KEYS = ("signal_rate", "signal_band", "signal_unit_uv")


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
        The standardisation of DE (one of ``NORMALIZATIONS``); for new data, the statistics
        come from the data given (a new recording or subject's own windows), except for
        ``"fitted"``, whose statistics were fitted on the training windows and are saved here.
        The signal is not standardised (it is in ``signal_unit_uv``).
    tokens : {"de", "raw", "de+raw"}
        What each node's input is: its DE (n_bands values), its signal (``signal_samples``
        values), or both, DE first.
    statistics : dict | None
        ``normalize="fitted"``: ``{"mean": ..., "std": ...}``, each (n_nodes, n_bands).
    """

    preprocessing: PreprocessConfig = field(default_factory=PreprocessConfig)
    topology: str = "seed62"
    nodes: tuple[str, ...] = field(default_factory=lambda: UnifiedTopology.default().nodes)
    normalize: Normalization = "recording"
    tokens: Tokens = "de"
    statistics: Mapping[str, Any] | None = field(default=None, hash=False, repr=False)

    def __post_init__(self) -> None:
        check_option("normalize", self.normalize, NORMALIZATIONS)
        check_option("tokens", self.tokens, TOKENS)
        if self.statistics is not None:
            shape = (len(self.nodes), len(self.preprocessing.bands))
            given = {k: np.shape(self.statistics.get(k)) for k in ("mean", "std")}
            if self.normalize != "fitted" or any(g != shape for g in given.values()):
                raise UserInputError(
                    f"statistics belong to normalize='fitted' and hold a mean and a std of "
                    f"shape {shape} (nodes, bands); got normalize={self.normalize!r} and "
                    f"shapes {given}.",
                    parameter="statistics",
                )
            # Plain nested lists: comparable, JSON-ready, and not shared with the caller.
            lists = {k: np.asarray(self.statistics[k], dtype=float).tolist() for k in given}
            object.__setattr__(self, "statistics", lists)
        if self.tokens != "de" and self.preprocessing.signal_rate is None:
            raise UserInputError(
                f"tokens={self.tokens!r} reads each window's signal, which these features do "
                "not keep; preprocess with a signal rate (mmm-eeg preprocess --signal-rate 100, "
                "PreprocessConfig(signal_rate=100)).",
                parameter="tokens",
            )

    @classmethod
    def of(
        cls,
        topology: UnifiedTopology,
        preprocessing: PreprocessConfig,
        normalize: str | Normalizer,
        tokens: str = "de",
    ) -> FeatureSpec:
        """The spec of features made with ``preprocessing`` on ``topology`` (a fitted
        :class:`~mmm_eeg.normalization.Normalizer` brings its statistics)."""
        statistics = None
        if isinstance(normalize, Normalizer) and normalize.mean is not None:
            statistics = normalize.to_dict()
        return cls(
            preprocessing,
            topology.name,
            topology.nodes,
            str(normalize),
            tokens,
            statistics,  # type: ignore[arg-type]
        )

    @property
    def n_bands(self) -> int:
        """DE values per node in the input (0 for signal tokens)."""
        return len(self.preprocessing.bands) if "de" in self.tokens.split("+") else 0

    @property
    def signal_samples(self) -> int:
        """Signal samples per node in the input (0 for DE tokens)."""
        if self.tokens == "de":
            return 0
        return self.preprocessing.signal_samples or 0

    @property
    def n_inputs(self) -> int:
        """Values per node of the model's input."""
        return self.n_bands + self.signal_samples

    def model_input(self, de: np.ndarray, signal: np.ndarray | None) -> np.ndarray:
        """The model's input (windows, nodes, n_inputs) from standardised DE and the signal
        (windows, nodes, samples): :func:`token_input` of ``tokens``."""
        if self.tokens != "de" and signal is None:
            raise UserInputError(
                f"The model reads {self.tokens!r} tokens, from each window's signal, and these "
                "windows have none; preprocess with the model's signal rate "
                f"(--signal-rate {self.preprocessing.signal_rate:g})."
            )
        return token_input(self.tokens, de, signal)

    @property
    def normalizer(self) -> Normalizer:
        """The :class:`~mmm_eeg.normalization.Normalizer` of ``normalize`` (with its saved
        statistics when fitted)."""
        if self.statistics is not None:
            mean, std = (np.asarray(self.statistics[k], np.float32) for k in ("mean", "std"))
            return Normalizer("fitted", "node", mean, std)
        return Normalizer.parse(self.normalize)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (as stored in a model's ``config.json``)."""
        return {
            "preprocessing": self.preprocessing.to_dict(),
            "topology": self.topology,
            "nodes": list(self.nodes),
            "normalize": self.normalize,
            "tokens": self.tokens,
            **({} if self.statistics is None else {"statistics": dict(self.statistics)}),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FeatureSpec:
        """Rebuild a spec written by :meth:`to_dict`."""
        return cls(
            PreprocessConfig.from_dict(values["preprocessing"]),
            values["topology"],
            tuple(values["nodes"]),
            values["normalize"],
            values.get("tokens", "de"),  # specs written before raw tokens
            values.get("statistics"),
        )

    def check_features(self, other: FeatureSpec, what: str = "the data") -> None:
        """Refuse features made otherwise than this spec says (standardisation aside).

        Raises
        ------
        UserInputError
            Naming each setting that differs, with the model's value and ``what``'s.
        """
        ours, theirs = self.preprocessing.to_dict(), other.preprocessing.to_dict()
        # A DE model reads no signal: how (or whether) the data keep it does not matter; nor
        # where windows are placed (tiled or locked to events), only what each one holds.
        skip = ("epoch_tmin", *(_SIGNAL_KEYS if self.tokens == "de" else ()))
        differences = [
            f"{key}: model {ours[key]!r}, {what} {theirs.get(key)!r}"
            for key in ours
            if ours[key] != theirs.get(key) and key not in skip
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


def token_input(tokens: str, de: np.ndarray, signal: np.ndarray | None) -> np.ndarray:
    """Per node, what ``tokens`` reads: DE, the signal, or both side by side (float32)."""
    if tokens == "de":
        return np.asarray(de, dtype=np.float32)
    if signal is None:
        raise ValueError(f"tokens={tokens!r} needs the windows' signal.")
    if tokens == "raw":
        return np.asarray(signal, dtype=np.float32)
    out = np.empty((*de.shape[:-1], de.shape[-1] + signal.shape[-1]), dtype=np.float32)
    out[..., : de.shape[-1]], out[..., de.shape[-1] :] = de, signal
    return out
