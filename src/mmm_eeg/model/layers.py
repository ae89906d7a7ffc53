"""Transformer layers with the reference's parameter names, attention through SDPA.

:func:`run_blocks` also holds the small-batch inference path: the same function with a fraction
of the operations, for live decoding (one window at a time), where per-operation overhead, not
arithmetic, sets the latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from mmm_eeg.validation import check_option

BlockType = Literal["reference", "prenorm"]


class Attention(nn.Module):
    """Multi-head self-attention with one (3·dim, dim) QKV weight.

    Parameter names match ``torch.nn.MultiheadAttention`` (``in_proj_weight``, ``in_proj_bias``,
    ``out_proj``), so the reference checkpoint maps one to one; the computation goes through
    ``F.scaled_dot_product_attention``.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads}).")
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        """Attend; ``attn_mask`` is boolean with True = may attend (SDPA's convention)."""
        batch, tokens, dim = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    """Two linear layers with GELU between (``fc1``, ``fc2``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """A transformer block.

    ``block="reference"`` is the block the released checkpoint was trained with:
    ``x = LN1(x); x = x + Attn(x); x = x + MLP(LN2(x))`` (the residual starts from the normalised
    x). ``block="prenorm"`` is the standard ``x = x + Attn(LN1(x)); x = x + MLP(LN2(x))``.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, block: BlockType) -> None:
        super().__init__()
        check_option("block", block, ("reference", "prenorm"))
        self.block = block
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        if self.block == "reference":
            x = self.norm1(x)
            x = x + self.attn(x, attn_mask)
        else:
            x = x + self.attn(self.norm1(x), attn_mask)
        return x + self.mlp(self.norm2(x))


# Up to this batch, inference runs the fused path: its attention scores (batch x heads x tokens^2)
# are materialised, 1.6 MB per sample at 80 tokens and 8 heads, so larger batches keep SDPA.
FUSED_MAX_BATCH = 16


def run_blocks(
    blocks: Sequence[Block], tokens: torch.Tensor, attn_mask: torch.Tensor | None
) -> torch.Tensor:
    """Apply ``blocks`` in turn; without autograd and for small batches, through the fused path.

    The fused path computes the same function (equal to 1e-5, tested) on (batch * tokens, dim)
    matrices: ``addmm`` for every linear layer, attention as two batched matmuls around a
    softmax with an additive mask, no module calls. It is taken only when no gradient is needed,
    the batch is at most ``FUSED_MAX_BATCH`` and nothing is being traced (export keeps the SDPA
    graph).
    """
    batch = tokens.shape[0]
    if torch.is_grad_enabled() or batch > FUSED_MAX_BATCH or torch.compiler.is_compiling():
        for blk in blocks:
            tokens = blk(tokens, attn_mask)
        return tokens
    n, dim = tokens.shape[1:]
    heads = blocks[0].attn.heads
    additive = None
    if attn_mask is not None:  # True = may attend -> 0, else -inf; one (batch * heads) stack
        additive = torch.zeros(attn_mask.shape, dtype=tokens.dtype, device=tokens.device)
        additive = additive.masked_fill(~attn_mask, float("-inf"))
        additive = additive.expand(batch, heads, n, n).reshape(batch * heads, n, n)
    x = tokens.reshape(batch * n, dim)
    for blk in blocks:
        x = _fused_block(blk, x, additive, batch, n, heads)
    return x.view(batch, n, dim)


def _fused_block(
    blk: Block, x: torch.Tensor, additive: torch.Tensor | None, batch: int, n: int, heads: int
) -> torch.Tensor:
    dim = x.shape[1]
    head_dim = dim // heads
    attn, mlp = blk.attn, blk.mlp
    h = F.layer_norm(x, (dim,), blk.norm1.weight, blk.norm1.bias, blk.norm1.eps)
    if blk.block == "reference":
        x = h  # the reference's residual starts from the normalised x
    qkv = torch.addmm(attn.in_proj_bias, h, attn.in_proj_weight.t())
    q, k, v = qkv.view(batch, n, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0)
    q, k, v = (t.reshape(batch * heads, n, head_dim) for t in (q, k, v))
    scale = head_dim**-0.5
    if additive is None:
        scores = torch.bmm(q, k.transpose(1, 2)) * scale
    else:
        scores = torch.baddbmm(additive, q, k.transpose(1, 2), alpha=scale)
    out = torch.bmm(scores.softmax(-1), v).view(batch, heads, n, head_dim)
    out = out.transpose(1, 2).reshape(batch * n, dim)
    x = torch.addmm(x, out, attn.out_proj.weight.t()).add_(attn.out_proj.bias)
    h = F.layer_norm(x, (dim,), blk.norm2.weight, blk.norm2.bias, blk.norm2.eps)
    h = F.gelu(torch.addmm(mlp.fc1.bias, h, mlp.fc1.weight.t()))
    return torch.addmm(x, h, mlp.fc2.weight.t()).add_(mlp.fc2.bias)
