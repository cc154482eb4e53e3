"""Source/driving parameter mixing, guidance_maps.md §1.4 and the table of §1.7.

Source (constant per video): shape, tex, light, cam and the crop. Driving (per frame): global
rotation from DECA, expression and jaw from SMIRK. DECA's own driving exp/jaw are overwritten by
SMIRK upstream, so they are never computed here. Neck/eye poses are zero (not stored).
"""
from __future__ import annotations

import numpy as np

from engine.driving.source_code import SourceCode
from engine.errors import InputError


FLAME_MODEL_NAME = "FLAME 2020 (DECA + SMIRK parameters)"


def mix_parameters(source: SourceCode, global_rot: np.ndarray, exp: np.ndarray, jaw: np.ndarray,
                   valid: np.ndarray | None = None, model: str = FLAME_MODEL_NAME):
    """-> `engine.flame.FlameParams` with source constants and per-frame exp (F,50), pose (F,6)."""
    from engine.flame.params import FlameParams

    global_rot, exp, jaw = (np.asarray(a, dtype=np.float32) for a in (global_rot, exp, jaw))
    frames = global_rot.shape[0]
    if global_rot.shape != (frames, 3) or jaw.shape != (frames, 3) or exp.shape != (frames, 50):
        raise InputError(
            f"driving parameters must be global_rot (F,3), exp (F,50), jaw (F,3); got "
            f"{global_rot.shape}, {exp.shape}, {jaw.shape}"
        )
    pose = np.concatenate([global_rot, jaw], axis=1)  # [global axis-angle | jaw axis-angle]
    return FlameParams(
        shape=np.asarray(source.shape, np.float32), tex=np.asarray(source.tex, np.float32),
        light=np.asarray(source.light, np.float32), cam=np.asarray(source.cam, np.float32),
        crop=np.asarray(source.crop, np.float32), exp=exp, pose=pose,
        valid=None if valid is None else np.asarray(valid, dtype=bool), model=model,
    )
