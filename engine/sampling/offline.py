"""Upstream's offline sampling loop (networks.md (d)): the quality baseline.

Every step runs every context window through the UNet (twice under CFG: [uncond ; cond], the
uncond half without reference), averages overlapping frames *before* CFG, then takes one DDIM step.
"""
from __future__ import annotations

from typing import Callable

import torch

from engine.networks.denoising_unet import DenoisingUNet3D
from engine.networks.transformer import ReferenceKV
from engine.sampling.context import context_windows
from engine.sampling.schedulers import Scheduler, make_scheduler
from engine.sampling.settings import SamplingSettings

OfflineSettings = SamplingSettings  # the name this loop's settings had; window / overlap = context frames / overlap

ProgressFn = Callable[[int, int], None]  # (unet calls done, total)


@torch.no_grad()
def sample_offline(unet: DenoisingUNet3D, text: torch.Tensor, ref_kv: list[ReferenceKV],
                   guidance: torch.Tensor, noise: torch.Tensor, settings: SamplingSettings = SamplingSettings(),
                   schedule: Scheduler | None = None, progress: ProgressFn | None = None) -> torch.Tensor:
    """noise (1,4,F,h,w) initial latents; guidance (1,C0,F,h,w). Returns final latents (1,4,F,h,w).
    `schedule` defaults to the settings' scheduler."""
    settings.validate()
    schedule = schedule or make_scheduler(settings.scheduler)
    frames = noise.shape[2]
    windows = context_windows(frames, settings.window, settings.overlap)
    timesteps = schedule.timesteps(settings.steps)
    latents = noise
    done, total = 0, len(timesteps) * len(windows)
    for step_index, t in enumerate(timesteps):
        cfg = settings.uses_cfg(step_index)
        use_ref = torch.tensor([False, True] if cfg else [True], device=noise.device)
        acc = torch.zeros((2 if cfg else 1, *latents.shape[1:]), device=latents.device, dtype=latents.dtype)
        count = torch.zeros(frames, device=latents.device, dtype=latents.dtype)
        for idx in windows:
            index = torch.tensor(idx, device=latents.device)
            x = latents[:, :, index].expand(len(use_ref), -1, -1, -1, -1)
            pred = unet(x, torch.tensor(t, device=latents.device), text, guidance[:, :, index], ref_kv, use_ref)
            acc.index_add_(2, index, pred)
            count.index_add_(0, index, torch.ones_like(index, dtype=count.dtype))
            done += 1
            if progress:
                progress(done, total)
        # Averaged before CFG, as upstream. (Upstream *sums* overlaps when CFG is off — a bug we
        # do not reproduce: without CFG we average too.)
        v = acc / count.reshape(1, 1, -1, 1, 1)
        if cfg:
            v_uncond, v_cond = v.chunk(2)
            v = v_uncond + settings.guidance_scale * (v_cond - v_uncond)
        latents = schedule.step(v, t, latents, schedule.previous_timestep(t, settings.steps))
    return latents
