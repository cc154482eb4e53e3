"""Upstream's guidance image folders: DIR/{depth,normal,render}/frame_%04d.<ext> (spec §4.6).

Writing goes to a temporary sibling folder first and is moved into place only when every image is
written; existing type folders are replaced only with overwrite=True. Reading accepts .png / .jpg
/ .jpeg files, sorted by name, as RGB uint8 (what the pipeline's PIL .convert('RGB') sees).
"""
from __future__ import annotations

import os
import pathlib
import shutil
import tempfile

import numpy as np

from engine.errors import InputError
from engine.preprocess import GUIDANCE_TYPES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
FRAME_NAME = "frame_{:04d}.{}"
JPEG_QUALITY = 75  # PIL's default, what upstream's .jpg frames got


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
    """The three type folders under out_dir; InputError if one exists and not overwrite."""
    targets = [pathlib.Path(out_dir) / k for k in GUIDANCE_TYPES]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]} exists; pass --overwrite to replace the guidance folders")
    return targets


def list_frames(folder: pathlib.Path) -> list[pathlib.Path]:
    if not folder.is_dir():
        raise InputError(f"guidance folder missing: {folder} (expected {'/'.join(GUIDANCE_TYPES)} "
                         f"subfolders of images)")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no .png/.jpg images found")
    return files


def read_guidance_folders(in_dir) -> dict[str, np.ndarray]:
    """DIR/{depth,normal,render}/ -> {'depth','normal','render'}: (F, H, W, 3) uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    in_dir = pathlib.Path(in_dir)
    listing = {k: list_frames(in_dir / k) for k in GUIDANCE_TYPES}
    counts = {k: len(v) for k, v in listing.items()}
    if len(set(counts.values())) != 1:
        raise InputError(f"{in_dir}: frame counts differ between guidance folders: {counts}")
    out = {}
    for kind, files in listing.items():
        frames = []
        for path in files:
            try:
                with Image.open(path) as img:
                    frames.append(np.asarray(img.convert("RGB"), np.uint8))
            except (OSError, UnidentifiedImageError) as err:
                raise InputError(f"{path}: unreadable image ({err})") from err
            if frames[-1].shape != frames[0].shape:
                raise InputError(f"{path}: size {frames[-1].shape[1::-1]} differs from "
                                 f"{files[0].name}'s {frames[0].shape[1::-1]}")
        out[kind] = np.stack(frames)
    return out
