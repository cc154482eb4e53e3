"""What every sampler is told: scheduler, steps, classifier-free guidance and the frame window.

One type for the offline loop (engine.sampling.offline) and the streaming runtime (which adds its
mode in engine.runtime.presets.StreamSettings). CFG policy: `cfg_steps` None = CFG on every step
(upstream); k >= 0 = on the first k steps only (0 = never); `guidance_scale <= 1` disables it too.
"""
from __future__ import annotations

import dataclasses

from engine.errors import InputError
from engine.sampling.schedulers import DEFAULT, scheduler_names

MAX_WINDOW = 32  # the motion modules' temporal_position_encoding_max_len


@dataclasses.dataclass(frozen=True)
class SamplingSettings:
    steps: int = 20
    guidance_scale: float = 3.5
    cfg_steps: int | None = None  # None = every step
    window: int = 12               # frames per UNet call: context window (offline / clip), window length
    overlap: int = 1               # frames shared by consecutive windows
    scheduler: str = DEFAULT       # a module of engine/sampling/schedulers/

    def validate(self):
        if self.scheduler not in scheduler_names():
            raise InputError(f"scheduler: expected one of {', '.join(scheduler_names())}, got '{self.scheduler}'")
        if self.cfg_steps is not None and self.cfg_steps < 0:
            raise InputError(f"cfg_steps: expected >= 0 or None (every step), got {self.cfg_steps}")
        if not 1 <= self.window <= MAX_WINDOW:
            raise InputError(f"window: expected 1..{MAX_WINDOW} frames, got {self.window}")
        if not 0 <= self.overlap < self.window:
            raise InputError(f"overlap: expected 0..{self.window - 1} (below the window), got {self.overlap}")
        return self

    @property
    def stride(self) -> int:
        return self.window - self.overlap

    def uses_cfg(self, step_index: int) -> bool:
        if self.guidance_scale <= 1.0:
            return False
        return self.cfg_steps is None or step_index < self.cfg_steps
