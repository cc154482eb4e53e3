"""Albedo from the FLAME texture space (`FLAME_texture.npz`, licence-gated; spec §4.5).

T = mean/255 + sum_{i<50} c_i tex_dir[..., i]/255 over the 512x512x3 (HWC, BGR) map, nearest-
downsampled to 256x256 (even rows/cols, F.interpolate's default), channels reversed to RGB.
"""
from __future__ import annotations

import pathlib

import numpy as np

from engine.errors import InputError
from engine.io.npz import load_npz

NUM_TEX = 50


def albedo_from_texture_space(mean: np.ndarray, tex_dir: np.ndarray, tex: np.ndarray) -> np.ndarray:
    mean = np.asarray(mean, np.float32).reshape(-1)
    basis = np.asarray(tex_dir, np.float32).reshape(mean.size, -1)[:, :NUM_TEX]
    side = int(round(np.sqrt(mean.size / 3)))
    if side * side * 3 != mean.size:
        raise ValueError(f"texture mean has {mean.size} values, expected S*S*3")
    full = (mean / 255 + basis @ np.asarray(tex, np.float32).reshape(NUM_TEX) / 255).reshape(side, side, 3)
    chw = full.transpose(2, 0, 1)[:, ::2, ::2]  # nearest 512 -> 256 takes source index 2i
    return np.ascontiguousarray(chw[::-1], np.float32)  # BGR storage -> RGB


def load_flame_texture_albedo(path, tex: np.ndarray) -> np.ndarray:
    """(3, 256, 256) RGB albedo of texture code `tex` (50,) from FLAME_texture.npz."""
    path = pathlib.Path(path)
    data = load_npz(path, "FLAME texture space")
    if "mean" not in data or "tex_dir" not in data:
        raise InputError(f"{path}: expected keys 'mean' and 'tex_dir' (FLAME_texture.npz), found {sorted(data)}")
    try:
        return albedo_from_texture_space(data["mean"], data["tex_dir"], tex)
    except ValueError as err:
        raise InputError(f"{path}: not a usable FLAME texture space ({err})") from None
