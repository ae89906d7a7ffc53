"""The pretraining model: encoder, then a decoder that sees only the region and class tokens."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from mmm_eeg.errors import UserInputError
from mmm_eeg.model.choices import TARGETS, default_targets
from mmm_eeg.model.encoder import MMMEncoder, shared_nodes, token_encoding
from mmm_eeg.model.layers import Block
from mmm_eeg.model.pretrained import PretrainedMixin, check_config, spec_in
from mmm_eeg.spec import FeatureSpec
from mmm_eeg.validation import check_option

LossOn = Literal["masked", "all"]


class MMMAutoencoder(PretrainedMixin, nn.Module):
    """Masked autoencoder over node tokens (MMM pretraining).

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
    targets : mapping of str to float | None
        Loss weight of each reconstruction target (keys from ``TARGETS``; each target's error
        is the mean over its values): ``"de"`` (DE tokens), ``"waveform"`` (the signal,
        standardised per node and window) and ``"spectrum"`` (its log-amplitude spectrum),
        the latter two for raw tokens. None: :func:`default_targets` of the encoder's tokens.
    """

    def __init__(
        self,
        encoder: MMMEncoder,
        decoder_depth: int = 6,
        head: Literal["linear", "mlp"] = "linear",
        loss_on: LossOn = "masked",
        feature_spec: FeatureSpec | None = None,
        targets: Mapping[str, float] | None = None,
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
        self.targets = self._check_targets(encoder, targets)
        widths = {"de": encoder.in_features, "waveform": encoder.signal_samples,
                  "spectrum": encoder.signal_samples // 2 + 1}  # fmt: skip
        # Per output column: its target's weight over its width (a weighted mean per target).
        column_weight = torch.cat(
            [torch.full((widths[k],), w / widths[k]) for k, w in self.targets.items()]
        )
        self.register_buffer("column_weight", column_weight, persistent=False)
        out = len(column_weight)
        self.head = (
            nn.Linear(dim, out)
            if head == "linear"
            else nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out))
        )
        self.n_nodes = n_nodes

    @staticmethod
    def _check_targets(encoder: MMMEncoder, targets: Mapping[str, float] | None) -> dict:
        targets = default_targets(encoder.tokens) if targets is None else dict(targets)
        usable = list(default_targets(encoder.tokens))
        wrong = sorted(set(targets) - set(usable))
        if wrong or not targets or min(targets.values()) < 0 or sum(targets.values()) <= 0:
            raise UserInputError(
                f"targets {targets} do not suit an encoder of {encoder.tokens!r} tokens: give "
                f"non-negative weights, not all zero, for some of {usable}.",
                parameter="targets",
            )
        return {k: float(targets[k]) for k in TARGETS if targets.get(k, 0) > 0}

    def reconstruction_target(self, x: torch.Tensor) -> torch.Tensor:
        """What the head predicts for each node, (batch, n_nodes, width): the targets' values
        side by side, in ``TARGETS`` order."""
        encoder = self.encoder
        signal = x[..., x.shape[-1] - encoder.signal_samples :]
        parts = []
        for name in self.targets:
            if name == "de":
                parts.append(x[..., : encoder.in_features])
            elif name == "waveform":
                mean, std = signal.mean(-1, keepdim=True), signal.std(-1, keepdim=True)
                parts.append((signal - mean) / (std + 1e-6))
            else:
                parts.append(encoder.patch_embed.spectrum(signal))
        return torch.cat(parts, dim=-1)

    def node_error(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The weighted squared error per node, (batch, n_nodes)."""
        return ((prediction - target) ** 2 * self.column_weight.to(target.dtype)).sum(-1)

    def mean_baseline(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The loss of predicting, for every node, each target value's mean over the nodes
        ``weight`` selects (batch, n_nodes): what a model that learned no structure scores."""
        target = self.reconstruction_target(x)
        total = weight.sum().clamp(min=1.0)
        mean = (target * weight[..., None]).sum((0, 1)) / total
        return (self.node_error(mean.expand_as(target), target) * weight).sum() / total

    def forward(
        self,
        x: torch.Tensor,
        present: torch.Tensor | None = None,
        masked: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Reconstruct every node's targets, shape (batch, n_nodes, width)
        (:meth:`reconstruction_target`)."""
        return self._reconstruct(x, present, masked)

    def _reconstruct(
        self,
        x: torch.Tensor,
        present: torch.Tensor | None,
        masked: torch.Tensor | None,
        nodes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The reconstruction of every node, or of ``nodes`` only (see ``MMMEncoder.encode``)."""
        tokens, mask = self.encoder.encode(x, present, masked, nodes)
        n = self.n_nodes if nodes is None else len(nodes)
        node_tokens = self.mask_token.expand(x.shape[0], n, -1)
        if not self.encoder.hierarchy:
            hidden = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device)
            if masked is not None:
                hidden = hidden | masked.to(device=x.device, dtype=torch.bool)
            if present is not None:
                hidden = hidden | ~present.to(device=x.device, dtype=torch.bool)
            hidden = hidden if nodes is None else hidden[:, nodes]
            node_tokens = torch.where(hidden[..., None], node_tokens, tokens[:, :n])
        pos = self.decoder_pos_embed
        if nodes is not None:
            extra = torch.arange(self.n_nodes, pos.shape[1], device=nodes.device)
            pos = pos[:, torch.cat([nodes, extra])]
        hidden = torch.cat([node_tokens, tokens[:, n:]], dim=1) + pos
        for blk in self.decoder_blocks:
            hidden = blk(hidden, mask)
        return self.head(self.decoder_norm(hidden[:, :n]))

    def loss(
        self,
        x: torch.Tensor,
        present: torch.Tensor | None,
        masked: torch.Tensor,
        compact: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean squared error of the reconstruction, and the reconstruction.

        Per node, the targets' weighted errors (:meth:`node_error`); the mean runs over masked
        present nodes (``loss_on="masked"``) or all present nodes (``"all"``); a batch with no
        such node gives a zero loss.

        ``compact`` (``absent="exclude"`` only): the batch's windows are grouped by their set of
        present nodes and each group runs on the tokens of its own nodes, absent ones left out
        of the sequence (a 19-channel cap: 37 tokens instead of 80). The loss is the same
        objective, to float rounding; absent nodes' reconstructions are returned as 0.
        """
        weight = torch.ones_like(masked, dtype=x.dtype) if present is None else present.to(x.dtype)
        if self.loss_on == "masked":
            weight = weight * masked.to(x.dtype)
        target = self.reconstruction_target(x)
        if not compact or present is None or self.encoder.absent != "exclude":
            prediction = self(x, present, masked)
            error = self.node_error(prediction, target)
            return (error * weight).sum() / weight.sum().clamp(min=1.0), prediction
        total, parts = x.new_zeros(()), []
        for rows in montage_groups(present):
            nodes = shared_nodes(present[rows])
            part = self._reconstruct(x[rows], present[rows], masked[rows], nodes)
            kept = slice(None) if nodes is None else nodes
            error = self.node_error(part, target[rows][:, kept])
            total = total + (error * weight[rows][:, kept]).sum()
            parts.append((rows, nodes, part))
        # One buffer in the head's dtype (bf16 under autocast), absent nodes 0.
        prediction = parts[0][2].new_zeros((*target.shape[:2], parts[0][2].shape[-1]))
        for rows, nodes, part in parts:
            if nodes is None:
                prediction[rows] = part
            else:
                prediction[rows[:, None], nodes] = part
        prediction = prediction.masked_fill(~present[..., None], 0.0)
        return total / weight.sum().clamp(min=1.0), prediction

    def config(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.config(),
            "decoder_depth": self.decoder_depth,
            "head": self.head_type,
            "loss_on": self.loss_on,
            "targets": self.targets,
        }

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> MMMAutoencoder:
        check_config(config, {"decoder_depth": (int, 1, 256)})
        spec = config.get("feature_spec")
        encoder = MMMEncoder._from_config({**config["encoder"], "feature_spec": spec})
        targets = config.get("targets")  # None (configs before raw tokens): the defaults
        if targets is not None and not (
            isinstance(targets, dict) and all(isinstance(v, int | float) for v in targets.values())
        ):
            raise UserInputError(f"config 'targets' must map names to weights, got {targets!r}.")
        return cls(
            encoder, config["decoder_depth"], config["head"], config["loss_on"], spec_in(config),
            targets,
        )  # fmt: skip


#: Windows of a set of present nodes shared by fewer windows than this run together, on the
#: union of their nodes (many tiny groups would cost more in calls than they save).
MIN_GROUP = 32


def montage_groups(present: torch.Tensor) -> list[torch.Tensor]:
    """Row indices of a batch grouped by their set of present nodes, largest sets of windows
    first; sets shared by fewer than :data:`MIN_GROUP` windows form one last group."""
    patterns, group = torch.unique(present, dim=0, return_inverse=True)
    counts = torch.bincount(group, minlength=len(patterns))
    big = torch.nonzero(counts >= MIN_GROUP).squeeze(1)
    big = big[torch.argsort(counts[big], descending=True)]
    groups = [torch.nonzero(group == g).squeeze(1) for g in big]
    rest = torch.nonzero(counts[group] < MIN_GROUP).squeeze(1)
    return [*groups, rest] if len(rest) else groups
