"""Held-out cases and the controls a model that uses its inputs must beat.

Model controls run the model on wrong inputs (judged against the clip's own ground truth):
  swapped reference  the reference of another held-out identity, the clip's own guidance;
  swapped motion     the clip's reference, the guidance of another held-out motion.
Answer controls need no model:
  copy the reference     the reference image in every frame (right identity, wrong pose);
  copy the render map    the guidance "render" map (right pose, FLAME-style albedo, no hair/background);
  mean image             the mean of every held-out ground-truth frame (the best constant answer);
  clip mean (oracle)     the mean of this clip's own ground truth (knows identity and background; informative);
  ground truth (ceiling) the ground truth itself (shows the metrics' ceiling, e.g. the foreground IoU's).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from engine.synthetic.clips import Clip

MODEL_CONTROLS = ("swapped reference", "swapped motion")
ANSWER_CONTROLS = ("copy the reference", "copy the render map", "mean image", "clip mean (oracle)",
                   "ground truth (ceiling)")


@dataclasses.dataclass
class Case:
    """A held-out clip (first `frames` frames) and the clip whose reference / motion the controls borrow."""
    clip: Clip
    other: Clip

    @property
    def name(self) -> str:
        return f"id{self.clip.identity}-m{self.clip.motion}"


def truncated(clip: Clip, frames: int) -> Clip:
    return dataclasses.replace(clip, frames=clip.frames[:frames], mask=clip.mask[:frames],
                               maps={k: v[:frames] for k, v in clip.maps.items()})


def make_cases(clips: list[Clip], count: int, frames: int) -> list[Case]:
    """`count` clips with pairwise different identities and motions; each borrows from the next one
    (cyclically), which differs from it in both."""
    chosen, idents, motions = [], set(), set()
    for c in clips:
        if c.identity not in idents and c.motion not in motions:
            chosen.append(truncated(c, frames))
            idents.add(c.identity)
            motions.add(c.motion)
    if len(chosen) < max(2, count):
        raise ValueError(f"need {max(2, count)} held-out clips with distinct identities and motions, "
                         f"found {len(chosen)}")
    chosen = chosen[:count] if count >= 2 else chosen[:2]
    cases = [Case(c, chosen[(i + 1) % len(chosen)]) for i, c in enumerate(chosen)]
    return cases[:count]


def model_control_inputs(case: Case, control: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(reference, maps) the model gets under `control` (frame counts matched to the clip)."""
    n = len(case.clip.frames)
    if control == "swapped reference":
        return case.other.reference, case.clip.maps
    if control == "swapped motion":
        return case.clip.reference, {k: v[:n] for k, v in case.other.maps.items()}
    raise KeyError(control)


def answer_control(case: Case, control: str, mean_image: np.ndarray) -> np.ndarray:
    """(F,S,S,3) uint8 frames answered without a model."""
    clip = case.clip
    n = len(clip.frames)
    if control == "copy the reference":
        return np.repeat(clip.reference[None], n, axis=0)
    if control == "copy the render map":
        return clip.maps["render"]
    if control == "mean image":
        return np.repeat(mean_image[None], n, axis=0)
    if control == "clip mean (oracle)":
        return np.repeat(_round_u8(clip.frames.mean(axis=0))[None], n, axis=0)
    if control == "ground truth (ceiling)":
        return clip.frames
    raise KeyError(control)


def mean_image(clips: list[Clip]) -> np.ndarray:
    """The per-pixel mean of every frame of `clips` (the whole held-out split, not only the scored
    cases: a mean over one clip would know that clip's background)."""
    return _round_u8(np.concatenate([c.frames for c in clips]).astype(np.float64).mean(axis=0))


def _round_u8(x: np.ndarray) -> np.ndarray:
    return np.floor(np.clip(x, 0, 255) + 0.5).astype(np.uint8)
