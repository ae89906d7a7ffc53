"""The model's named options, without torch: configs and the command line validate against
them at start-up, before any network is built."""

from __future__ import annotations

from typing import Literal, get_args

#: How pretraining alternates its masking strategies (:class:`~mmm_eeg.model.MaskSchedule`).
MaskMode = Literal["cycle", "mix", "random", "regional"]
MASK_MODES: tuple[str, ...] = get_args(MaskMode)

#: What a masked node's reconstruction is compared with: its DE, its signal standardised
#: per window, or the log-amplitude spectrum of its signal.
TARGETS = ("de", "waveform", "spectrum")


def default_targets(tokens: str) -> dict[str, float]:
    """Loss weights by default: DE for DE tokens, waveform and spectrum for the signal."""
    weights = {"de": 1.0} if "de" in tokens.split("+") else {}
    if tokens != "de":
        weights |= {"waveform": 1.0, "spectrum": 1.0}
    return weights
