"""What the frozen networks give per clip, computed once before training (kept on the CPU):
reference features (reference UNet, fp16-rounded as upstream), guidance features (the three
guidance encoders, summed), and the clean latents x0 the training windows are noised from —
the VAE mean of the ground-truth frames, or the teacher's own quality-preset samples where a clip
has none."""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import torch

from engine.distill.data import ClipLike, check_clip, clip_name
from engine.io.images import resize_frames
from engine.model import MagicPortraitModel
from engine.networks.config import GUIDANCE_TYPES


@dataclasses.dataclass
class CachedClip:
    name: str
    ref_features: list[torch.Tensor]  # 16 x (1, L_i, C_i)
    guidance: torch.Tensor            # (1, C0, F, h, w)
    x0: torch.Tensor                  # (1, 4, F, h, w)
    x0_source: str                    # "frames" or "teacher"

    @property
    def frames(self) -> int:
        return self.x0.shape[2]


@torch.no_grad()
def cache_clip(model: MagicPortraitModel, clip: ClipLike, size: int, teacher_steps: int = 20,
               guidance_scale: float = 3.5, seed: int = 0) -> CachedClip:
    from engine.sampling.offline import OfflineSettings, sample_offline
    frames = check_clip(clip)
    maps = {t: resize_frames(clip.maps[t], (size, size)) for t in GUIDANCE_TYPES}
    ref_latents = model.encode_reference(clip.reference, (size, size))
    features = model.reference_unet(ref_latents, model.text_embedding)
    guidance = model.encode_guidance(maps)
    truth = getattr(clip, "frames", None)
    if truth is not None:
        images = resize_frames(truth, (size, size))
        x0 = torch.cat([model.vae_encoder(_to_unit_range(images[i:i + 8], model)) for i in range(0, frames, 8)])
        x0, source = x0.transpose(0, 1)[None], "frames"
    else:
        ref_kv = model.denoising_unet.project_reference(features)
        x0 = sample_offline(model.denoising_unet, model.text_embedding, ref_kv, guidance,
                            _noise((1, model.config.unet.in_channels, frames, *guidance.shape[3:]), seed, model),
                            OfflineSettings(steps=teacher_steps, guidance_scale=guidance_scale))
        source = "teacher"
    cpu = lambda t: t.detach().float().cpu()  # noqa: E731
    return CachedClip(clip_name(clip), [cpu(f) for f in features], cpu(guidance), cpu(x0), source)


def cache_clips(model: MagicPortraitModel, clips: Sequence[ClipLike], size: int, teacher_steps: int = 20,
                guidance_scale: float = 3.5, seed: int = 0,
                progress: Callable[[int, int, str], None] | None = None) -> list[CachedClip]:
    out = []
    for i, clip in enumerate(clips):
        out.append(cache_clip(model, clip, size, teacher_steps, guidance_scale, seed + i))
        if progress:
            progress(i + 1, len(clips), clip_name(clip, i))
    return out


def _to_unit_range(images_u8: np.ndarray, model: MagicPortraitModel) -> torch.Tensor:
    """(N,H,W,3) uint8 -> (N,3,H,W) in [-1, 1] on the model's device (the VAE encoder's input)."""
    x = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float() / 127.5 - 1
    return x.to(model.device, model.dtype)


def _noise(x_shape, seed: int, model) -> torch.Tensor:
    """Standard normal initial latents from a CPU generator (the teacher's samples are reproducible)."""
    return torch.randn(x_shape, generator=torch.Generator().manual_seed(seed)).to(model.device, model.dtype)
