"""The pretraining model: encoder, then a decoder that sees only the region and class tokens."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from mmm_eeg.model.encoder import MMMEncoder, token_encoding
from mmm_eeg.model.layers import Block
from mmm_eeg.model.pretrained import PretrainedMixin, check_config, spec_in
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.validation import check_option

LossOn = Literal["masked", "all"]


class MMMAutoencoder(PretrainedMixin, nn.Module):
    """Masked autoencoder over DE features (MMM pretraining).

    The decoder has the encoder's width, block type and hierarchy mask. It receives the
    encoder's tokens with every channel token replaced by a learned mask token (re-masked) and
    position encodings added again, so only region tokens (and the class token) carry
    information about the input; a head predicts each node's features. An encoder without the
    hierarchy has no region tokens: its decoder is a plain masked autoencoder's, which replaces
    only the masked and absent nodes' tokens.

    Parameters
    ----------
    encoder : MMMEncoder
        The encoder to pretrain.
    decoder_depth : int
        Decoder blocks (paper: same as the encoder).
    head : {"linear", "mlp"}
        Prediction head: one linear layer, or Linear-GELU-Linear.
    loss_on : {"masked", "all"}
        MSE over masked present nodes (default) or over all present nodes.
    feature_spec : FeatureSpec | None
        The input contract it is pretrained on; None: the encoder's.
    """

    def __init__(
        self,
        encoder: MMMEncoder,
        decoder_depth: int = 6,
        head: Literal["linear", "mlp"] = "linear",
        loss_on: LossOn = "masked",
        feature_spec: FeatureSpec | None = None,
    ) -> None:
        super().__init__()
        self.feature_spec = feature_spec if feature_spec is not None else encoder.feature_spec
        check_option("loss_on", loss_on, ("masked", "all"))
        check_option("head", head, ("linear", "mlp"))
        self.encoder = encoder
        self.decoder_depth, self.head_type, self.loss_on = decoder_depth, head, loss_on
        dim, n_nodes = encoder.dim, encoder.topology.n_nodes
        self.mask_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.decoder_pos_embed = token_encoding(
            encoder.topology, dim, encoder.pos_encoding, encoder.hierarchy
        )
        self.decoder_blocks = nn.ModuleList(
            Block(dim, encoder.heads, encoder.mlp_ratio, encoder.block)
            for _ in range(decoder_depth)
        )
        self.decoder_norm = nn.LayerNorm(dim)
        out = encoder.in_features
        self.head = (
            nn.Linear(dim, out)
            if head == "linear"
            else nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out))
        )
        self.n_nodes = n_nodes

    def forward(
        self,
        x: torch.Tensor,
        present: torch.Tensor | None = None,
        masked: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Reconstruct every node's features, shape (batch, n_nodes, in_features)."""
        tokens, mask = self.encoder.encode(x, present, masked)
        n = self.n_nodes
        nodes = self.mask_token.expand(x.shape[0], n, -1)
        if not self.encoder.hierarchy:
            hidden = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
            if masked is not None:
                hidden = hidden | masked.to(device=x.device, dtype=torch.bool)
            if present is not None:
                hidden = hidden | ~present.to(device=x.device, dtype=torch.bool)
            nodes = torch.where(hidden[..., None], nodes, tokens[:, :n])
        hidden = torch.cat([nodes, tokens[:, n:]], dim=1)
        hidden = hidden + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            hidden = blk(hidden, mask)
        return self.head(self.decoder_norm(hidden[:, :n]))

    def loss(
        self,
        x: torch.Tensor,
        present: torch.Tensor | None,
        masked: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean squared error of the reconstruction, and the reconstruction.

        The mean runs over the features of masked present nodes (``loss_on="masked"``) or of all
        present nodes (``"all"``); a batch with no such node gives a zero loss.
        """
        prediction = self(x, present, masked)
        weight = torch.ones_like(masked, dtype=x.dtype) if present is None else present.to(x.dtype)
        if self.loss_on == "masked":
            weight = weight * masked.to(x.dtype)
        error = ((prediction - x) ** 2).mean(dim=-1)
        return (error * weight).sum() / weight.sum().clamp(min=1.0), prediction

    def config(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.config(),
            "decoder_depth": self.decoder_depth,
            "head": self.head_type,
            "loss_on": self.loss_on,
        }

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> MMMAutoencoder:
        check_config(config, {"decoder_depth": (int, 1, 256)})
        spec = config.get("feature_spec")
        encoder = MMMEncoder._from_config({**config["encoder"], "feature_spec": spec})
        return cls(
            encoder, config["decoder_depth"], config["head"], config["loss_on"], spec_in(config)
        )
