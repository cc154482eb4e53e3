"""The SD1.5 UNet skeleton shared by the reference UNet (2D) and the denoising UNet3D.

Module names follow diffusers/upstream so checkpoints load unchanged. The two UNets differ only in
what happens at each spatial transformer (write or read reference features) and in whether motion
modules run; that difference is passed in as `transform(index, transformer, x) -> x`, called in
execution order (down, mid, up), which is also the writer/reader pairing order (networks.md (b).3).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from engine.networks.config import MotionModuleConfig, UNetConfig
from engine.networks.layers import Downsample, ResnetBlock, TimestepEmbedding, Upsample, timestep_sinusoid
from engine.networks.motion_module import MotionModule
from engine.networks.transformer import SpatialTransformer

TransformFn = Callable[[int, SpatialTransformer, torch.Tensor], torch.Tensor]


class _Block(nn.Module):
    """resnets[i] -> attentions[i] -> motion_modules[i] per layer, as upstream's 3D blocks order them."""

    def _layer(self, i: int, x, temb, frames, transform, counter) -> torch.Tensor:
        x = self.resnets[i](x, temb)
        if self.attentions is not None:
            x = transform(counter[0], self.attentions[i], x)
            counter[0] += 1
        if self.motion_modules is not None:
            x = self.motion_modules[i](x, frames)
        return x


class DownBlock(_Block):
    def __init__(self, in_ch, out_ch, cfg: UNetConfig, cross: bool, downsample: bool,
                 motion: MotionModuleConfig | None):
        super().__init__()
        n = cfg.layers_per_block
        self.resnets = nn.ModuleList([ResnetBlock(in_ch if i == 0 else out_ch, out_ch, cfg.time_embed_dim,
                                                  cfg.norm_num_groups, cfg.norm_eps) for i in range(n)])
        self.attentions = nn.ModuleList([SpatialTransformer(out_ch, cfg.attention_heads, cfg.cross_attention_dim,
                                                            cfg.norm_num_groups) for _ in range(n)]) if cross else None
        self.motion_modules = nn.ModuleList([MotionModule(out_ch, motion)
                                             for _ in range(n)]) if motion else None
        self.downsamplers = nn.ModuleList([Downsample(out_ch)]) if downsample else None

    def forward(self, x, temb, frames, transform, counter, skips: list) -> torch.Tensor:
        for i in range(len(self.resnets)):
            x = self._layer(i, x, temb, frames, transform, counter)
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x


class MidBlock(_Block):
    """resnet -> transformer -> motion module -> resnet (networks.md (a).4)."""

    def __init__(self, ch, cfg: UNetConfig, motion: MotionModuleConfig | None):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(ch, ch, cfg.time_embed_dim, cfg.norm_num_groups, cfg.norm_eps)
                                      for _ in range(2)])
        self.attentions = nn.ModuleList([SpatialTransformer(ch, cfg.attention_heads, cfg.cross_attention_dim,
                                                            cfg.norm_num_groups)])
        self.motion_modules = nn.ModuleList([MotionModule(ch, motion)]) if motion else None

    def forward(self, x, temb, frames, transform, counter) -> torch.Tensor:
        x = self.resnets[0](x, temb)
        x = transform(counter[0], self.attentions[0], x)
        counter[0] += 1
        if self.motion_modules is not None:
            x = self.motion_modules[0](x, frames)
        return self.resnets[1](x, temb)


class UpBlock(_Block):
    def __init__(self, in_ch, prev_ch, out_ch, cfg: UNetConfig, cross: bool, upsample: bool,
                 motion: MotionModuleConfig | None):
        super().__init__()
        n = cfg.layers_per_block + 1
        self.resnets = nn.ModuleList()
        for i in range(n):
            skip_ch = in_ch if i == n - 1 else out_ch
            res_in = prev_ch if i == 0 else out_ch
            self.resnets.append(ResnetBlock(res_in + skip_ch, out_ch, cfg.time_embed_dim,
                                            cfg.norm_num_groups, cfg.norm_eps))
        self.attentions = nn.ModuleList([SpatialTransformer(out_ch, cfg.attention_heads, cfg.cross_attention_dim,
                                                            cfg.norm_num_groups) for _ in range(n)]) if cross else None
        self.motion_modules = nn.ModuleList([MotionModule(out_ch, motion)
                                             for _ in range(n)]) if motion else None
        self.upsamplers = nn.ModuleList([Upsample(out_ch)]) if upsample else None

    def forward(self, x, temb, frames, transform, counter, skips: list, stop_at: int | None = None):
        for i in range(len(self.resnets)):
            x = torch.cat([x, skips.pop()], dim=1)
            x = self._layer(i, x, temb, frames, transform, counter)
            if stop_at is not None and counter[0] > stop_at:
                return x
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class UNetBody(nn.Module):
    """conv_in, time embedding, down/mid/up blocks. Input and output are (N, C, h, w), N = B*F."""

    def __init__(self, cfg: UNetConfig, motion: MotionModuleConfig | None):
        super().__init__()
        self.config = cfg
        ch = cfg.block_out_channels
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch[0], cfg.time_embed_dim)
        last = len(ch) - 1
        self.down_blocks = nn.ModuleList([
            DownBlock(ch[max(i - 1, 0)], ch[i], cfg, cross=t.startswith("CrossAttn"), downsample=i < last,
                      motion=motion) for i, t in enumerate(cfg.down_block_types)])
        self.mid_block = MidBlock(ch[-1], cfg, motion)
        rev = list(reversed(ch))
        self.up_blocks = nn.ModuleList([
            UpBlock(rev[min(i + 1, last)], rev[max(i - 1, 0)], rev[i], cfg, cross=t.startswith("CrossAttn"),
                    upsample=i < last, motion=motion) for i, t in enumerate(cfg.up_block_types)])

    def transformer_names(self) -> list[str]:
        """Module paths of the spatial transformer blocks, in execution (= pairing) order."""
        names = []
        for part in ("down_blocks", "mid_block", "up_blocks"):
            for name, mod in self.named_modules():
                if name.startswith(part) and isinstance(mod, SpatialTransformer):
                    names.append(f"{name}.transformer_blocks.0")
        return names

    def transformers(self) -> list[SpatialTransformer]:
        return [self.get_submodule(n.rsplit(".transformer_blocks.0", 1)[0]) for n in self.transformer_names()]

    def time_embed(self, timesteps: torch.Tensor) -> torch.Tensor:
        # The sinusoid is computed in fp32 (timesteps up to 999 need it), then cast to the weights' dtype.
        emb = timestep_sinusoid(timesteps, self.config.block_out_channels[0])
        return self.time_embedding(emb.to(self.conv_in.weight.dtype))

    def run(self, x: torch.Tensor, temb: torch.Tensor, frames: int, transform: TransformFn,
            stop_after_transformer: int | None = None) -> torch.Tensor:
        """Blocks after conv_in (x already embedded). Stops early after transformer `stop_after_transformer`."""
        counter = [0]
        skips = [x]
        for block in self.down_blocks:
            x = block(x, temb, frames, transform, counter, skips)
        x = self.mid_block(x, temb, frames, transform, counter)
        for block in self.up_blocks:
            x = block(x, temb, frames, transform, counter, skips, stop_after_transformer)
            if stop_after_transformer is not None and counter[0] > stop_after_transformer:
                break
        return x
