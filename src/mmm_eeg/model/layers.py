"""Transformer layers with the reference's parameter names, attention through SDPA."""

from __future__ import annotations

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
