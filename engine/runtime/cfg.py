"""Classifier-free guidance (CFG) through a backend, as upstream builds it (networks.md (d)): the
batch is [uncond ; cond] on the same latents, the unconditional row runs *without* the reference."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from engine.backends.base import Backend

Timed = Callable[[str], Any]  # stats.stage(name) context manager factory


def predict(backend: Backend, x: np.ndarray, t: np.ndarray, features: Sequence[Any], identity: Any, cfg: bool,
            scale: float, raw: bool = False) -> np.ndarray:
    """x (1,4,F,h,w), t (F,) -> v (1,4,F,h,w), CFG-combined when `cfg`. With raw=True the two rows are
    returned uncombined ((2,...) under CFG) so callers can average windows first, as upstream does."""
    if cfg:
        v = backend.denoise(np.concatenate([x, x]), np.stack([t, t]), features, identity,
                            np.array([False, True]))
        return v if raw else combine_cfg(v, scale)
    return backend.denoise(x, t[None], features, identity, np.array([True]))


def combine_cfg(v: np.ndarray, scale: float) -> np.ndarray:
    uncond, cond = v[0:1], v[1:2]
    return uncond + scale * (cond - uncond)
