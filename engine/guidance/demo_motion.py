"""A built-in head motion for the synthetic head: turn, nod, open the jaw, smile; framed so the
whole head sits inside the 512x512 source frame (cam s = 9 on a 300 px face crop, DECA-like)."""
from __future__ import annotations

import numpy as np

from engine.flame.params import FlameParams
from engine.flame.synthetic import SYNTHETIC_NAME
from engine.flame.synthetic_texture import default_sh_light

DEMO_CAM = (9.0, 0.0, 0.005)
DEMO_CROP = (106.0, 60.0, 300.0)
SMILE, PUCKER, BROWS = 1, 2, 4  # named expression columns of the synthetic rig


def demo_flame_params(num_frames: int = 24) -> FlameParams:
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    t = np.arange(num_frames, dtype=np.float64) / max(num_frames, 1)
    pose = np.zeros((num_frames, 6))
    pose[:, 1] = 0.45 * np.sin(2 * np.pi * t)  # yaw: turn left and right
    pose[:, 0] = 0.15 * np.sin(4 * np.pi * t)  # pitch: nod twice
    pose[:, 3] = 0.28 * np.clip(np.sin(2 * np.pi * (t - 0.15)), 0, None)  # jaw opens (about x)
    exp = np.zeros((num_frames, 50))
    exp[:, SMILE] = 1.2 * np.clip(np.sin(2 * np.pi * (t + 0.35)), 0, None)
    exp[:, BROWS] = 1.0 * np.clip(np.sin(4 * np.pi * t), 0, None)
    exp[:, PUCKER] = 0.8 * np.clip(-np.sin(2 * np.pi * (t + 0.1)), 0, None)
    return FlameParams(
        shape=np.zeros(100, np.float32), tex=np.zeros(50, np.float32),
        light=default_sh_light(), cam=np.array(DEMO_CAM, np.float32),
        crop=np.array(DEMO_CROP, np.float32), exp=exp.astype(np.float32),
        pose=pose.astype(np.float32), valid=np.ones(num_frames, bool), model=SYNTHETIC_NAME,
    )
