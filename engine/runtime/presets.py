"""Streaming settings (data) and the named presets, with their trade-offs.

Three sampling modes:
  clip          upstream's offline loop over a finite clip (every step runs every context window,
                windows wrap around, overlaps averaged before CFG; networks.md (d)). Output equals
                `sample_offline`; nothing is emitted before the whole clip is in and denoised.
  windowed      causal sliding windows of `window` frames every `stride` frames, all `steps` steps per
                window; the `window - stride` overlap frames are blended with the previous window's
                trajectory at every step (linear ramp), so neighbouring windows agree.
  stream_batch  a queue of `steps * frames_per_stage` frames at staggered noise levels (one timestep
                per frame); each UNet call advances every frame by one step and finishes the oldest
                `frames_per_stage` frames. Latency ~ steps * frames_per_stage input frames.
CFG policy: `cfg_steps` = None: CFG on every step (upstream); k >= 0: CFG on the first k steps only
(0 = never); `guidance_scale <= 1` also disables it.
"""
from __future__ import annotations

import dataclasses

from engine.errors import InputError

MODES = ("clip", "windowed", "stream_batch")
MAX_WINDOW = 32  # the motion modules' temporal_position_encoding_max_len


@dataclasses.dataclass(frozen=True)
class StreamSettings:
    mode: str = "clip"
    steps: int = 20
    guidance_scale: float = 3.5
    cfg_steps: int | None = None  # None = every step
    window: int = 12               # clip: context frames; windowed: window length
    overlap: int = 1               # clip: context overlap; windowed: window - stride
    frames_per_stage: int = 1      # stream_batch: frames finished per UNet call

    def validate(self) -> "StreamSettings":
        if self.mode not in MODES:
            raise InputError(f"mode: expected one of {MODES}, got '{self.mode}'")
        if not 1 <= self.steps <= (1000 if self.mode == "clip" else 20):
            raise InputError(f"steps: expected 1..20 for streaming modes (1..1000 for clip), got {self.steps}")
        if self.cfg_steps is not None and self.cfg_steps < 0:
            raise InputError(f"cfg_steps: expected >= 0 or None (every step), got {self.cfg_steps}")
        if self.mode == "stream_batch" and not 1 <= self.steps * self.frames_per_stage <= MAX_WINDOW:
            raise InputError(f"frames_per_stage: steps x frames_per_stage must be 1..{MAX_WINDOW}, got "
                             f"{self.steps} x {self.frames_per_stage}")
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

    @property
    def is_causal(self) -> bool:
        """Can run on an endless (live) source."""
        return self.mode != "clip"


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    settings: StreamSettings
    summary: str


PRESETS = {
    p.name: p for p in (
        Preset("quality", StreamSettings(mode="clip", steps=20, guidance_scale=3.5, cfg_steps=None,
                                         window=12, overlap=1),
               "upstream's offline result exactly (20 DDIM steps, CFG 3.5 on every step, 12-frame context "
               "windows with wrap-around); ~44 UNet frame-evaluations per frame; finite clips only, "
               "output only after the whole clip"),
        Preset("balanced", StreamSettings(mode="windowed", steps=6, guidance_scale=3.5, cfg_steps=2,
                                          window=12, overlap=4),
               "causal 12-frame windows every 8 frames, 6 steps, CFG on the first 2; ~12 UNet "
               "frame-evaluations per frame (~3.6x upstream), latency ~ 12 input frames + one window"),
        Preset("realtime", StreamSettings(mode="stream_batch", steps=4, guidance_scale=3.5, cfg_steps=0,
                                          window=8, overlap=0, frames_per_stage=2),
               "stream-batch: 4 staggered steps, no CFG, 2 frames finished per UNet call (8 in flight); "
               "4 UNet frame-evaluations per frame (~11x upstream), latency ~ 8 input frames; "
               "softer detail and weaker identity than quality"),
    )
}


def preset_settings(name: str, **overrides) -> StreamSettings:
    """The named preset's settings with the non-None `overrides` applied, validated."""
    if name not in PRESETS:
        raise InputError(f"--preset: unknown preset '{name}'; expected one of {sorted(PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    settings = dataclasses.replace(PRESETS[name].settings, **changes)
    if settings.mode == "stream_batch":
        settings = dataclasses.replace(settings, window=settings.steps * settings.frames_per_stage, overlap=0)
    return settings.validate()
