"""Raw EEG in, predictions out: a differentiable DE front end and a braindecode-style model.

:class:`BandDifferentialEntropy` computes, in torch, what
``differential_entropy(..., method="fft")`` computes in numpy for one window per input
(Hann-tapered FFT band power, ``0.5 · log(2πe · σ²)``), so gradients flow to the signal.
:class:`MMMRawClassifier` follows braindecode's constructor conventions (``n_outputs``,
``n_chans``, ``chs_info``, ``n_times``, ``sfreq``): it reads windows of raw EEG of any montage
(``chs_info`` names the channels, mapped onto the topology), standardises each window's DE per
band over its mapped channels, and classifies with an MMM encoder, so tools that train
braindecode models on windows (``EEGClassifier``) can train it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mmm_eeg.errors import UserInputError
from mmm_eeg.features import DEFAULT_BANDS, check_bands
from mmm_eeg.model.classifier import MMMClassifier
from mmm_eeg.model.encoder import MMMEncoder

_LOG_2PIE = math.log(2 * math.pi * math.e)


class BandDifferentialEntropy(nn.Module):
    """Differential entropy per channel and band of each input window (differentiable).

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz.
    n_times : int
        Samples per window.
    bands : sequence of (name, low, high)
        Frequency bands in Hz, half-open ``[low, high)``.

    Notes
    -----
    Input (batch, n_chans, n_times); output (batch, n_chans, n_bands). Equal to
    :func:`mmm_eeg.features.differential_entropy` with ``method="fft"`` and
    ``window = n_times / sfreq``.
    """

    def __init__(
        self,
        sfreq: float,
        n_times: int,
        bands: Sequence[tuple[str, float, float]] = DEFAULT_BANDS,
    ) -> None:
        super().__init__()
        bands = check_bands(bands, sfreq, "raise")
        freqs = torch.fft.rfftfreq(n_times, 1.0 / sfreq, dtype=torch.float64)
        members = torch.stack([(freqs >= lo) & (freqs < hi) for _, lo, hi in bands], dim=1)
        empty = [bands[b][0] for b in range(len(bands)) if not members[:, b].any()]
        if empty:
            raise UserInputError(
                f"Band(s) {empty} contain no frequency bin in windows of {n_times} samples at "
                f"{sfreq:g} Hz; use longer windows.",
                parameter="n_times",
            )
        taper = torch.hann_window(n_times, periodic=False, dtype=torch.float64)  # np.hanning
        scale = 2.0 / (n_times * float((taper**2).sum()))
        self.register_buffer("taper", taper.float(), persistent=False)
        self.register_buffer("selector", (members * scale).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - x.mean(-1, keepdim=True)) * self.taper.to(x.dtype)
        power = torch.fft.rfft(x, dim=-1).abs() ** 2
        variance = power @ self.selector.to(power.dtype)
        return 0.5 * (_LOG_2PIE + torch.log(variance.clamp(min=1e-30)))


class MMMRawClassifier(nn.Module):
    """An MMM classifier that reads windows of raw EEG (braindecode's conventions).

    Parameters
    ----------
    n_outputs : int
        Classes.
    n_chans : int | None
        Channels of the input; taken from ``chs_info`` when None.
    chs_info : sequence of dict
        MNE's ``info["chs"]`` (or dicts with ``"ch_name"``): names the input channels, which
        are mapped onto the encoder's topology.
    n_times : int
        Samples per input window.
    sfreq : float
        Sampling rate in Hz.
    encoder : MMMEncoder | None
        The encoder (for instance ``create_model("mmm_base_tuh", pretrained=True)``); None: a
        new ``MMMEncoder()``.
    **kwargs
        Further :class:`MMMClassifier` arguments (``hidden``, ``dropout``, ``freeze_encoder``).

    Notes
    -----
    Each window's DE is standardised per band over the window's mapped channels (the
    "recording" standardisation with a window as the recording), so no statistics are fitted.
    """

    def __init__(
        self,
        n_outputs: int,
        n_chans: int | None = None,
        chs_info: Sequence[Mapping[str, Any]] | None = None,
        n_times: int | None = None,
        sfreq: float | None = None,
        encoder: MMMEncoder | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if chs_info is None or n_times is None or sfreq is None:
            raise UserInputError(
                "MMMRawClassifier needs chs_info (the channel names), n_times and sfreq.",
                parameter="chs_info",
            )
        ch_names = [str(ch["ch_name"]) for ch in chs_info]
        if n_chans is not None and n_chans != len(ch_names):
            raise UserInputError(
                f"n_chans={n_chans} but chs_info names {len(ch_names)} channels.",
                parameter="n_chans",
            )
        self.n_outputs, self.n_chans, self.n_times, self.sfreq = (
            n_outputs, len(ch_names), n_times, sfreq,
        )  # fmt: skip
        self.de = BandDifferentialEntropy(sfreq, n_times)
        self.classifier = MMMClassifier(
            encoder or MMMEncoder(), n_outputs, ch_names=ch_names, **kwargs
        )
        mapped = torch.zeros(len(ch_names), dtype=torch.bool)
        mapped[self.classifier.channel_source[self.classifier.channel_source >= 0]] = True
        self.register_buffer("mapped", mapped, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, n_outputs) of windows (batch, n_chans, n_times)."""
        de = self.de(x)  # (batch, n_chans, n_bands)
        fed = de[:, self.mapped]
        mean = fed.mean(1, keepdim=True)
        std = fed.std(1, unbiased=False, keepdim=True).clamp(min=1e-8)
        return self.classifier(((de - mean) / std).float())
