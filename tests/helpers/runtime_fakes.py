"""Helpers for the runtime tests (no tests here). A frame-local stand-in backend: v of each frame
depends only on that frame's latent, timestep, guidance and whether it sees the reference, so every
sampling mode must give each frame exactly what a one-frame DDIM loop gives it."""
from __future__ import annotations

import numpy as np

from engine.backends.base import Backend, BackendInfo
from engine.sampling.schedulers.ddim import DDIMSchedule


class FrameLocalBackend(Backend):
    info = BackendInfo(name="frame-local", device="cpu", precision="float32", latent_channels=4,
                       scale_factor=8, max_frames=32)

    def __init__(self):
        self.calls: list[tuple[int, int]] = []  # (batch, frames) per denoise call

    def encode_reference(self, image_rgb_u8, size):
        return float(image_rgb_u8.mean()) / 255.0

    def encode_guidance(self, maps_u8):
        return [float(f.mean()) / 255.0 for f in maps_u8["depth"]]

    def denoise(self, sample, timesteps, guidance, identity, use_reference):
        self.calls.append((sample.shape[0], sample.shape[2]))
        t = np.asarray(timesteps, np.float32)[:, None, :, None, None] / 1000.0
        g = np.asarray(guidance, np.float32)[None, None, :, None, None]
        ref = (np.asarray(use_reference, np.float32) * identity)[:, None, None, None, None]
        return (0.6 * sample + 0.3 * t * np.tanh(sample) + g + ref).astype(np.float32)

    def decode(self, latents):
        img = np.clip(latents[:, :3].mean(axis=(2, 3)) * 40 + 128, 0, 255).astype(np.uint8)
        return np.broadcast_to(img[:, None, None, :], (len(latents), 16, 16, 3)).copy()


def one_frame_reference(backend, noise, feature, identity, steps, scale, cfg_steps):
    """The per-frame DDIM loop every mode must reproduce with FrameLocalBackend."""
    ddim = DDIMSchedule()
    x = noise[None, :, None]
    for i, t in enumerate(ddim.timesteps(steps)):
        tt = np.array([[t]])
        v = backend.denoise(x, tt, [feature], identity, np.array([True]))
        if scale > 1 and (cfg_steps is None or i < cfg_steps):
            vu = backend.denoise(x, tt, [feature], identity, np.array([False]))
            v = vu + scale * (v - vu)
        x = ddim.step(v, t, x, ddim.previous_timestep(t, steps))
    return x[0, :, 0]
