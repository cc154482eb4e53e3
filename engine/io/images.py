"""Reading user images with clear errors: every image the engine reads goes through `read_rgb_image`.

What a camera or editor stores is applied, not ignored: EXIF orientation (phones store portraits
sideways plus a rotate tag), 16-bit samples (scaled to 8 bits, not clipped to two levels), and
transparency (composited on a stated background instead of dropped).
"""
from __future__ import annotations

import pathlib

import numpy as np

from engine.errors import InputError

MIN_SIDE = 64  # a portrait or driving frame smaller than this holds no usable face
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
_WIDE_INT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # 16-bit PNG / TIFF samples


def read_rgb_image(path: str | pathlib.Path, option: str | None = None, min_side: int = MIN_SIDE,
                   background: tuple[int, int, int] = WHITE) -> np.ndarray:
    """Any PIL-readable file (the extension may lie) -> (H,W,3) uint8 RGB, upright (EXIF), 16-bit
    scaled to 8-bit, transparent pixels composited on `background`. Refuses sides below `min_side`."""
    from PIL import Image, ImageOps, UnidentifiedImageError
    path = pathlib.Path(path)
    name = f"{option} {path}" if option else str(path)
    if not path.is_file():
        raise InputError(f"{name}: image file not found" + (" (it is a folder)" if path.is_dir() else ""))
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            rgb = to_rgb_u8(img, background, name)
    except Image.DecompressionBombError as err:
        raise InputError(f"{name}: image too large to read safely ({err})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{name}: not a readable image ({err})") from None
    if min(rgb.shape[:2]) < min_side:
        raise InputError(f"{name}: {rgb.shape[1]}x{rgb.shape[0]} pixels is too small; expected at least "
                         f"{min_side}x{min_side}")
    return rgb


def to_rgb_u8(img, background: tuple[int, int, int], name: str) -> np.ndarray:
    """An open PIL image -> (H,W,3) uint8 RGB: 16-bit scaled, alpha composited on `background`."""
    from PIL import Image
    if img.mode in _WIDE_INT_MODES:
        wide = np.asarray(img, dtype=np.int64)
        if wide.min() < 0 or wide.max() > 65535:
            raise InputError(f"{name}: {img.mode} samples outside 0..65535; expected an 8- or 16-bit image")
        gray = ((wide * 255 + 32767) // 65535).astype(np.uint8)  # 0..65535 -> 0..255, rounded
        return np.repeat(gray[:, :, None], 3, axis=2)
    if img.mode == "F":
        raise InputError(f"{name}: floating-point samples (mode F); expected an 8- or 16-bit image")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return np.asarray(Image.alpha_composite(canvas, rgba).convert("RGB"), dtype=np.uint8).copy()
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


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
