"""An independent re-implementation of the reference MMM forward pass, from DESIGN.md alone.

Used only by tests and benchmarks as the yardstick: ``nn.MultiheadAttention`` with the boolean
mask, the reference block, and the dense-rank sin-cos encoding computed here from the CSV.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import nn


def reference_layout(table: Path) -> tuple[list[str], list[int], np.ndarray]:
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    names = [r["node"] for r in rows]
    regions = [int(r["region"]) for r in rows]
    xy = np.array([[float(r["x_mm"]), float(r["y_mm"])] for r in rows])
    return names, regions, xy


def reference_pos_embed(table: Path, dim: int) -> torch.Tensor:
    """(80, dim): dense-rank x/y sin-cos, regions = mean of member ranks, class token zero."""
    _, regions, xy = reference_layout(table)
    ranks = np.stack([np.unique(xy[:, k], return_inverse=True)[1] for k in range(2)], 1)
    region_ids = np.array(regions)
    region_ranks = np.stack([ranks[region_ids == r].mean(0) for r in range(17)])
    coords = np.concatenate([ranks, region_ranks]).astype(np.float64)

    def one_axis(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2) / (d / 2.0))
        out = np.outer(pos, omega)
        return np.concatenate([np.sin(out), np.cos(out)], 1)

    emb = np.concatenate([one_axis(dim // 2, coords[:, 0]), one_axis(dim // 2, coords[:, 1])], 1)
    return torch.tensor(np.concatenate([emb, np.zeros((1, dim))]), dtype=torch.float32)


def reference_mask(table: Path) -> torch.Tensor:
    """(80, 80) bool, True = blocked: a channel and another region's token cannot see each other."""
    _, regions, _ = reference_layout(table)
    mask = torch.zeros(80, 80, dtype=torch.bool)
    for c, r in enumerate(regions):
        for q in range(17):
            if q != r:
                mask[c, 62 + q] = mask[62 + q, c] = True
    return mask


class ReferenceBlock(nn.Module):
    """``x = LN1(x); x = x + Attn(x); x = x + MLP(LN2(x))``, attention as the reference calls it."""

    def __init__(self, dim: int, heads: int = 8):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential()
        self.mlp.fc1 = nn.Linear(dim, 4 * dim)
        self.mlp.act = nn.GELU()
        self.mlp.fc2 = nn.Linear(4 * dim, dim)

    def forward(self, x, mask):
        x = self.norm1(x)
        x = x + self.attn(x, x, x, attn_mask=mask)[0]
        return x + self.mlp(self.norm2(x))


class ReferenceMMM(nn.Module):
    """Keys as in the released file, under ``network.``; plus ``supernodes``."""

    def __init__(self, table: Path, dim: int = 64, depth: int = 6, float_mask: bool = False):
        super().__init__()
        self.network = nn.Module()
        self.network.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.network.patch_embed = nn.Linear(5, dim)
        self.network.blocks = nn.ModuleList(ReferenceBlock(dim) for _ in range(depth))
        self.network.norm = nn.LayerNorm(dim)
        self.network.fc_norm = nn.LayerNorm(dim)
        self.supernodes = nn.Parameter(torch.randn(1, 17, 5))
        self.register_buffer("pos_embed", reference_pos_embed(table, dim), persistent=False)
        mask = reference_mask(table)
        if float_mask:
            mask = torch.zeros(80, 80).masked_fill(mask, float("-inf"))
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, x):
        b = x.shape[0]
        tokens = self.network.patch_embed(torch.cat([x, self.supernodes.expand(b, -1, -1)], 1))
        tokens = torch.cat([tokens, self.network.cls_token.expand(b, -1, -1)], 1) + self.pos_embed
        for blk in self.network.blocks:
            tokens = blk(tokens, self.attn_mask)
        return tokens


class ReferenceAutoencoder(nn.Module):
    """The pretraining model of DESIGN.md in the reference formulation (MHA, explicit mask).

    Parameter names follow :class:`mmm_eeg.model.MMMAutoencoder` for the decoder, and the
    PhysioPro layout for the encoder, so weights can be copied over one to one.
    """

    def __init__(self, table: Path, dim: int = 64, depth: int = 6, float_mask: bool = False):
        super().__init__()
        self.encoder = ReferenceMMM(table, dim, depth, float_mask)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.decoder_pos_embed = nn.Parameter(reference_pos_embed(table, dim)[None])
        self.decoder_blocks = nn.ModuleList(ReferenceBlock(dim) for _ in range(depth))
        self.decoder_norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 5)

    def forward(self, x, masked):
        tokens = self.encoder(x.masked_fill(masked[..., None], 0.0))
        hidden = torch.cat([self.mask_token.expand(x.shape[0], 62, -1), tokens[:, 62:]], 1)
        hidden = hidden + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            hidden = blk(hidden, self.encoder.attn_mask)
        return self.head(self.decoder_norm(hidden[:, :62]))

    def load_from(self, ours) -> None:
        """Copy the weights of an ``MMMAutoencoder`` (width and depth must agree)."""
        from mmm_eeg.model import to_physiopro_state_dict

        encoder = to_physiopro_state_dict(ours.encoder)
        with torch.no_grad():
            self.encoder.pos_embed.copy_(encoder.pop("network.pos_embed"))
        del encoder["network.attn_mask"]
        self.encoder.load_state_dict(encoder, strict=True)
        decoder = {k: v for k, v in ours.state_dict().items() if not k.startswith("encoder.")}
        missing, unexpected = self.load_state_dict(decoder, strict=False)
        assert not unexpected and all(k.startswith("encoder.") for k in missing)
