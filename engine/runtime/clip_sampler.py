"""`clip` mode: upstream's offline loop (networks.md (d)) over a finished clip, through a backend.

Every step runs every context window (wrap-around, engine.sampling.context), the [uncond ; cond]
rows are averaged over overlapping windows *before* CFG, then one DDIM step. Without CFG we average
too (upstream sums overlaps there — a bug engine.sampling.offline does not reproduce either).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from engine.backends.base import Backend
from engine.runtime.cfg import combine_cfg, predict
from engine.runtime.sampler import Sampler
from engine.sampling.context import context_windows


class ClipSampler(Sampler):
    causal = False     # needs the whole clip
    max_steps = 1000
    reports_progress = True

    def __init__(self, backend: Backend, identity: Any, settings, noise,
                 progress: Callable[[str], None] | None = None):
        """progress: called with a one-line description after every UNet call of `finish` (minutes at
        full size, with nothing else to show)."""
        super().__init__(backend, identity, settings, noise)
        self.progress = progress
        self.features: list[Any] = []

    @classmethod
    def batch(cls, settings) -> int:
        return 8  # nothing is final before the end: encode guidance in chunks

    def in_flight(self) -> int:
        return len(self.features)

    def push(self, seq: int, feature: Any) -> list[tuple[int, np.ndarray]]:
        if seq != len(self.features):
            raise ValueError(f"clip mode needs every frame in order; got frame {seq} after {len(self.features)}")
        self.features.append(feature)
        return []  # nothing is final before the whole clip is denoised

    def finish(self) -> list[tuple[int, np.ndarray]]:
        if not self.features:
            return []
        s, frames = self.settings, len(self.features)
        latents = np.stack([self.noise.frame(i) for i in range(frames)], axis=1)[None]  # (1,4,F,h,w)
        windows = context_windows(frames, s.window, s.overlap)
        timesteps = self.schedule.timesteps(s.steps)
        for step_index, t in enumerate(timesteps):
            cfg = s.uses_cfg(step_index)
            acc = np.zeros((2 if cfg else 1, *latents.shape[1:]), np.float32)
            count = np.zeros(frames, np.float32)
            for window_index, idx in enumerate(windows):
                v = predict(self.backend, latents[:, :, idx], np.full(len(idx), t), [self.features[i] for i in idx],
                            self.identity, cfg, s.guidance_scale, raw=True)
                np.add.at(acc, (slice(None), slice(None), idx), v)  # idx may repeat a frame (wrap-around)
                np.add.at(count, idx, 1.0)
                if self.progress:
                    done = step_index * len(windows) + window_index + 1
                    self.progress(f"denoising {frames} frames: step {step_index + 1}/{len(timesteps)}, window "
                                  f"{window_index + 1}/{len(windows)} ({100 * done // (len(timesteps) * len(windows))}%)")
            v = acc / count.reshape(1, 1, -1, 1, 1)
            if cfg:
                v = combine_cfg(v, s.guidance_scale)
            latents = self.schedule.step(v, t, latents, self.schedule.previous_timestep(t, s.steps))
        self.features = []
        return [(i, latents[0, :, i]) for i in range(frames)]
