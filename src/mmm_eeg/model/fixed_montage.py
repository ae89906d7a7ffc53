"""An encoder specialised to one set of present nodes: shorter sequences for a fixed montage.

Under ``absent="exclude"`` a node the recording lacks is blocked as an attention key, so nothing
flows from its token into any other token; its own token is computed and never used. For a fixed
set of present nodes (a headset in a live session, one cap for a whole dataset) those tokens can be
left out of the sequence: the region, class and present-node tokens come out the same (to float
rounding) from a shorter sequence. 19 channels of the 10-20 system: 37 tokens instead of 80; a
4-channel Muse: 22.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from mmm_eeg.model.encoder import MMMEncoder


class FixedMontageEncoder(nn.Module):
    """The unified representation of an encoder for windows that all have the same nodes.

    A frozen snapshot for inference: weights are copied (later training of ``encoder`` does not
    reach it), the input-independent tokens (regions, class) are computed once.

    Parameters
    ----------
    encoder : MMMEncoder
        With ``absent="exclude"`` (other policies let absent nodes' tokens take part).
    nodes : sequence of int
        Topology indices of the present nodes; the input's node axis follows their sorted order.
    """

    def __init__(self, encoder: MMMEncoder, nodes: Sequence[int] | np.ndarray) -> None:
        super().__init__()
        if encoder.absent != "exclude":
            raise ValueError(
                f"Only an encoder with absent='exclude' can leave absent nodes out; this one "
                f"has absent={encoder.absent!r}, under which absent nodes' tokens take part. "
                "Use the encoder itself with a present mask."
            )
        n = encoder.topology.n_nodes
        index = np.asarray(nodes, dtype=np.int64).reshape(-1)
        if index.size == 0 or index.min() < 0 or index.max() >= n:
            raise ValueError(f"nodes must be topology indices in [0, {n}), at least one.")
        if np.unique(index).size != index.size:
            raise ValueError("nodes has repeated indices.")
        index = np.sort(index)
        # A tuple of ints, not an array: dynamo guards a numpy attribute as a tensor, and that
        # guard fails under inference_mode ("Guard failed on the same frame it was created").
        self.nodes: tuple[int, ...] = tuple(int(i) for i in index)  # the input's nodes, in order
        self.hierarchy = encoder.hierarchy
        keep = torch.cat([torch.from_numpy(index), torch.arange(n, encoder.n_tokens)])
        with torch.no_grad():
            pos = encoder.pos_embed.detach()
            extra = encoder.cls_token.detach()
            if self.hierarchy:
                regions = encoder.patch_embed(encoder.region_tokens.to(pos.dtype))
                extra = torch.cat([regions, extra], dim=1)
            self.register_buffer("node_pos", pos[:, index].clone())
            self.register_buffer("extra_tokens", extra + pos[:, n:])
            self.register_buffer("attn_mask", ~encoder.attn_mask[keep][:, keep])
        self.patch_embed = copy.deepcopy(encoder.patch_embed)
        self.blocks = copy.deepcopy(encoder.blocks)
        self.requires_grad_(False)
        self.eval()

    @property
    def n_present(self) -> int:
        """Nodes in the input."""
        return len(self.nodes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unified representation (batch, n_unified, dim) of ``x`` (batch, n_present, features)."""
        features = self.patch_embed.in_features
        if x.ndim != 3 or x.shape[1:] != (self.n_present, features):
            raise ValueError(
                f"x must have shape (batch, {self.n_present}, {features}): the present "
                f"nodes in topology order, got {tuple(x.shape)}."
            )
        batch = x.shape[0]
        nodes = self.patch_embed(x) + self.node_pos
        tokens = torch.cat([nodes, self.extra_tokens.expand(batch, -1, -1)], dim=1)
        for blk in self.blocks:
            tokens = blk(tokens, self.attn_mask)
        k = self.n_present
        if self.hierarchy:
            return tokens[:, k:]
        return torch.stack([tokens[:, :k].mean(1), tokens[:, k]], dim=1)


def compile_for_inference(module: nn.Module) -> nn.Module:
    """``torch.compile`` tuned for small-batch CPU inference of a frozen module.

    Inductor folds the weights into the graph (``freezing``) and drives its kernels from C++
    (``cpp_wrapper``), so no Python runs between them; at batch 1 that overhead is a large part
    of the time. Shapes are static: each new batch size compiles again. Needs a C++ compiler;
    the first call compiles (tens of seconds). Call it without autograd (``torch.no_grad``).
    """
    return torch.compile(module, dynamic=False, options={"freezing": True, "cpp_wrapper": True})
