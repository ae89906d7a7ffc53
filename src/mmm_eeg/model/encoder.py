"""The MMM encoder: channel and region tokens, hierarchy mask, transformer blocks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import nn

from mmm_eeg.errors import UserInputError
from mmm_eeg.model.fixed_montage import FixedMontageEncoder
from mmm_eeg.model.layers import Block, BlockType
from mmm_eeg.model.pos_embed import PositionKind, position_encoding
from mmm_eeg.model.pretrained import PretrainedMixin, check_config, spec_in
from mmm_eeg.model.tokens import SignalEmbedding
from mmm_eeg.spec import TOKENS, FeatureSpec, Tokens
from mmm_eeg.topology import UnifiedTopology
from mmm_eeg.validation import check_option, check_range

AbsentPolicy = Literal["exclude", "zero", "noise"]
ABSENT_POLICIES: tuple[str, ...] = get_args(AbsentPolicy)


@contextmanager
def noise_seed(seed: int) -> Iterator[None]:
    """Seed torch's generator for a block, then give the caller's state back.

    An encoder with ``absent="noise"`` (the released model's policy) fills absent nodes from
    torch's generator; inside this block the same input gives the same output, and nothing
    outside the block sees a changed random state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class MMMEncoder(PretrainedMixin, nn.Module):
    """Topology-agnostic EEG encoder (MMM, Yi et al., NeurIPS 2023).

    Tokens: one per topology node (its DE features through one linear embedding, or its signal
    through :class:`~mmm_eeg.model.tokens.SignalEmbedding`), one per region (a learnable vector
    in input space through the same embedding), and a class token. Position encodings are added
    after the embedding; attention follows the topology's hierarchy mask.

    Parameters
    ----------
    topology : UnifiedTopology | None
        The unified topology (default: the 62-node / 17-region SEED layout).
    dim : int
        Model width (the released checkpoint: 64; the paper's models: 16).
    depth : int
        Number of transformer blocks.
    heads : int
        Attention heads; must divide ``dim``.
    mlp_ratio : float
        MLP hidden width as a multiple of ``dim``.
    in_features : int
        DE values per node (5 bands); unused by ``tokens="raw"``.
    pos_encoding : {"2d", "1d", "3d", "spherical"}
        Initial value of the trainable position embedding (see :mod:`mmm_eeg.model.pos_embed`).
    absent : {"exclude", "zero", "noise"}
        Nodes the recording lacks: ``"exclude"`` zeroes their input and blocks them as attention
        keys, so nothing leaks from them; ``"zero"`` only zeroes their input; ``"noise"`` fills
        them with standard normal noise (the paper's choice).
    block : {"reference", "prenorm"}
        ``"reference"``: the block the released weights were trained with; ``"prenorm"``: the
        standard pre-norm block.
    hierarchy : bool
        MMM's hierarchy: region tokens and the attention mask over nodes and regions. False
        gives a plain transformer over the node tokens and the class token (every token
        attends to every present node), the ablation's "no hierarchy".
    feature_spec : FeatureSpec | None
        The input contract of the features the weights learned from (saved with the model).
    tokens : {"de", "raw", "de+raw"}
        A node's input: its DE (``in_features`` values), its signal (``signal_samples``), or
        both, DE first (see :attr:`n_inputs`).
    signal_samples : int
        Signal samples per node (raw tokens).

    Attributes
    ----------
    load_report : dict of str to list of str | None
        Set by :func:`mmm_eeg.model.physiopro.load_physiopro_encoder`: which tensors came from
        the file (``"loaded"``), which kept their initial values (``"initialised"``) and which
        file keys were not the encoder's (``"ignored"``). None for an encoder built otherwise.
    """

    load_report: dict[str, list[str]] | None

    def __init__(
        self,
        topology: UnifiedTopology | None = None,
        dim: int = 64,
        depth: int = 6,
        heads: int = 8,
        mlp_ratio: float = 4.0,
        in_features: int = 5,
        pos_encoding: PositionKind = "2d",
        absent: AbsentPolicy = "exclude",
        block: BlockType = "reference",
        hierarchy: bool = True,
        feature_spec: FeatureSpec | None = None,
        tokens: Tokens = "de",
        signal_samples: int = 0,
    ) -> None:
        super().__init__()
        check_option("absent", absent, ABSENT_POLICIES)
        check_option("tokens", tokens, TOKENS)
        if tokens != "de":
            check_range("signal_samples", signal_samples, low=8)
        self.tokens, self.signal_samples = tokens, int(signal_samples) if tokens != "de" else 0
        if feature_spec is not None and (feature_spec.tokens, feature_spec.signal_samples) != (
            tokens,
            self.signal_samples,
        ):
            raise UserInputError(
                f"The encoder reads {tokens!r} tokens ({self.signal_samples} signal samples); "
                f"its feature spec says {feature_spec.tokens!r} "
                f"({feature_spec.signal_samples}). Build the spec with the encoder's tokens."
            )
        self.feature_spec = feature_spec
        check_range("depth", depth, low=1)
        self.topology = topology or UnifiedTopology.default()
        self.dim, self.depth, self.heads = dim, depth, heads
        self.mlp_ratio, self.in_features = mlp_ratio, in_features
        self.pos_encoding, self.absent, self.block = pos_encoding, absent, block
        self.hierarchy = bool(hierarchy)
        self.load_report = None

        if tokens == "de":  # the reference's embedding (its checkpoint keys)
            self.patch_embed: nn.Module = nn.Linear(in_features, dim)
        else:
            bands = in_features if tokens == "de+raw" else 0
            self.patch_embed = SignalEmbedding(self.signal_samples, dim, bands)
        if self.hierarchy:
            regions = torch.randn(1, self.topology.n_regions, self.n_inputs) * 0.02
            self.region_tokens = nn.Parameter(regions)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = token_encoding(self.topology, dim, pos_encoding, self.hierarchy)
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, block) for _ in range(depth))
        # The reference model defines two final norms but never applies them; they are kept,
        # frozen, only so that PhysioPro checkpoints round-trip losslessly.
        self.norm = nn.LayerNorm(dim)
        self.fc_norm = nn.LayerNorm(dim)
        for p in (*self.norm.parameters(), *self.fc_norm.parameters()):
            p.requires_grad_(False)
        if self.hierarchy:
            mask = torch.as_tensor(self.topology.attention_mask())
        else:
            mask = torch.zeros(self.n_tokens, self.n_tokens, dtype=torch.bool)
        self.register_buffer("attn_mask", mask, persistent=False)

    @property
    def n_inputs(self) -> int:
        """Values per node of the input: DE bands, signal samples, or both."""
        return self.patch_embed.in_features

    @property
    def n_tokens(self) -> int:
        """Tokens per sample: nodes, regions (with the hierarchy), class token."""
        return self.topology.n_tokens if self.hierarchy else self.topology.n_nodes + 1

    @property
    def n_unified(self) -> int:
        """Tokens of the unified representation (:meth:`unified`)."""
        return self.topology.n_regions + 1 if self.hierarchy else 2

    def prepare(
        self,
        x: torch.Tensor,
        present: torch.Tensor | None = None,
        masked: torch.Tensor | None = None,
        nodes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Embedded tokens (B, n_tokens, dim) plus position encodings, and the SDPA mask.

        The mask is boolean with True = may attend (the inverse of the topology's convention),
        shape (n_tokens, n_tokens), or (B, 1, n_tokens, n_tokens) when absent nodes are excluded.
        ``nodes`` (sorted topology indices; :meth:`encode`): only these nodes' tokens, then the
        region and class tokens.
        """
        n = self.topology.n_nodes
        if x.ndim != 3 or x.shape[1:] != (n, self.n_inputs):
            raise ValueError(
                f"x must have shape (batch, {n}, {self.n_inputs}) in topology node order, "
                f"got {tuple(x.shape)}; map channels with UnifiedTopology.map_channels first."
            )
        blocked = self.attn_mask
        if present is not None:
            present = present.to(device=x.device, dtype=torch.bool)
            if present.shape != x.shape[:2]:
                raise ValueError(f"present must have shape {tuple(x.shape[:2])}.")
            absent = ~present
            # Traced for export (ONNX, torch.export): no branch may depend on the data.
            tracing = torch.compiler.is_compiling()
            if not tracing and not present.any(dim=1).all():
                raise ValueError("A sample has no present node; drop it before the encoder.")
            if self.absent == "noise":
                x = torch.where(absent[..., None], torch.randn_like(x), x)
            else:
                x = x.masked_fill(absent[..., None], 0.0)
            if nodes is not None:
                absent = absent[:, nodes]
            if self.absent == "exclude" and (tracing or absent.any()):
                keys = torch.zeros(x.shape[0], self.n_tokens, dtype=torch.bool, device=x.device)
                keys[:, :n] = ~present
                blocked = blocked | keys[:, None, :]
        if masked is not None:
            x = x.masked_fill(masked.to(device=x.device, dtype=torch.bool)[..., None], 0.0)
        pos = self.pos_embed
        if nodes is not None:
            keep = torch.cat([nodes, torch.arange(n, self.n_tokens, device=nodes.device)])
            x, pos, blocked = x[:, nodes], pos[:, keep], blocked[..., keep, :][..., keep]
        batch = x.shape[0]
        inputs = x
        if self.hierarchy:
            inputs = torch.cat([x, self.region_tokens.expand(batch, -1, -1).to(x.dtype)], dim=1)
        tokens = torch.cat([self.patch_embed(inputs), self.cls_token.expand(batch, -1, -1)], dim=1)
        tokens = tokens + pos
        return tokens, ~blocked[:, None] if blocked.ndim == 3 else ~blocked

    def forward(
        self,
        x: torch.Tensor,
        present: torch.Tensor | None = None,
        masked: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Encode windows.

        Parameters
        ----------
        x : Tensor, shape (batch, n_nodes, n_inputs)
            Features in topology node order (DE, signal, or both: :attr:`n_inputs`).
        present : Tensor of bool, shape (batch, n_nodes) | None
            Nodes the recording has (None: all).
        masked : Tensor of bool, shape (batch, n_nodes) | None
            Nodes hidden for pretraining; their input is zeroed (their tokens stay).

        Returns
        -------
        Tensor, shape (batch, n_tokens, dim)
            All tokens: nodes, regions (with the hierarchy), class token.
        """
        return self.encode(x, present, masked)[0]

    def encode(
        self,
        x: torch.Tensor,
        present: torch.Tensor | None = None,
        masked: torch.Tensor | None = None,
        nodes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All tokens after the blocks, and the SDPA mask they used (a decoder reuses it).

        ``nodes``: sorted topology indices of the only node tokens to compute (then the region
        and class tokens), for an encoder with ``absent="exclude"`` and windows that lack every
        other node (:func:`shared_nodes`). Blocked as keys, absent nodes' tokens reach no other
        token, so the kept tokens come out the same (to float rounding) from a shorter sequence.
        """
        if nodes is not None:
            if self.absent != "exclude" or present is None:
                raise ValueError("nodes needs absent='exclude' and a present mask.")
            if not torch.compiler.is_compiling():
                outside = torch.ones(self.topology.n_nodes, dtype=torch.bool, device=x.device)
                outside[nodes] = False
                if present.to(device=x.device, dtype=torch.bool)[:, outside].any():
                    raise ValueError("A window has a present node outside nodes.")
        tokens, mask = self.prepare(x, present, masked, nodes)
        for blk in self.blocks:
            tokens = blk(tokens, mask)
        return tokens, mask

    def unified(
        self,
        x: torch.Tensor,
        present: torch.Tensor | None = None,
        masked: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The unified representation, (batch, n_unified, dim).

        With the hierarchy: the region tokens and the class token (the paper's). Without: the
        mean of the present node tokens and the class token (a plain transformer's usual
        summaries).
        """
        tokens = self(x, present, masked)
        n = self.topology.n_nodes
        if self.hierarchy:
            return tokens[:, n:]
        nodes = tokens[:, :n]
        if present is None:
            pooled = nodes.mean(1)
        else:
            weight = present.to(device=nodes.device, dtype=nodes.dtype)[..., None]
            pooled = (nodes * weight).sum(1) / weight.sum(1).clamp(min=1.0)
        return torch.stack([pooled, tokens[:, n]], dim=1)

    def for_montage(self, nodes: Sequence[int] | np.ndarray) -> FixedMontageEncoder:
        """A frozen copy for windows that all have ``nodes`` (topology indices) present.

        Absent nodes are left out of the sequence (``absent="exclude"`` only), which gives the
        same :meth:`unified` from fewer tokens; see :class:`FixedMontageEncoder`.
        """
        return FixedMontageEncoder(self, nodes)

    # -- checkpoints ---------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "topology": self.topology.to_config(),
            "dim": self.dim,
            "depth": self.depth,
            "heads": self.heads,
            "mlp_ratio": self.mlp_ratio,
            "in_features": self.in_features,
            "pos_encoding": self.pos_encoding,
            "absent": self.absent,
            "block": self.block,
            "hierarchy": self.hierarchy,
            "tokens": self.tokens,
            "signal_samples": self.signal_samples,
        }

    @classmethod
    def _from_config(cls, config: dict[str, Any]) -> MMMEncoder:
        # configs saved before these switches
        config = {"hierarchy": True, "tokens": "de", "signal_samples": 0, **config}
        limits = {"dim": (int, 1, 8192), "depth": (int, 1, 256), "heads": (int, 1, 512),
                  "mlp_ratio": ((int, float), 0.01, 64), "in_features": (int, 1, 4096),
                  "signal_samples": (int, 0, 1 << 16)}  # fmt: skip
        check_config(config, limits)
        if config["dim"] % config["heads"]:
            raise UserInputError(
                f"config heads={config['heads']} does not divide dim={config['dim']}."
            )
        kwargs = {k: config[k] for k in ("dim", "depth", "heads", "mlp_ratio", "in_features",
                                         "pos_encoding", "absent", "block", "hierarchy",
                                         "tokens", "signal_samples")}  # fmt: skip
        topology = UnifiedTopology.from_config(config["topology"])
        return cls(topology=topology, feature_spec=spec_in(config), **kwargs)

    def init_args(self) -> dict[str, Any]:
        """The constructor arguments this encoder was built with."""
        return {
            "topology": self.topology, "dim": self.dim, "depth": self.depth, "heads": self.heads,
            "mlp_ratio": self.mlp_ratio, "in_features": self.in_features,
            "pos_encoding": self.pos_encoding, "absent": self.absent, "block": self.block,
            "hierarchy": self.hierarchy, "feature_spec": self.feature_spec,
            "tokens": self.tokens, "signal_samples": self.signal_samples,
        }  # fmt: skip

    def replace(self, **changes: Any) -> MMMEncoder:
        """A new encoder with these weights and some constructor arguments changed.

        For arguments that hold no weights (``absent``, ``feature_spec``); the encoder itself is
        left as it is, and so is torch's random state.
        """
        unknown = sorted(set(changes) - set(self.init_args()))
        if unknown:
            raise TypeError(f"MMMEncoder has no argument {unknown}.")
        with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten below
            encoder = MMMEncoder(**{**self.init_args(), **changes})
        encoder.load_state_dict(self.state_dict())
        encoder.load_report = self.load_report
        return encoder.train(self.training)


def shared_nodes(present: torch.Tensor) -> torch.Tensor | None:
    """Sorted indices of the nodes any window of ``present`` (batch, n_nodes) has; None when
    that is every node (nothing to leave out)."""
    union = present.any(0)
    return None if bool(union.all()) else torch.nonzero(union).squeeze(1)


def token_encoding(
    topology: UnifiedTopology, dim: int, kind: PositionKind, hierarchy: bool = True
) -> nn.Parameter:
    """The trainable position embedding (1, n_tokens, dim); ``"none"`` is zero and frozen."""
    encoding = torch.as_tensor(position_encoding(topology, dim, kind), dtype=torch.float32)
    if not hierarchy:  # no region tokens: nodes and the class token
        encoding = torch.cat([encoding[: topology.n_nodes], encoding[-1:]])
    return nn.Parameter(encoding[None], requires_grad=kind != "none")
