"""Upstream's guidance image folders: DIR/{depth,normal,render}/frame_%04d.<ext> (spec §4.6).

Writing goes to a temporary sibling folder first and is moved into place only when every image is
written; existing type folders are replaced only with overwrite=True. Reading accepts .png / .jpg
/ .jpeg files, sorted by name, as RGB uint8 (what the pipeline's PIL .convert('RGB') sees for 8-bit
RGB; 16-bit depth maps are scaled to 8 bits, transparency composited on the maps' black background).
"""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import tempfile

import numpy as np

from engine.errors import InputError
from engine.io.images import BLACK, read_rgb_image
from engine.preprocess import GUIDANCE_TYPES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FRAME_NAME = "frame_{:04d}.{}"
JPEG_QUALITY = 75  # PIL's default, what upstream's .jpg frames got
MIN_MAP_SIDE = 8  # one latent pixel
FRAME_PATTERN = re.compile(r"frame_\d{4,}\.(png|jpg)")


def write_guidance_folders(out_dir, frames_u8: dict[str, np.ndarray], image_format: str = "png",
                           overwrite: bool = False) -> list[pathlib.Path]:
    """Write (F, H, W, 3) uint8 maps per type; returns the three type folders."""
    from PIL import Image

    out_dir = pathlib.Path(out_dir)
    fmt = image_format.lower().lstrip(".")
    if fmt not in ("png", "jpg"):
        raise InputError(f"image format '{image_format}': expected png or jpg")
    missing = [k for k in GUIDANCE_TYPES if k not in frames_u8]
    if missing:
        raise ValueError(f"frames_u8 lacks {missing}")
    targets = check_output_free(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    check_output_free(out_dir, overwrite)  # again: the folders may have changed while rendering
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=".guidance-", dir=out_dir))
    try:
        for kind in GUIDANCE_TYPES:
            (tmp / kind).mkdir()
            for i, frame in enumerate(np.asarray(frames_u8[kind], np.uint8)):
                path = tmp / kind / FRAME_NAME.format(i, fmt)
                options = {"quality": JPEG_QUALITY} if fmt == "jpg" else {}
                Image.fromarray(frame, "RGB").save(path, **options)
        for kind, target in zip(GUIDANCE_TYPES, targets):
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(tmp / kind, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return targets


def check_output_free(out_dir, overwrite: bool) -> list[pathlib.Path]:
    """The three type folders under out_dir; InputError if one exists and not overwrite, or if it
    holds anything but frames of this writer's naming (never deleted, even with overwrite)."""
    targets = [pathlib.Path(out_dir) / k for k in GUIDANCE_TYPES]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]} exists; pass --overwrite to replace the guidance folders")
    for target in existing:
        foreign = [] if target.is_dir() and _only_frames(target) else [target]
        if foreign:
            raise InputError(f"{target}: holds files other than guidance frames (frame_NNNN.png/jpg); "
                             "not replaced, even with --overwrite (choose another --out)")
    return targets


def _only_frames(folder: pathlib.Path) -> bool:
    return all(p.is_file() and FRAME_PATTERN.fullmatch(p.name) for p in folder.iterdir())


def list_frames(folder: pathlib.Path) -> list[pathlib.Path]:
    if not folder.is_dir():
        raise InputError(f"guidance folder missing: {folder} (expected {'/'.join(GUIDANCE_TYPES)} "
                         f"subfolders of images)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no .png/.jpg images found")
    return files


def list_guidance_folders(in_dir) -> dict[str, list[pathlib.Path]]:
    """DIR/{depth,normal,render}/ -> the frame files per type, checked to be equally many."""
    in_dir = pathlib.Path(in_dir)
    listing = {k: list_frames(in_dir / k) for k in GUIDANCE_TYPES}
    counts = {k: len(v) for k, v in listing.items()}
    if len(set(counts.values())) != 1:
        raise InputError(f"{in_dir}: frame counts differ between guidance folders: {counts}")
    return listing


def read_guidance_image(path: pathlib.Path, expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """One guidance image as (H, W, 3) uint8 RGB (engine.io.images: EXIF, 16-bit, alpha on black, the
    maps' background)."""
    frame = read_rgb_image(path, min_side=MIN_MAP_SIDE, background=BLACK)
    if expected_shape is not None and frame.shape != expected_shape:
        raise InputError(f"{path}: size {frame.shape[1]}x{frame.shape[0]} differs from the first frame's "
                         f"{expected_shape[1]}x{expected_shape[0]}")
    return frame


def read_guidance_folders(in_dir) -> dict[str, np.ndarray]:
    """DIR/{depth,normal,render}/ -> {'depth','normal','render'}: (F, H, W, 3) uint8 RGB, read whole
    (a long clip is better streamed: engine.runtime.sources.guidance_folder_source)."""
    out = {}
    for kind, files in list_guidance_folders(in_dir).items():
        first = read_guidance_image(files[0])
        out[kind] = np.stack([first] + [read_guidance_image(p, first.shape) for p in files[1:]])
    return out
