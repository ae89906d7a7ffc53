"""Node tokens from the signal: a temporal patch embedding plus the window's spectrum.

A raw-token encoder reads, per node, the window's signal (:mod:`mmm_eeg.waveforms`: band-limited,
resampled to one rate, in units of 100 µV), optionally preceded by its DE. Its token is the sum
of three embeddings, after LaBraM's and CBraMod's patch embeddings:

- temporal (LaBraM's ``TemporalConv``): two 1-d convolutions over the window (kernel about a
  tenth of it, hop a twentieth; group norm and GELU), flattened and projected to ``dim``. It
  sees waveform shape and phase, which no band power has;
- spectral (CBraMod's): the log-amplitude spectrum of the window, projected to ``dim``. It
  gives the token the band powers at full resolution from the first step, so a raw token
  knows at least what a DE token knows;
- DE (``de+raw`` only): the DE model's own linear embedding of the bands.

The spectrum is a matrix product with fixed cosine and sine bases rather than ``torch.fft``,
so that the exported ONNX graph has only standard operators; the same module gives the
pretraining's spectrum target, so target and input can never disagree.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LogAmplitudeSpectrum(nn.Module):
    """``log(|rfft(x)| + eps)`` over the last axis, (..., n) -> (..., n // 2 + 1)."""

    def __init__(self, n_samples: int, eps: float = 1e-3) -> None:
        super().__init__()
        time = torch.arange(n_samples, dtype=torch.float64)
        freq = torch.arange(n_samples // 2 + 1, dtype=torch.float64)
        angle = 2 * math.pi * time[:, None] * freq[None] / n_samples
        # Bases are rebuilt on construction: no need to store them with the weights.
        self.register_buffer("cos", torch.cos(angle).float(), persistent=False)
        self.register_buffer("sin", torch.sin(angle).float(), persistent=False)
        self.eps = eps

    @property
    def n_freqs(self) -> int:
        return self.cos.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        real, imag = x @ self.cos.to(x.dtype), x @ self.sin.to(x.dtype)
        return torch.log(torch.sqrt(real * real + imag * imag) + self.eps)


class SignalEmbedding(nn.Module):
    """Node tokens (batch, nodes, dim) from (batch, nodes, n_bands + n_samples) inputs.

    Parameters
    ----------
    n_samples : int
        Signal samples per node.
    dim : int
        Token width.
    n_bands : int
        DE values before the signal (0: signal only).
    channels : int
        Feature maps of the temporal convolutions.
    """

    def __init__(self, n_samples: int, dim: int, n_bands: int = 0, channels: int = 8) -> None:
        super().__init__()
        if n_samples < 8:
            raise ValueError(f"A signal token needs at least 8 samples, got {n_samples}.")
        self.n_samples, self.n_bands = n_samples, n_bands
        self.in_features = n_bands + n_samples
        kernel, hop = 2 * round(n_samples / 20) + 1, max(1, n_samples // 20)
        self.temporal = nn.Sequential(
            nn.Conv1d(1, channels, kernel, stride=hop),
            nn.GroupNorm(4 if channels % 4 == 0 else 1, channels),
            nn.GELU(),
            nn.Conv1d(channels, channels, 3, padding=1),
            nn.GroupNorm(4 if channels % 4 == 0 else 1, channels),
            nn.GELU(),
        )
        steps = (n_samples - kernel) // hop + 1
        self.temporal_proj = nn.Linear(channels * steps, dim)
        self.spectrum = LogAmplitudeSpectrum(n_samples)
        self.spectral_proj = nn.Linear(self.spectrum.n_freqs, dim)
        self.de = nn.Linear(n_bands, dim) if n_bands else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        signal = x[..., self.n_bands :]
        lead = signal.shape[:-1]
        maps = self.temporal(signal.reshape(-1, 1, self.n_samples))
        tokens = self.temporal_proj(maps.flatten(1)).reshape(*lead, -1)
        tokens = tokens + self.spectral_proj(self.spectrum(signal))
        if self.de is not None:
            tokens = tokens + self.de(x[..., : self.n_bands])
        return tokens
