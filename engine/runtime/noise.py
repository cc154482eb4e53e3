"""Initial noise per output frame. ClipNoise replays a given (1,4,F,h,w) tensor (so a finite clip
can use the offline sampler's noise exactly); FrameNoise draws each frame from (seed, frame) so an
endless stream needs no tensor up front."""
from __future__ import annotations

import dataclasses

import numpy as np

from engine.errors import InputError


@dataclasses.dataclass(frozen=True)
class ClipNoise:
    noise: np.ndarray  # (1, C, F, h, w) float32

    def frame(self, seq: int) -> np.ndarray:
        if not 0 <= seq < self.noise.shape[2]:
            raise InputError(f"noise: frame {seq} is beyond the {self.noise.shape[2]} frames of the clip noise")
        return self.noise[0, :, seq]


@dataclasses.dataclass(frozen=True)
class FrameNoise:
    seed: int
    shape: tuple[int, int, int]  # (C, h, w)

    def frame(self, seq: int) -> np.ndarray:
        return np.random.default_rng([self.seed, seq]).standard_normal(self.shape, dtype=np.float32)


def clip_noise_like_offline(frames: int, size: int, channels: int, scale_factor: int, seed: int) -> ClipNoise:
    """The offline path's initial noise: a CPU torch generator seeded with `seed` (engine.offline uses it too)."""
    import torch
    g = torch.Generator("cpu").manual_seed(seed)
    h = size // scale_factor
    return ClipNoise(torch.randn((1, channels, frames, h, h), generator=g, dtype=torch.float32).numpy())
