"""Denoising UNet3D: inflated SD1.5 UNet + 21 AnimateDiff motion modules (networks.md (a), (b).5-6).

Inputs are explicit tensors: the reference K/V (or features) come in as arguments, the guidance
features are added after conv_in, CFG's unconditional rows are selected per sample by `use_reference`,
and the timestep may differ per frame (one call can advance frames at different noise levels).
"""
from __future__ import annotations

import torch
from torch import nn

from engine.errors import InputError
from engine.networks.config import MotionModuleConfig, UNetConfig
from engine.networks.transformer import ReferenceKV, SpatialTransformer
from engine.networks.unet_body import UNetBody


class DenoisingUNet3D(UNetBody):
    def __init__(self, cfg: UNetConfig, motion: MotionModuleConfig):
        super().__init__(cfg, motion=motion)
        self.motion_config = motion
        ch = cfg.block_out_channels[0]
        self.conv_norm_out = nn.GroupNorm(cfg.norm_num_groups, ch, eps=cfg.norm_eps)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(ch, cfg.out_channels, 3, padding=1)

    def project_reference(self, features: list[torch.Tensor]) -> list[ReferenceKV]:
        """Reference features -> per-block self-attention (K, V). Exact: K/V projections are linear."""
        blocks = [t.block for t in self.transformers()]
        if len(features) != len(blocks):
            raise InputError(f"reference features: expected {len(blocks)} tensors, got {len(features)}")
        return [b.project_reference(f) for b, f in zip(blocks, features)]

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, text: torch.Tensor,
                guidance: torch.Tensor | None, reference_kv: list[ReferenceKV] | None,
                use_reference: torch.Tensor | None = None) -> torch.Tensor:
        """Predict v for a latent window.

        sample (B,4,F,h,w); timestep: scalar, (B,) or (B,F) (one per frame); text (B or 1, 77, D);
        guidance (B or 1, C0, F, h, w) or None; reference_kv: 16 (K, V) pairs of shape (1 or B, L, C)
        from `project_reference` (B: one identity per sample, several streams in one call), or None (no
        reference at all); use_reference (B,) bool, False for CFG's unconditional samples (default: all
        True). Returns v (B,4,F,h,w).
        """
        b, c, f, h, w = sample.shape
        if reference_kv is not None and any(k.shape[0] not in (1, b) for k, _ in reference_kv):
            raise InputError(f"reference_kv: expected (1, L, C) or ({b}, L, C) per block, got first dims "
                             f"{sorted({k.shape[0] for k, _ in reference_kv})}")
        if f > self.motion_config.max_frames:
            raise InputError(f"sample: {f} frames exceed the motion modules' maximum of "
                             f"{self.motion_config.max_frames}")
        if h % 8 or w % 8:
            raise InputError(f"sample: latent size {h}x{w} must be a multiple of 8")
        rows = b * f
        x = sample.permute(0, 2, 1, 3, 4).reshape(rows, c, h, w)
        temb = self.time_embed(_per_frame_timesteps(timestep, b, f, sample.device))
        # Each sample's text repeated per frame, rows ordered b*F + f (networks.md (a)).
        text_rows = text.expand(rows, -1, -1) if text.shape[0] == 1 else text.repeat_interleave(f, dim=0)
        keep = None
        if use_reference is not None:
            keep = use_reference.to(torch.bool).reshape(b).repeat_interleave(f)
        x = self.conv_in(x)
        if guidance is not None:
            g = guidance.expand(b, -1, -1, -1, -1).permute(0, 2, 1, 3, 4).reshape(rows, -1, h, w)
            x = x + g  # the only place guidance enters (networks.md (a).2)

        def read(index: int, transformer: SpatialTransformer, x: torch.Tensor) -> torch.Tensor:
            kv = reference_kv[index] if reference_kv is not None else None
            return transformer(x, text_rows, kv, keep if kv is not None else None)[0]

        x = self.run(x, temb, f, read)
        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))
        return x.reshape(b, f, -1, h, w).permute(0, 2, 1, 3, 4)


def _per_frame_timesteps(timestep: torch.Tensor, b: int, f: int, device) -> torch.Tensor:
    t = torch.as_tensor(timestep, device=device)
    if t.ndim == 0:
        return t.reshape(1).expand(b * f)
    if t.shape == (b,):
        return t.repeat_interleave(f)
    if t.shape == (b, f):
        return t.reshape(b * f)
    if t.shape == (f,) and b > 1:
        return t.repeat(b)
    raise InputError(f"timestep: expected a scalar, ({b},) or ({b}, {f}), got {tuple(t.shape)}")
