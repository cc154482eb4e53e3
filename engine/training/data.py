"""Training batches from a synthetic dataset held in memory (uint8, converted per batch)."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from engine.networks.config import GUIDANCE_TYPES
from engine.synthetic.clips import Clip


@dataclasses.dataclass
class ClipTensors:
    """All clips of a split stacked: frames (N,F,S,S,3), maps per type, references (N,S,S,3)."""

    frames: np.ndarray
    maps: dict[str, np.ndarray]
    references: np.ndarray

    @classmethod
    def from_clips(cls, clips: list[Clip]) -> "ClipTensors":
        return cls(np.stack([c.frames for c in clips]),
                   {t: np.stack([c.maps[t] for c in clips]) for t in GUIDANCE_TYPES},
                   np.stack([c.reference for c in clips]))

    @property
    def num_clips(self) -> int:
        return self.frames.shape[0]

    @property
    def num_frames(self) -> int:
        return self.frames.shape[1]

    def all_images(self) -> np.ndarray:
        """Every ground-truth frame and reference (M,S,S,3): what the autoencoder learns."""
        s = self.frames.shape[-3:]
        return np.concatenate([self.frames.reshape(-1, *s), self.references])


def to_unit(images_u8: np.ndarray, device) -> torch.Tensor:
    """(...,H,W,3) uint8 -> (...,3,H,W) float in [0,1], contiguous (channels-first memory: torch
    2.13's channels-last GroupNorm backward crashes when the norm's own weights are frozen)."""
    x = torch.from_numpy(np.ascontiguousarray(images_u8)).to(device)
    return (x.movedim(-1, -3).float() / 255.0).contiguous()


@dataclasses.dataclass
class Batch:
    target: torch.Tensor  # (B,3,F,H,W) in [-1,1]
    maps: dict[str, torch.Tensor]  # per type (B*F,3,H,W) in [0,1], rows b*F + f
    reference: torch.Tensor  # (B,3,H,W) in [-1,1]
    clip_index: np.ndarray  # (B,) which clips (for cached latents)
    frame_index: np.ndarray  # (B,F)


def sample_batch(data: ClipTensors, rng: np.random.Generator, batch: int, frames: int, device) -> Batch:
    """`batch` random windows of `frames` consecutive frames (frames=1: the image stage)."""
    clips = rng.integers(data.num_clips, size=batch)
    starts = rng.integers(data.num_frames - frames + 1, size=batch)
    fidx = starts[:, None] + np.arange(frames)[None]
    target = to_unit(data.frames[clips[:, None], fidx], device) * 2 - 1  # (B,F,3,H,W)
    maps = {t: to_unit(data.maps[t][clips[:, None], fidx], device).flatten(0, 1) for t in GUIDANCE_TYPES}
    reference = to_unit(data.references[clips], device) * 2 - 1
    return Batch(target.transpose(1, 2).contiguous(), maps, reference, clips, fidx)
