"""Portrait + guidance maps -> video frames, upstream's offline way (the quality baseline the
streaming presets are measured against; `mprt animate --preset quality` streams the same result)."""
from __future__ import annotations

import numpy as np
import torch

from engine.io.images import resize_frames
from engine.model import MagicPortraitModel
from engine.preprocess import GUIDANCE_TYPES
from engine.runtime.noise import clip_noise_like_offline
from engine.sampling.offline import OfflineSettings, ProgressFn, sample_offline


def initial_noise(frames: int, size: int, model: MagicPortraitModel, seed: int) -> torch.Tensor:
    """(1,4,F,h,w) standard normal from a CPU generator (upstream seeds a CUDA generator with 42,
    which cannot be reproduced on the CPU: networks.md (d)). The streaming runtime draws the same."""
    noise = clip_noise_like_offline(frames, size, 4, model.latent_scale_factor, seed).noise
    return torch.from_numpy(noise).to(model.device, model.dtype)


def animate_offline(model: MagicPortraitModel, source_rgb_u8: np.ndarray, maps_u8: dict[str, np.ndarray],
                    size: int, settings: OfflineSettings = OfflineSettings(), seed: int = 42,
                    progress: ProgressFn | None = None) -> np.ndarray:
    """Returns (F, size, size, 3) uint8 frames."""
    maps = {t: resize_frames(maps_u8[t], (size, size)) for t in GUIDANCE_TYPES}
    frames = maps[GUIDANCE_TYPES[0]].shape[0]
    ref_kv = model.reference_kv(model.encode_reference(source_rgb_u8, (size, size)))
    guidance = model.encode_guidance(maps)
    latents = sample_offline(model.denoising_unet, model.text_embedding, ref_kv, guidance,
                             initial_noise(frames, size, model, seed), settings, progress=progress)
    return model.decode(latents)
