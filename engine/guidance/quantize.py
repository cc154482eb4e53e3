"""8-bit quantiser and the pipeline-facing tensors (spec guidance_maps.md §4.6, §7).

q(x) = floor(clamp(x*255 + 0.5, 0, 255)): torchvision.save_image's rounding; negative normal
components become 0, render values above 1 saturate.
"""
from __future__ import annotations

import numpy as np


def quantize_u8(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return np.floor(np.clip(x * np.float32(255) + np.float32(0.5), 0, 255)).astype(np.uint8)


def maps_to_u8_frames(maps) -> dict[str, np.ndarray]:
    """GuidanceMaps -> {'depth','normal','render'}: (B, H, W, 3) uint8, the saved-image form
    (depth replicated to 3 channels)."""
    depth = np.repeat(maps.depth, 3, axis=1)
    out = {"depth": depth, "normal": maps.normal, "render": maps.render}
    return {k: np.ascontiguousarray(quantize_u8(v).transpose(0, 2, 3, 1)) for k, v in out.items()}


def u8_frames_to_pipeline(frames_u8: np.ndarray) -> np.ndarray:
    """(F, H, W, 3) uint8 -> (F, 3, H, W) float32 in [0, 1]: what the guidance encoders see."""
    return np.ascontiguousarray(np.asarray(frames_u8).transpose(0, 3, 1, 2), np.float32) / np.float32(255)
