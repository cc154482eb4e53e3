"""New backgrounds behind synthetic clips: the lever that makes the background *copied*, not learnt.

With one background per identity the networks memorise the training identities' backgrounds (the
autoencoder cannot even encode an unseen striped one). Every clip's frames are the head composited
over a known background with a known coverage (the mask is the box-averaged alpha), so any other
background can be put behind it exactly: out = frame + (1 - alpha) (new - old). Frames and the
reference of one variant share the new background, as a photo and its video would; guidance maps
and masks are unchanged. Deterministic from (seed, clip, variant).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from engine.synthetic.appearance import random_background
from engine.synthetic.clips import Clip
from engine.synthetic.dataset import background

AUGMENT_STREAM = 7  # the random stream of background variants, apart from the data's and training's


def recomposite(images_u8: np.ndarray, mask_u8: np.ndarray, old_bg: np.ndarray, new_bg: np.ndarray) -> np.ndarray:
    """(...,S,S,3) uint8 images over `old_bg` -> the same heads over `new_bg` (S,S,3 floats in [0,1]);
    mask (...,S,S) uint8 = head coverage."""
    cover = 1.0 - mask_u8.astype(np.float32)[..., None] / 255.0
    out = images_u8.astype(np.float32) + cover * (new_bg - old_bg).astype(np.float32) * 255.0
    return np.floor(np.clip(out, 0, 255) + 0.5).astype(np.uint8)


def with_new_backgrounds(clips: list[Clip], variants: int, seed: int) -> list[Clip]:
    """The clips, then `variants` copies of each over new random backgrounds."""
    if variants == 0:
        return list(clips)
    out, known = list(clips), {}
    for i, clip in enumerate(clips):
        size = clip.frames.shape[1]
        if clip.identity not in known:
            known[clip.identity] = background(clip.identity, size)
        old = known[clip.identity]
        for k in range(variants):
            new, _ = random_background(np.random.default_rng([seed, AUGMENT_STREAM, i, k]), size)
            out.append(dataclasses.replace(
                clip, frames=recomposite(clip.frames, clip.mask, old, new),
                reference=recomposite(clip.reference, clip.reference_mask, old, new)))
    return out
