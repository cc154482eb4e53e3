"""Streaming settings (data) and the named presets, with their trade-offs.

Sampling modes (registered in engine/runtime/modes.py):
  clip          upstream's offline loop over a finite clip (every step runs every context window,
                windows wrap around, overlaps averaged before CFG; networks.md (d)). Output equals
                `sample_offline`; nothing is emitted before the whole clip is in and denoised.
  windowed      causal sliding windows of `window` frames every `stride` frames, all `steps` steps per
                window; the `window - stride` overlap frames are blended with the previous window's
                trajectory at every step (linear ramp), so neighbouring windows agree.
  stream_batch  a queue of `steps * frames_per_stage` frames at staggered noise levels (one timestep
                per frame); each UNet call advances every frame by one step and finishes the oldest
                `frames_per_stage` frames. Latency ~ steps * frames_per_stage input frames.
Scheduler, steps, CFG policy and window are engine.sampling.settings.SamplingSettings' fields.
"""
from __future__ import annotations

import dataclasses

from engine.errors import InputError
from engine.runtime.modes import MODES
from engine.sampling.settings import MAX_WINDOW, SamplingSettings  # noqa: F401  (MAX_WINDOW: kept importable here)


@dataclasses.dataclass(frozen=True)
class StreamSettings(SamplingSettings):
    mode: str = "clip"
    frames_per_stage: int = 1      # stream_batch: frames finished per UNet call

    def validate(self) -> "StreamSettings":
        if self.mode not in MODES:
            raise InputError(f"mode: expected one of {tuple(MODES)}, got '{self.mode}'")
        sampler = MODES[self.mode]
        if not 1 <= self.steps <= sampler.max_steps:
            raise InputError(f"steps: expected 1..{sampler.max_steps} for mode {self.mode}, got {self.steps}")
        sampler.check(self)
        return super().validate()

    @property
    def is_causal(self) -> bool:
        """Can run on an endless (live) source."""
        return MODES[self.mode].causal


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    settings: StreamSettings
    summary: str
    prefers_student: bool = False  # use a distilled student and tiny decoder beside the weights when present


PRESETS = {
    p.name: p for p in (
        Preset("quality", StreamSettings(mode="clip", steps=20, guidance_scale=3.5, cfg_steps=None,
                                         window=12, overlap=1),
               "upstream's offline result exactly (20 DDIM steps, CFG on every step at the model's scale: 3.5 "
               "for MagicPortrait's weights, 12-frame context windows with wrap-around); ~44 UNet frame-evaluations per frame; finite clips only, "
               "output only after the whole clip"),
        Preset("balanced", StreamSettings(mode="windowed", steps=6, guidance_scale=3.5, cfg_steps=2,
                                          window=12, overlap=4),
               "causal 12-frame windows every 8 frames, 6 steps, CFG on the first 2; ~12 UNet "
               "frame-evaluations per frame (~3.6x upstream), latency ~ 12 input frames + one window"),
        Preset("realtime", StreamSettings(mode="stream_batch", steps=4, guidance_scale=3.5, cfg_steps=0,
                                          window=8, overlap=0, frames_per_stage=2),
               "stream-batch: 4 staggered steps, no CFG, 2 frames finished per UNet call (8 in flight); "
               "4 UNet frame-evaluations per frame (~11x upstream), latency ~ 8 input frames; "
               "softer detail and weaker identity than quality; with a distilled student beside the weights "
               "(mprt distill) it runs the student with the consistency scheduler, and a tiny decoder when present",
               prefers_student=True),
    )
}


def live_presets() -> list[str]:
    """The presets that can run on a live source."""
    return [name for name, p in PRESETS.items() if p.settings.is_causal]


def preset_settings(name: str, **overrides) -> StreamSettings:
    """The named preset's settings with the non-None `overrides` applied, validated."""
    if name not in PRESETS:
        raise InputError(f"--preset: unknown preset '{name}'; expected one of {list(PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    settings = dataclasses.replace(PRESETS[name].settings, **changes)
    sampler = MODES.get(settings.mode)
    return (sampler.settle(settings) if sampler else settings).validate()


def settings_for_backend(settings: StreamSettings, info, scheduler: str | None = None,
                         scale_given: bool = False) -> StreamSettings:
    """What `settings` become on a backend (its BackendInfo): a distilled student's sampling, or the
    teacher at the CFG scale its model was made for unless the caller gave one (`scale_given`)."""
    if info.denoiser != "teacher":
        return student_settings(settings, scheduler)
    if scale_given or settings.guidance_scale == info.guidance_scale:
        return settings
    return dataclasses.replace(settings, guidance_scale=info.guidance_scale).validate()


def student_settings(settings: StreamSettings, scheduler: str | None = None) -> StreamSettings:
    """Settings for a distilled student: the consistency scheduler (unless `scheduler` names another)
    and no CFG (the teacher's CFG is folded into the student)."""
    return dataclasses.replace(settings, scheduler=scheduler or "lcm", cfg_steps=0).validate()
