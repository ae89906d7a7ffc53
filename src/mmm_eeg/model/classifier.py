"""Fine-tuning: a 2-layer MLP on the encoder's unified representation."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mmm_eeg.model.encoder import MMMEncoder
from mmm_eeg.model.pretrained import PretrainedMixin, check_config, spec_in
from mmm_eeg.spec import FeatureSpec


class MMMClassifier(PretrainedMixin, nn.Module):
    """Classifier on the unified representation (:meth:`MMMEncoder.unified`).

    Head: flatten, LayerNorm, Linear, GELU, Dropout, Linear; it returns logits (no softmax
    inside: the reference's two softmaxes are not reproduced).

    Parameters
    ----------
    encoder : MMMEncoder
        The (pretrained) encoder.
    n_outputs : int
        Number of classes.
    hidden : int
        Hidden width of the head.
    dropout : float
        Dropout before the last layer.
    freeze_encoder : bool
        Train only the head (linear probing); the encoder stays in eval mode.
    ch_names : sequence of str | None
        The recording's channel names (braindecode style). When given, ``forward`` takes
        features in that channel order, (batch, n_chans, n_inputs), and maps them onto the
        topology itself; otherwise it takes (batch, n_nodes, n_inputs) in node order.
    label_names : sequence of str | None
        Class names, stored with the checkpoint.
    feature_spec : FeatureSpec | None
        The input contract it is trained on; None: the encoder's.
    """

    def __init__(
        self,
        encoder: MMMEncoder,
        n_outputs: int,
        hidden: int = 64,
        dropout: float = 0.1,
        freeze_encoder: bool = False,
        ch_names: Sequence[str] | None = None,
        label_names: Sequence[str] | None = None,
        feature_spec: FeatureSpec | None = None,
    ) -> None:
        super().__init__()
        self.feature_spec = feature_spec if feature_spec is not None else encoder.feature_spec
        if n_outputs < 2:
            raise ValueError(f"n_outputs must be at least 2, got {n_outputs}.")
        if label_names is not None and len(label_names) != n_outputs:
            raise ValueError(f"label_names has {len(label_names)} names for {n_outputs} outputs.")
        self.encoder = encoder
        self.n_outputs, self.hidden, self.dropout = n_outputs, hidden, dropout
        self.freeze_encoder = freeze_encoder
        self.label_names = list(label_names) if label_names is not None else None
        width = encoder.n_unified * encoder.dim
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.LayerNorm(width),
            nn.Linear(width, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_outputs),
        )
        self.ch_names = list(ch_names) if ch_names is not None else None
        source = torch.arange(encoder.topology.n_nodes)
        if ch_names is not None:
            mapping = encoder.topology.map_channels(list(ch_names))
            source = torch.tensor(mapping.source)
        self.register_buffer("channel_source", source, persistent=False)

    def train(self, mode: bool = True) -> MMMClassifier:
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor, present: torch.Tensor | None = None) -> torch.Tensor:
        """Logits, shape (batch, n_outputs)."""
        if self.ch_names is not None:
            if x.ndim != 3 or x.shape[1] != len(self.ch_names):
                raise ValueError(
                    f"x must have shape (batch, {len(self.ch_names)}, features) in the order of "
                    f"ch_names, got {tuple(x.shape)}."
                )
            fed = (self.channel_source >= 0).expand(x.shape[0], -1)
            x = x[:, self.channel_source.clamp(min=0)] * fed[..., None]
            present = fed if present is None else present & fed
        # A frozen encoder runs without autograd: its weights get no gradient, and the encoder
        # it was given is left as it was (no requires_grad flags changed on it).
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoder):
            tokens = self.encoder.unified(x, present)
        return self.head(tokens)

    def for_montage(self, nodes: Sequence[int] | np.ndarray) -> nn.Sequential:
        """A frozen copy for windows that all have ``nodes`` (topology indices) present.

        Input: the present nodes' features in topology order, (batch, len(nodes), features);
        output: logits. See :meth:`MMMEncoder.for_montage`.
        """
        head = copy.deepcopy(self.head).eval().requires_grad_(False)
        return nn.Sequential(self.encoder.for_montage(nodes), head)

    def config(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.config(),
            "n_outputs": self.n_outputs,
            "hidden": self.hidden,
            "dropout": self.dropout,
            "freeze_encoder": self.freeze_encoder,
            "ch_names": self.ch_names,
            "label_names": self.label_names,
        }

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> MMMClassifier:
        check_config(config, {"n_outputs": (int, 2, 1_000_000), "hidden": (int, 1, 1_000_000),
                              "dropout": ((int, float), 0, 1)})  # fmt: skip
        spec = spec_in(config)  # the encoder reads what the classifier reads
        encoder = MMMEncoder._from_config(
            {**config["encoder"], "feature_spec": config.get("feature_spec")}
        )
        keys = ("n_outputs", "hidden", "dropout", "freeze_encoder", "ch_names", "label_names")
        return cls(encoder, **{k: config[k] for k in keys}, feature_spec=spec)
