"""`windowed` mode: causal sliding windows (W frames every S = W - O frames), each fully denoised.

Window k covers frames [kS, kS + W). Its first O frames were the previous window's last O: they
start from the same per-frame noise, and after every step they are blended with the previous
window's latents at that step (weight of the new window rising linearly across the overlap), so the
seam is continuous. Frames [kS, kS + S) are final after window k; the last window emits the rest.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from engine.backends.base import Backend
from engine.runtime.cfg import predict
from engine.runtime.sampler import Sampler


class WindowSampler(Sampler):
    def __init__(self, backend: Backend, identity: Any, settings, noise):
        super().__init__(backend, identity, settings, noise)
        self.pending: list[tuple[int, Any]] = []  # frames of the next window, oldest first
        self.tail: list[np.ndarray] | None = None  # previous window's overlap latents after each step
        self.carried = 0                          # how many of `pending` are that overlap

    def in_flight(self) -> int:
        return len(self.pending)

    def push(self, seq: int, feature: Any) -> list[tuple[int, np.ndarray]]:
        self.pending.append((seq, feature))
        if len(self.pending) < self.settings.window:
            return []
        return self._run_window(final=False)

    def finish(self) -> list[tuple[int, np.ndarray]]:
        if len(self.pending) > self.carried:
            return self._run_window(final=True)
        # No new frame after the last window: its overlap frames are final as they are.
        out = [(seq, self.tail[-1][0, :, j]) for j, (seq, _) in enumerate(self.pending)] if self.tail else []
        self.pending, self.tail, self.carried = [], None, 0
        return out

    def _run_window(self, final: bool) -> list[tuple[int, np.ndarray]]:
        s = self.settings
        seqs = [seq for seq, _ in self.pending]
        features = [f for _, f in self.pending]
        x = np.stack([self.noise.frame(seq) for seq in seqs], axis=1)[None]
        o = self.carried
        ramp = (np.arange(1, o + 1, dtype=np.float32) / (o + 1)).reshape(1, 1, -1, 1, 1)
        trajectory = []
        for step_index, t in enumerate(self.schedule.timesteps(s.steps)):
            v = predict(self.backend, x, np.full(len(seqs), t), features, self.identity, s.uses_cfg(step_index),
                        s.guidance_scale)
            x = self.schedule.step(v, t, x, self.schedule.previous_timestep(t, s.steps))
            if o:
                x[:, :, :o] = (1 - ramp) * self.tail[step_index] + ramp * x[:, :, :o]
            trajectory.append(x[:, :, -s.overlap:].copy() if s.overlap else None)
        if final:
            done, self.pending, self.tail, self.carried = len(seqs), [], None, 0
        else:
            done = len(seqs) - s.overlap
            self.pending, self.carried = self.pending[done:], s.overlap
            self.tail = trajectory if s.overlap else None
        return [(seqs[j], x[0, :, j]) for j in range(done)]
