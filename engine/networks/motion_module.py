"""AnimateDiff "Vanilla" temporal module (networks.md (a), motion module)."""
from __future__ import annotations

import math

import torch
from torch import nn

from engine.networks.config import MotionModuleConfig
from engine.networks.layers import Attention, FeedForward


def sinusoid_positions(max_len: int, dim: int) -> torch.Tensor:
    """PE[p, 2i] = sin(p * e^{-2i ln(1e4)/C}), PE[p, 2i+1] = cos(same); shape (1, max_len, dim)."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(1, max_len, dim)
    pe[0, :, 0::2] = torch.sin(position * div)
    pe[0, :, 1::2] = torch.cos(position * div)
    return pe


class PositionalEncoding(nn.Module):
    def __init__(self, dim: int, max_len: int):
        super().__init__()
        # Persistent: the checkpoint carries it as `pos_encoder.pe` (networks.md (e).1).
        self.register_buffer("pe", sinusoid_positions(max_len, dim), persistent=True)


class TemporalAttention(Attention):
    """Self-attention across frames; the PE enters q, k and v only, never the residual."""

    def __init__(self, dim: int, heads: int, max_len: int):
        super().__init__(dim, heads)
        self.pos_encoder = PositionalEncoding(dim, max_len)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        """x (B*F, L, C) with frames of one sample adjacent -> same shape."""
        bf, tokens, c = x.shape
        b = bf // frames
        seq = x.reshape(b, frames, tokens, c).permute(0, 2, 1, 3).reshape(b * tokens, frames, c)
        seq = seq + self.pos_encoder.pe[:, :frames].to(seq.dtype)
        out = super().forward(seq)
        return out.reshape(b, tokens, frames, c).permute(0, 2, 1, 3).reshape(bf, tokens, c)


class TemporalTransformerBlock(nn.Module):
    def __init__(self, dim: int, cfg: MotionModuleConfig):
        super().__init__()
        self.attention_blocks = nn.ModuleList(
            [TemporalAttention(dim, cfg.heads, cfg.max_frames) for _ in range(cfg.attention_blocks)])
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(cfg.attention_blocks)])
        self.ff = FeedForward(dim)
        self.ff_norm = nn.LayerNorm(dim)

    def forward(self, z: torch.Tensor, frames: int) -> torch.Tensor:
        for attn, norm in zip(self.attention_blocks, self.norms):
            z = z + attn(norm(z), frames)
        return z + self.ff(self.ff_norm(z))


# Always 32, whatever the UNet's norm_num_groups: upstream's get_motion_module passes no group count,
# so TemporalTransformer3DModel keeps its default (networks.md (a), motion module step 1).
NORM_GROUPS = 32


class TemporalTransformer(nn.Module):
    def __init__(self, dim: int, cfg: MotionModuleConfig):
        super().__init__()
        self.norm = nn.GroupNorm(NORM_GROUPS, dim, eps=1e-6)
        self.proj_in = nn.Linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([TemporalTransformerBlock(dim, cfg)])
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        n, c, h, w = x.shape
        z = self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(n, h * w, c))
        for block in self.transformer_blocks:
            z = block(z, frames)
        z = self.proj_out(z).reshape(n, h, w, c).permute(0, 3, 1, 2)
        return z + x


class MotionModule(nn.Module):
    """Key layout `*.motion_modules.N.temporal_transformer.*`; works on (B*F, C, h, w)."""

    def __init__(self, dim: int, cfg: MotionModuleConfig):
        super().__init__()
        self.temporal_transformer = TemporalTransformer(dim, cfg)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        return self.temporal_transformer(x, frames)
