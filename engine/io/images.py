"""Reading user images with clear errors."""
from __future__ import annotations

import pathlib

import numpy as np

from engine.errors import InputError


def read_rgb_image(path: str | pathlib.Path) -> np.ndarray:
    """Any PIL-readable file (the extension may lie) -> (H,W,3) uint8 RGB."""
    from PIL import Image, UnidentifiedImageError
    path = pathlib.Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image file not found")
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path}: not a readable image ({err})") from None


def resize_frames(frames_u8: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(F,H,W,3) uint8 -> (F,h,w,3) with PIL's default bicubic filter, as upstream resizes guidance."""
    from PIL import Image
    w, h = size
    if frames_u8.shape[1:3] == (h, w):
        return frames_u8
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.BICUBIC)) for f in frames_u8])


def side_by_side(*videos: np.ndarray) -> np.ndarray:
    """Frames of equal count placed left to right (resized to the first one's height)."""
    h = videos[0].shape[1]
    parts = [v if v.shape[1] == h else resize_frames(v, (v.shape[2] * h // v.shape[1], h)) for v in videos]
    return np.concatenate(parts, axis=2)
