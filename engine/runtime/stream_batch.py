"""`stream_batch` mode: frames at staggered noise levels share one UNet call (one timestep per frame).

The queue holds up to `steps` stages of `frames_per_stage` frames, oldest (least noisy) first. Every
call advances every queued frame by one DDIM step; the oldest stage then leaves the queue finished
and a new stage of fresh-noise frames enters. So once the queue is full each call finishes
`frames_per_stage` frames, and the motion modules see all queued frames as one window. With CFG on
the first k steps only, the unconditional row runs on the newest frames (those at steps < k) alone.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from engine.backends.base import Backend
from engine.errors import InputError
from engine.runtime.sampler import Sampler
from engine.sampling.settings import MAX_WINDOW


@dataclasses.dataclass
class _Slot:
    seq: int
    feature: Any
    x: np.ndarray  # (4,h,w) current latent
    step: int = 0  # steps taken


class StreamBatchSampler(Sampler):
    def __init__(self, backend: Backend, identity: Any, settings, noise):
        super().__init__(backend, identity, settings, noise)
        self.timesteps = np.array(self.schedule.timesteps(settings.steps))
        self.queue: list[_Slot] = []     # oldest first
        self.incoming: list[_Slot] = []  # waiting for a full stage

    @classmethod
    def check(cls, settings) -> None:
        if not 1 <= settings.steps * settings.frames_per_stage <= MAX_WINDOW:
            raise InputError(f"frames_per_stage: steps x frames_per_stage must be 1..{MAX_WINDOW}, got "
                             f"{settings.steps} x {settings.frames_per_stage}")

    @classmethod
    def settle(cls, settings):
        """The window is the queue: steps x frames_per_stage frames, no overlap."""
        return dataclasses.replace(settings, window=settings.steps * settings.frames_per_stage, overlap=0)

    @classmethod
    def batch(cls, settings) -> int:
        return settings.frames_per_stage

    def in_flight(self) -> int:
        return len(self.queue) + len(self.incoming)

    def push(self, seq: int, feature: Any) -> list[tuple[int, np.ndarray]]:
        self.incoming.append(_Slot(seq, feature, self.noise.frame(seq)))
        if len(self.incoming) < self.settings.frames_per_stage:
            return []
        return self._call()

    def finish(self) -> list[tuple[int, np.ndarray]]:
        out = []
        while self.queue or self.incoming:
            out += self._call()
        return out

    def _call(self) -> list[tuple[int, np.ndarray]]:
        s = self.settings
        self.queue += self.incoming
        self.incoming = []
        steps = np.array([slot.step for slot in self.queue])
        t = self.timesteps[steps]
        t_prev = self.schedule.previous_timestep(t, s.steps)
        x = np.stack([slot.x for slot in self.queue], axis=1)[None]
        features = [slot.feature for slot in self.queue]
        v = self.backend.denoise(x, t[None], features, self.identity, np.array([True]))
        guided = np.array([s.uses_cfg(int(k)) for k in steps])
        if guided.any():  # newest frames are the guided ones: a contiguous tail of the queue
            first = int(np.argmax(guided))
            v_uncond = self.backend.denoise(x[:, :, first:], t[None, first:], features[first:], self.identity,
                                            np.array([False]))
            v[:, :, first:] = v_uncond + s.guidance_scale * (v[:, :, first:] - v_uncond)
        x = self.schedule.step(v, t, x, t_prev)
        for j, slot in enumerate(self.queue):
            slot.x, slot.step = x[0, :, j], slot.step + 1
        finished = [slot for slot in self.queue if slot.step == s.steps]
        self.queue = [slot for slot in self.queue if slot.step < s.steps]
        return [(slot.seq, slot.x) for slot in finished]
