"""Guidance encoder (one per map type: depth, normal, render), networks.md (c).

Only the layers upstream's forward uses are built: `attentions[0..-2]` and `guidance_attention` exist in
the checkpoints but are never run, so the loader accepts and drops them (UNUSED_KEY_PATTERNS).
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from engine.networks.config import GuidanceEncoderConfig
from engine.networks.transformer import SpatialTransformer
from engine.preprocess import GUIDANCE_TYPES


class GuidanceEncoder(nn.Module):
    def __init__(self, cfg: GuidanceEncoderConfig):
        super().__init__()
        ch = cfg.block_out_channels
        self.conv_in = nn.Conv2d(cfg.input_channels, ch[0], 3, padding=1)
        blocks = []
        for i in range(len(ch) - 1):
            blocks.append(nn.Conv2d(ch[i], ch[i], 3, padding=1))
            blocks.append(nn.Conv2d(ch[i], ch[i + 1], 3, padding=1, stride=2))
        self.blocks = nn.ModuleList(blocks)
        # Upstream builds one attention per block output; only the last one runs. Keep the index so
        # the key name (`attentions.<n>.…`) matches the checkpoint.
        self.used_attention_index = len(blocks) - 1
        self.attentions = nn.ModuleDict({
            str(self.used_attention_index): SpatialTransformer(ch[-1], cfg.attention_heads, None)})
        self.conv_out = nn.Conv2d(ch[-1], cfg.embedding_channels, 3, padding=1)

    def unused_key_patterns(self) -> list[re.Pattern]:
        return [re.compile(rf"^attentions\.(?!{self.used_attention_index}\.)\d+\."),
                re.compile(r"^guidance_attention\.")]

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        """maps (N,3,H,W) in [0,1], one row per frame -> features (N, C0, H/8, W/8)."""
        x = F.silu(self.conv_in(maps))
        for conv in self.blocks:
            x = F.silu(conv(x))
        x = self.attentions[str(self.used_attention_index)](x)[0]
        return self.conv_out(x)


class GuidanceEncoderSet(nn.Module):
    """The three encoders, summed in the order depth, normal, render (networks.md (c))."""

    def __init__(self, cfg: GuidanceEncoderConfig, types: tuple[str, ...] = GUIDANCE_TYPES):
        super().__init__()
        self.types = types
        self.encoders = nn.ModuleDict({t: GuidanceEncoder(cfg) for t in types})

    def forward(self, *maps: torch.Tensor) -> torch.Tensor:
        """One (N,3,H,W) tensor per type, in `types` order -> summed features (N, C0, H/8, W/8)."""
        out = None
        for t, m in zip(self.types, maps):
            fea = self.encoders[t](m)
            out = fea if out is None else out + fea
        return out

    def encode_video(self, maps: dict[str, torch.Tensor]) -> torch.Tensor:
        """Upstream's layout: per type (1,3,F,H,W) -> (1, C0, F, h, w)."""
        per_frame = [maps[t][0].transpose(0, 1) for t in self.types]
        return self.forward(*per_frame).transpose(0, 1).unsqueeze(0)
